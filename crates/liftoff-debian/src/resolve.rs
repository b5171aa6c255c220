//! Dependency resolution that follows apt's `pkgDepCache::MarkInstall` (apt 2.6) for
//! `apt-get install --no-install-recommends`: candidate versions by pin priority, a depth-first
//! walk of Pre-Depends/Depends in field order, or-groups tried in apt's provider order, virtual
//! packages through Provides, and Conflicts/Breaks answered by upgrading installed packages.
//!
//! Differences from apt, all of which end in an error rather than a different plan: removing
//! an installed package (a layer cannot), `/etc/apt/preferences` pins (not read), and foreign
//! architectures (only the native architecture and `all` are considered).

use crate::base::BaseSystem;
use crate::deps::{Atom, Group, group_to_string, parse_relations};
use crate::error::DebianError;
use crate::index::{self, Indexes, Record};
use crate::suggest;
use crate::version::compare_versions;
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::fmt::Write as _;
use std::path::Path;
use std::rc::Rc;
use std::str::FromStr;

/// A package request: `name` or `name=version`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Requested {
    /// Package name (Debian policy characters only).
    pub name: String,
    /// An exact version to install, if pinned.
    pub version: Option<String>,
}

impl Requested {
    /// Parse and validate `name` or `name=version`. Anything outside Debian's name and version
    /// alphabets (shell metacharacters, spaces, uppercase names, `:arch`) is rejected.
    pub fn parse(input: &str) -> Result<Self, DebianError> {
        let (name, version) = match input.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (input, None),
        };
        let bad_name = |reason: String| DebianError::InvalidPackageName {
            input: input.to_string(),
            reason,
        };
        if name.is_empty() {
            return Err(bad_name("the name is empty".into()));
        }
        if let Some(c) = name.chars().find(|c| {
            !(c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '+' | '-' | '.'))
        }) {
            return Err(bad_name(format!(
                "`{}` is not allowed in a package name",
                c.escape_default()
            )));
        }
        if !name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit()) {
            return Err(bad_name(
                "it must start with a lowercase letter or a digit".into(),
            ));
        }
        if name.len() < 2 {
            return Err(bad_name("it must be at least two characters long".into()));
        }
        let version = match version {
            None => None,
            Some(v) => {
                let bad = |reason: String| DebianError::InvalidVersion {
                    input: input.to_string(),
                    reason,
                };
                if v.is_empty() {
                    return Err(bad("the version after `=` is empty".into()));
                }
                if let Some(c) = v.chars().find(|c| {
                    !(c.is_ascii_alphanumeric() || matches!(c, '.' | '+' | '~' | ':' | '-'))
                }) {
                    return Err(bad(format!(
                        "`{}` is not allowed in a version",
                        c.escape_default()
                    )));
                }
                if !v.starts_with(|c: char| c.is_ascii_digit()) {
                    return Err(bad(
                        "a version starts with a digit (an epoch or the upstream version)".into(),
                    ));
                }
                Some(v.to_string())
            }
        };
        Ok(Self {
            name: name.to_string(),
            version,
        })
    }
}

impl FromStr for Requested {
    type Err = DebianError;
    fn from_str(s: &str) -> Result<Self, DebianError> {
        Self::parse(s)
    }
}

impl fmt::Display for Requested {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.version {
            Some(v) => write!(f, "{}={v}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// The packages to add to the base image: new packages and upgrades of installed ones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// dpkg architecture of the base image.
    pub architecture: String,
    /// Sorted by name.
    pub packages: Vec<PlannedPackage>,
}

/// One .deb to download and unpack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedPackage {
    pub name: String,
    pub version: String,
    /// `amd64`, `all`, ...
    pub architecture: String,
    /// Path relative to `base_url` (the index's `Filename:`).
    pub filename: String,
    /// Size of the .deb in bytes.
    pub size: u64,
    /// SHA-256 of the .deb (hex), from the signed index.
    pub sha256: String,
    /// The repository the index stanza came from.
    pub base_url: String,
    /// `same`, `foreign`, `allowed` or `no`.
    pub multi_arch: String,
    /// The version installed in the base image when this is an upgrade.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub installed_version: Option<String>,
    /// The package whose dependency pulled this one in (`None` for requested packages).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pulled_by: Option<String>,
}

impl PlannedPackage {
    /// The download URL.
    pub fn url(&self) -> String {
        format!("{}/{}", self.base_url.trim_end_matches('/'), self.filename)
    }
}

/// Resolve the requested packages against the base image's sources: fetch and verify the
/// indexes (cached in `cache`), then compute what apt would install.
pub fn resolve(
    base: &BaseSystem,
    requested: &[Requested],
    cache: &Path,
    progress: &dyn Fn(&str),
) -> Result<Plan, DebianError> {
    if base.sources.is_empty() {
        return Err(DebianError::NoSources {
            rootfs: base.rootfs.clone(),
        });
    }
    let indexes = index::load(&base.sources, &base.architecture, cache, progress)?;
    resolve_with(base, &indexes, requested, progress)
}

pub(crate) fn resolve_with(
    base: &BaseSystem,
    indexes: &Indexes,
    requested: &[Requested],
    progress: &dyn Fn(&str),
) -> Result<Plan, DebianError> {
    let mut r = Resolver::new(&base.architecture, &base.installed, &indexes.records);
    let mut todo: Vec<&str> = Vec::new();
    for req in requested {
        let name = r.target_name(req, &indexes.described, progress)?;
        if let Some(pin) = &req.version {
            let v = r.pinned_version(name, pin)?;
            r.cand_override.insert(name, Some(v));
        }
        let cand = r.cand(name);
        if cand.is_some() && cand == r.current(name) {
            progress(&format!(
                "{name} is already the newest version ({}) in the base image",
                r.rec(cand.unwrap_or(Ver::Inst(0))).version
            ));
            continue;
        }
        if !todo.contains(&name) {
            todo.push(name);
        }
    }
    let initially_broken: HashSet<&str> = r
        .inst
        .iter()
        .map(|rec| rec.name.as_str())
        .filter(|n| r.inst_broken(n))
        .collect();

    // Upstream's package line starts with `apt-get --fix-broken install -y`: a package left with
    // unmet dependencies (an extension's `dpkg -i … || true`) gets them installed.
    let mut broken: Vec<&str> = initially_broken.iter().copied().collect();
    broken.sort_unstable();
    for name in broken {
        if !r.mark_install(name, true, false) && r.errors.is_empty() {
            r.errors.push(r.unsatisfiable_error(name));
        }
    }

    // apt-get install: mark every request first (no dependencies), then resolve the ones whose
    // dependencies are not yet met, in order.
    for name in &todo {
        r.protected.insert(name);
        r.state_change(name);
    }
    for name in &todo {
        if r.inst_broken(name) && !r.mark_install(name, true, true) && r.errors.is_empty() {
            r.errors.push(r.unsatisfiable_error(name));
        }
    }
    // What apt's problem resolver does first: upgrade installed packages that the new
    // versions break.
    for _ in 0..16 {
        let mut changed = false;
        let inst = r.inst;
        let mut names: Vec<&str> = r.marked.keys().copied().collect();
        names.sort_unstable();
        names.extend(
            inst.iter()
                .map(|rec| rec.name.as_str())
                .filter(|n| !r.marked.contains_key(n)),
        );
        for name in names {
            if initially_broken.contains(name) || !r.inst_broken(name) {
                continue;
            }
            let upgradable = r.marked.contains_key(name) || r.cand(name) != r.current(name);
            if upgradable && r.mark_install(name, true, false) {
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    if let Some(e) = r.errors.drain(..).next() {
        return Err(e);
    }
    r.check_consistent(&initially_broken)?;

    let mut packages: Vec<PlannedPackage> = r
        .marked
        .iter()
        .filter_map(|(name, v)| {
            let rec = r.rec(*v);
            let dl = rec.download.as_ref()?;
            Some(PlannedPackage {
                name: (*name).to_string(),
                version: rec.version.clone(),
                architecture: rec.arch.clone(),
                filename: dl.filename.clone(),
                size: dl.size,
                sha256: dl.sha256.clone(),
                base_url: indexes.origins[dl.origin].clone(),
                multi_arch: rec.multi_arch.clone(),
                installed_version: r.current(name).map(|c| r.rec(c).version.clone()),
                pulled_by: r.why.get(name).map(|p| (*p).to_string()),
            })
        })
        .collect();
    packages.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Plan {
        architecture: base.architecture.clone(),
        packages,
    })
}

/// A version: installed (dpkg status) or available (an index).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Ver {
    Inst(u32),
    Avail(u32),
}

#[derive(Debug, Default)]
struct Deps {
    /// Pre-Depends then Depends, in field order.
    critical: Vec<Group>,
    /// Conflicts then Breaks.
    negative: Vec<Atom>,
}

struct Resolver<'a> {
    arch: &'a str,
    inst: &'a [Record],
    avail: &'a [Record],
    inst_by_name: HashMap<&'a str, u32>,
    /// Installed packages by source package name.
    inst_by_source: HashMap<&'a str, Vec<u32>>,
    avail_by_name: HashMap<&'a str, Vec<u32>>,
    prov_inst: HashMap<&'a str, Vec<u32>>,
    prov_avail: HashMap<&'a str, Vec<u32>>,
    /// Candidates changed by a pin or discarded by apt's satisfiability check.
    cand_override: HashMap<&'a str, Option<Ver>>,
    /// Packages whose install version differs from the installed one.
    marked: HashMap<&'a str, Ver>,
    protected: HashSet<&'a str>,
    why: HashMap<&'a str, &'a str>,
    /// apt's package IDs (creation order in the cache), approximated by first appearance.
    ids: HashMap<&'a str, u32>,
    deps_cache: HashMap<Ver, Rc<Deps>>,
    errors: Vec<DebianError>,
    /// The deepest dependency that could not be satisfied, for messages.
    last_unsatisfied: Option<(String, String)>,
}

fn idx(i: usize) -> u32 {
    u32::try_from(i).unwrap_or(u32::MAX)
}

impl<'a> Resolver<'a> {
    fn new(arch: &'a str, inst: &'a [Record], avail: &'a [Record]) -> Self {
        let mut inst_by_name = HashMap::new();
        let mut inst_by_source: HashMap<&str, Vec<u32>> = HashMap::new();
        let mut prov_inst: HashMap<&str, Vec<u32>> = HashMap::new();
        for (j, r) in inst.iter().enumerate() {
            inst_by_name.insert(r.name.as_str(), idx(j));
            inst_by_source
                .entry(r.source.as_str())
                .or_default()
                .push(idx(j));
            for p in &r.provides {
                prov_inst.entry(p.name.as_str()).or_default().push(idx(j));
            }
        }
        let mut prov_avail: HashMap<&str, Vec<u32>> = HashMap::new();
        let mut ids: HashMap<&str, u32> = HashMap::new();
        for (i, r) in avail.iter().enumerate() {
            let next = idx(ids.len());
            ids.entry(r.name.as_str()).or_insert(next);
            for p in &r.provides {
                prov_avail.entry(p.name.as_str()).or_default().push(idx(i));
            }
        }
        for r in inst {
            let next = idx(ids.len());
            ids.entry(r.name.as_str()).or_insert(next);
        }
        Self {
            arch,
            inst,
            avail,
            inst_by_name,
            inst_by_source,
            avail_by_name: index::by_name(avail),
            prov_inst,
            prov_avail,
            cand_override: HashMap::new(),
            marked: HashMap::new(),
            protected: HashSet::new(),
            why: HashMap::new(),
            ids,
            deps_cache: HashMap::new(),
            errors: Vec::new(),
            last_unsatisfied: None,
        }
    }

    fn rec(&self, v: Ver) -> &'a Record {
        match v {
            Ver::Inst(j) => &self.inst[j as usize],
            Ver::Avail(i) => &self.avail[i as usize],
        }
    }

    fn name_of(&self, v: Ver) -> &'a str {
        self.rec(v).name.as_str()
    }

    fn current(&self, name: &str) -> Option<Ver> {
        self.inst_by_name.get(name).map(|&j| Ver::Inst(j))
    }

    fn is_installed(&self, name: &str) -> bool {
        self.inst_by_name.contains_key(name)
    }

    /// apt's policy: the highest pin priority wins, then the highest version; the installed
    /// version (priority 100) is kept unless something newer has at least that priority.
    fn cand(&self, name: &str) -> Option<Ver> {
        if let Some(o) = self.cand_override.get(name) {
            return *o;
        }
        let best = self.avail_by_name.get(name).and_then(|vs| {
            vs.iter().copied().reduce(|a, b| {
                let (ra, rb) = (&self.avail[a as usize], &self.avail[b as usize]);
                match rb
                    .pin
                    .cmp(&ra.pin)
                    .then_with(|| compare_versions(&rb.version, &ra.version))
                {
                    Ordering::Greater => b,
                    _ => a,
                }
            })
        });
        match (best, self.current(name)) {
            (None, cur) => cur,
            (Some(i), None) => Some(Ver::Avail(i)),
            (Some(i), Some(cur)) => {
                let a = &self.avail[i as usize];
                if a.pin >= 100
                    && compare_versions(&a.version, &self.rec(cur).version) == Ordering::Greater
                {
                    Some(Ver::Avail(i))
                } else {
                    Some(cur)
                }
            }
        }
    }

    fn install_ver(&self, name: &str) -> Option<Ver> {
        self.marked
            .get(name)
            .copied()
            .or_else(|| self.current(name))
    }

    fn state_change(&mut self, name: &'a str) {
        match self.cand(name) {
            Some(c) if Some(c) != self.current(name) => {
                self.marked.insert(name, c);
            }
            _ => {
                self.marked.remove(name);
            }
        }
    }

    fn deps(&mut self, v: Ver) -> Rc<Deps> {
        if let Some(d) = self.deps_cache.get(&v) {
            return Rc::clone(d);
        }
        let rec = self.rec(v);
        let parse = |field: &str| parse_relations(field);
        let result = (|| -> Result<Deps, String> {
            let mut critical = parse(&rec.pre_depends)?;
            critical.extend(parse(&rec.depends)?);
            let mut negative: Vec<Atom> = parse(&rec.conflicts)?.into_iter().flatten().collect();
            negative.extend(parse(&rec.breaks)?.into_iter().flatten());
            Ok(Deps { critical, negative })
        })();
        let deps = Rc::new(result.unwrap_or_else(|message| {
            self.errors.push(DebianError::Parse {
                path: format!("relationship fields of {} {}", rec.name, rec.version).into(),
                message,
            });
            Deps::default()
        }));
        self.deps_cache.insert(v, Rc::clone(&deps));
        deps
    }

    fn arch_ok(&self, atom: &Atom) -> bool {
        match atom.arch.as_deref() {
            None | Some("any" | "native") => true,
            Some(a) => a == self.arch,
        }
    }

    fn provides(&self, v: Ver, atom: &Atom) -> bool {
        self.rec(v).provides.iter().any(|p| atom.provided_by(p))
    }

    /// Providers of `atom.name` (installed versions, then available versions).
    fn providers(&self, name: &str) -> impl Iterator<Item = Ver> + '_ {
        let inst = self
            .prov_inst
            .get(name)
            .into_iter()
            .flatten()
            .map(|&j| Ver::Inst(j));
        let avail = self
            .prov_avail
            .get(name)
            .into_iter()
            .flatten()
            .map(|&i| Ver::Avail(i));
        inst.chain(avail)
    }

    /// Is the atom satisfied by what will be installed (apt's `DepInstall`)?
    fn sat_install(&self, atom: &Atom) -> bool {
        if !self.arch_ok(atom) {
            return false;
        }
        if let Some(v) = self.install_ver(&atom.name)
            && atom.matches(&atom.name, &self.rec(v).version)
        {
            return true;
        }
        self.providers(&atom.name)
            .any(|v| self.install_ver(self.name_of(v)) == Some(v) && self.provides(v, atom))
    }

    /// Is the atom satisfied by a candidate version (apt's `DepCVer`)?
    fn sat_cand(&self, atom: &Atom) -> bool {
        if !self.arch_ok(atom) {
            return false;
        }
        if let Some(v) = self.cand(&atom.name)
            && atom.matches(&atom.name, &self.rec(v).version)
        {
            return true;
        }
        self.providers(&atom.name)
            .any(|v| self.cand(self.name_of(v)) == Some(v) && self.provides(v, atom))
    }

    /// Versions that would be installed and hit a negative dependency of `owner`.
    fn conflict_present(&self, atom: &Atom, owner: &str) -> bool {
        if !self.arch_ok(atom) {
            return false;
        }
        if atom.name != owner
            && let Some(v) = self.install_ver(&atom.name)
            && atom.matches(&atom.name, &self.rec(v).version)
        {
            return true;
        }
        self.providers(&atom.name).any(|v| {
            let n = self.name_of(v);
            n != owner && self.install_ver(n) == Some(v) && self.provides(v, atom)
        })
    }

    /// apt's `InstBroken`: the install version has an unmet dependency or a conflict.
    fn inst_broken(&mut self, name: &str) -> bool {
        let Some(v) = self.install_ver(name) else {
            return false;
        };
        let deps = self.deps(v);
        deps.critical
            .iter()
            .any(|g| !g.iter().any(|a| self.sat_install(a)))
            || deps.negative.iter().any(|a| self.conflict_present(a, name))
    }

    /// Candidate versions satisfying the atom: the package itself and its providers.
    fn solutions_candidate(&self, atom: &Atom) -> Vec<Ver> {
        let mut out = Vec::new();
        if !self.arch_ok(atom) {
            return out;
        }
        if let Some(c) = self.cand(&atom.name)
            && atom.matches(&atom.name, &self.rec(c).version)
        {
            out.push(c);
        }
        for v in self.providers(&atom.name) {
            if self.cand(self.name_of(v)) == Some(v) && self.provides(v, atom) && !out.contains(&v)
            {
                out.push(v);
            }
        }
        out
    }

    /// Installed versions satisfying the atom.
    fn solutions_installed(&self, atom: &Atom) -> Vec<Ver> {
        let mut out = Vec::new();
        if !self.arch_ok(atom) {
            return out;
        }
        if let Some(c) = self.current(&atom.name)
            && atom.matches(&atom.name, &self.rec(c).version)
        {
            out.push(c);
        }
        for v in self.providers(&atom.name) {
            if self.current(self.name_of(v)) == Some(v)
                && self.provides(v, atom)
                && !out.contains(&v)
            {
                out.push(v);
            }
        }
        out
    }

    fn flag(&self, name: &str, f: impl Fn(&Record) -> bool) -> bool {
        self.current(name).is_some_and(|v| f(self.rec(v)))
            || self
                .avail_by_name
                .get(name)
                .is_some_and(|vs| vs.iter().any(|&i| f(&self.avail[i as usize])))
    }

    /// apt's `CompareProviders`: `Less` means `a` is tried first.
    fn compare_providers(&self, a: Ver, b: Ver, target: &str) -> Ordering {
        let (ra, rb) = (self.rec(a), self.rec(b));
        let (na, nb) = (ra.name.as_str(), rb.name.as_str());
        let first = |x: bool, y: bool| {
            if x == y {
                None
            } else if x {
                Some(Ordering::Less)
            } else {
                Some(Ordering::Greater)
            }
        };
        if let Some(o) = first(self.protected.contains(na), self.protected.contains(nb)) {
            return o;
        }
        if ra.multi_arch == "same" || rb.multi_arch == "same" {
            let ia = ra.multi_arch == "same" && self.is_installed(na);
            let ib = rb.multi_arch == "same" && self.is_installed(nb);
            if let Some(o) = first(ia, ib) {
                return o;
            }
        }
        if let Some(o) = first(self.is_installed(na), self.is_installed(nb)) {
            return o;
        }
        if na != nb
            && let Some(o) = first(na == target, nb == target)
        {
            return o;
        }
        if let Some(o) = first(
            self.flag(na, |r| r.essential),
            self.flag(nb, |r| r.essential),
        ) {
            return o;
        }
        if let Some(o) = first(
            self.flag(na, |r| r.important),
            self.flag(nb, |r| r.important),
        ) {
            return o;
        }
        if ra.priority != rb.priority {
            return ra.priority.cmp(&rb.priority);
        }
        let id = |n: &str| self.ids.get(n).copied().unwrap_or(0);
        id(nb).cmp(&id(na))
    }

    /// apt's `getAllPossibleSolutions(..., CANDIDATE, sorted)`: per alternative, candidates in
    /// provider order; installed packages (upgrades) before new ones across the whole group.
    fn possible_solutions(&self, group: &[Atom]) -> Vec<Ver> {
        let mut upgrades = Vec::new();
        let mut news = Vec::new();
        for atom in group {
            let mut vl = self.solutions_candidate(atom);
            vl.sort_by(|a, b| self.compare_providers(*a, *b, &atom.name));
            for v in vl {
                if self.is_installed(self.name_of(v)) {
                    upgrades.push(v);
                } else {
                    news.push(v);
                }
            }
        }
        upgrades.extend(news);
        upgrades.dedup();
        upgrades
    }

    /// apt's `IsInstallOkDependenciesSatisfiableByCandidates`: a candidate with a dependency
    /// that nothing can satisfy is discarded.
    fn install_ok(&mut self, name: &'a str, auto: bool) -> bool {
        if !auto {
            return true;
        }
        let Some(c) = self.cand(name) else {
            return false;
        };
        if Some(c) == self.current(name) {
            return true;
        }
        let deps = self.deps(c);
        for g in &deps.critical {
            if g.iter().any(|a| self.sat_install(a) || self.sat_cand(a)) {
                continue;
            }
            self.last_unsatisfied = Some((
                format!("{name} {}", self.rec(c).version),
                group_to_string(g),
            ));
            if !self.protected.contains(name) {
                self.cand_override.insert(name, self.current(name));
                self.marked.remove(name);
            }
            return false;
        }
        true
    }

    /// apt's `pkgDepCache::MarkInstall`.
    fn mark_install(&mut self, name: &'a str, auto: bool, from_user: bool) -> bool {
        let Some(_) = self.cand(name) else {
            return false;
        };
        let protected = self.protected.contains(name);
        if !protected
            && !self.inst_broken(name)
            && (self.cand(name) == self.current(name) || self.marked.contains_key(name))
        {
            return true;
        }
        if !self.install_ok(name, auto) {
            return false;
        }
        if from_user {
            self.state_change(name);
        }
        if !auto {
            return true;
        }
        let Some(cand) = self.cand(name) else {
            return false;
        };
        let fail_early = !protected && !from_user;
        let deps = self.deps(cand);
        let to_install: Vec<usize> = (0..deps.critical.len())
            .filter(|&i| protected || !deps.critical[i].iter().any(|a| self.sat_install(a)))
            .collect();
        let to_remove: Vec<&Atom> = deps
            .negative
            .iter()
            .filter(|a| protected || self.conflict_present(a, name))
            .collect();
        let mut to_upgrade: Vec<&'a str> = Vec::new();
        let mut failed = !self.remove_conflicts(name, &to_remove, &mut to_upgrade, protected);
        if failed && fail_early {
            return false;
        }
        if !from_user {
            self.state_change(name);
        }
        // apt protects the package while its dependencies are marked.
        let newly_protected = self.protected.insert(name);
        self.upgrade_other_binaries(name, cand);
        for p in to_upgrade {
            if !self.marked.contains_key(p) && !self.mark_install(p, true, false) {
                self.errors.push(DebianError::Conflict {
                    package: format!("{name} {}", self.rec(cand).version),
                    message: format!(
                        "it conflicts with {p} {} installed in the base image, and no version of {p} can be installed instead; an image layer cannot remove packages",
                        self.current(p).map_or("?", |v| self.rec(v).version.as_str())
                    ),
                });
                failed = true;
            }
        }
        if !failed || !fail_early {
            failed |=
                !self.install_dependencies(name, cand, &deps, &to_install, protected, from_user);
        }
        if newly_protected {
            self.protected.remove(name);
        }
        if failed && fail_early {
            // apt's MarkInstall_DiscardInstall.
            self.marked.remove(name);
            return false;
        }
        !failed
    }

    /// apt keeps binaries of one source package in step: installing one upgrades the installed
    /// binaries of the same source whose candidate comes from the same source version.
    fn upgrade_other_binaries(&mut self, name: &'a str, cand: Ver) {
        let rec = self.rec(cand);
        let Some(siblings) = self.inst_by_source.get(rec.source.as_str()).cloned() else {
            return;
        };
        for j in siblings {
            let other = self.inst[j as usize].name.as_str();
            if other == name || self.marked.contains_key(other) {
                continue;
            }
            let Some(oc) = self.cand(other) else { continue };
            if Some(oc) == self.current(other) {
                continue;
            }
            let orec = self.rec(oc);
            if orec.source == rec.source && orec.source_version == rec.source_version {
                self.state_change(other);
                self.why.entry(other).or_insert(name);
            }
        }
    }

    /// apt's `MarkInstall_RemoveConflictsIfNotUpgradeable`, minus removals (which are errors).
    fn remove_conflicts(
        &mut self,
        name: &'a str,
        to_remove: &[&Atom],
        to_upgrade: &mut Vec<&'a str>,
        protected: bool,
    ) -> bool {
        let mut ok = true;
        let mut bad_candidate: Vec<&str> = Vec::new();
        let owner_version = self
            .cand(name)
            .map(|v| self.rec(v).version.clone())
            .unwrap_or_default();
        for atom in to_remove {
            for v in self.solutions_candidate(atom) {
                let p = self.name_of(v);
                if p == name {
                    continue;
                }
                if self.current(p) == Some(v) {
                    ok = false;
                    self.errors
                        .push(self.removal_error(name, &owner_version, atom, p));
                } else {
                    if self.marked.contains_key(p) {
                        self.marked.remove(p);
                    }
                    if protected {
                        self.cand_override.insert(p, self.current(p));
                    } else {
                        bad_candidate.push(p);
                    }
                }
            }
            for v in self.solutions_installed(atom) {
                let p = self.name_of(v);
                if p == name {
                    continue;
                }
                let c = self.cand(p);
                if c != Some(v) && c.is_some() && !bad_candidate.contains(&p) {
                    to_upgrade.push(p);
                } else if c == self.current(p) {
                    // Reported by the loop above.
                } else {
                    ok = false;
                    self.errors
                        .push(self.removal_error(name, &owner_version, atom, p));
                }
            }
        }
        ok
    }

    fn removal_error(&self, name: &str, version: &str, atom: &Atom, victim: &str) -> DebianError {
        DebianError::Conflict {
            package: format!("{name} {version}"),
            message: format!(
                "it declares Conflicts/Breaks `{atom}`, which matches {victim} {} installed in the base image; apt would remove {victim}, but an image layer cannot remove packages",
                self.current(victim)
                    .map_or("?", |v| self.rec(v).version.as_str())
            ),
        }
    }

    /// apt's `MarkInstall_InstallDependencies`.
    fn install_dependencies(
        &mut self,
        name: &'a str,
        cand: Ver,
        deps: &Deps,
        to_install: &[usize],
        propagate: bool,
        from_user: bool,
    ) -> bool {
        let mut ok = true;
        for &gi in to_install {
            let group = &deps.critical[gi];
            let satisfied = group.iter().any(|a| self.sat_install(a));
            if satisfied && !propagate {
                continue;
            }
            if satisfied {
                // Propagate protection to the single possible solution of a satisfied dependency.
                let mut sols: Vec<Ver> = Vec::new();
                for a in group {
                    for v in self
                        .solutions_candidate(a)
                        .into_iter()
                        .chain(self.solutions_installed(a))
                    {
                        if !sols.contains(&v) {
                            sols.push(v);
                        }
                    }
                }
                if sols.len() != 1 {
                    continue;
                }
                let p = self.name_of(sols[0]);
                // apt would upgrade an installed package here even when only its installed
                // version satisfies the dependency; keep it instead.
                if self.protected.contains(p)
                    || (self.current(p) == Some(sols[0]) && self.cand(p) != Some(sols[0]))
                {
                    continue;
                }
                self.protected.insert(p);
                if !self.mark_install(p, true, false) {
                    ok = false;
                }
                continue;
            }
            let sols = self.possible_solutions(group);
            let mut found = false;
            for v in sols.iter().copied() {
                let p = self.name_of(v);
                if self.cand(p) != Some(v) {
                    continue;
                }
                if propagate && sols.len() == 1 {
                    if !self.mark_install(p, false, false) {
                        continue;
                    }
                    self.protected.insert(p);
                }
                let before = self.marked.contains_key(p);
                if !self.mark_install(p, true, false) {
                    continue;
                }
                if !before && self.marked.contains_key(p) {
                    self.why.entry(p).or_insert(name);
                }
                found = true;
                break;
            }
            if !found {
                if self.last_unsatisfied.is_none() {
                    self.last_unsatisfied = Some((
                        format!("{name} {}", self.rec(cand).version),
                        group_to_string(group),
                    ));
                }
                ok = false;
                if propagate || from_user {
                    let detail = self.describe_group(group);
                    self.errors.push(DebianError::Unsatisfiable {
                        package: name.to_string(),
                        version: self.rec(cand).version.clone(),
                        dependency: group_to_string(group),
                        chain: self.chain(name),
                        detail,
                    });
                } else {
                    break;
                }
            }
        }
        ok
    }

    fn chain(&self, name: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut cur = name;
        while let Some(p) = self.why.get(cur) {
            if out.iter().any(|x| x == p) || out.len() > 64 {
                break;
            }
            out.push((*p).to_string());
            cur = p;
        }
        out
    }

    fn describe_group(&self, group: &[Atom]) -> String {
        let mut parts = Vec::new();
        for a in group {
            let mut s = match (self.cand(&a.name), self.current(&a.name)) {
                (Some(c), Some(cur)) if c != cur => format!(
                    "{} is installed at {} and available at {}",
                    a.name,
                    self.rec(cur).version,
                    self.rec(c).version
                ),
                (_, Some(cur)) => format!("{} is installed at {}", a.name, self.rec(cur).version),
                (Some(c), None) => format!("{} is available at {}", a.name, self.rec(c).version),
                (None, None) => format!("{} is in no index", a.name),
            };
            let provs: Vec<&str> = self.providers(&a.name).map(|v| self.name_of(v)).collect();
            if !provs.is_empty() {
                let _ = write!(s, " (provided by {})", provs.join(", "));
            }
            parts.push(s);
        }
        if let Some((pkg, dep)) = &self.last_unsatisfied {
            parts.push(format!("deepest unmet dependency: {pkg} needs `{dep}`"));
        }
        parts.join("; ")
    }

    fn unsatisfiable_error(&self, name: &str) -> DebianError {
        let (pkg, dep) = self
            .last_unsatisfied
            .clone()
            .unwrap_or_else(|| (name.to_string(), "(unknown)".to_string()));
        let (package, version) = pkg
            .split_once(' ')
            .map_or((pkg.clone(), String::new()), |(a, b)| {
                (a.to_string(), b.to_string())
            });
        let group = parse_relations(&dep)
            .ok()
            .and_then(|g| g.into_iter().next())
            .unwrap_or_default();
        DebianError::Unsatisfiable {
            chain: self.chain(&package),
            detail: self.describe_group(&group),
            package,
            version,
            dependency: dep,
        }
    }

    /// Every package that will be installed has its dependencies met and no conflicts.
    fn check_consistent(&mut self, initially_broken: &HashSet<&str>) -> Result<(), DebianError> {
        let names: Vec<&'a str> = self
            .marked
            .keys()
            .copied()
            .chain(self.inst.iter().map(|r| r.name.as_str()))
            .collect();
        for name in names {
            if initially_broken.contains(name) {
                continue;
            }
            let Some(v) = self.install_ver(name) else {
                continue;
            };
            let deps = self.deps(v);
            if let Some(g) = deps
                .critical
                .iter()
                .find(|g| !g.iter().any(|a| self.sat_install(a)))
            {
                return Err(DebianError::Unsatisfiable {
                    package: name.to_string(),
                    version: self.rec(v).version.clone(),
                    dependency: group_to_string(g),
                    chain: self.chain(name),
                    detail: self.describe_group(g),
                });
            }
            if let Some(a) = deps
                .negative
                .iter()
                .find(|a| self.conflict_present(a, name))
            {
                return Err(DebianError::Conflict {
                    package: format!("{name} {}", self.rec(v).version),
                    message: format!(
                        "it declares Conflicts/Breaks `{a}`, which the resulting package set would violate; an image layer cannot remove packages"
                    ),
                });
            }
        }
        Ok(())
    }

    /// The real package a request names: itself, or the single provider of a virtual name.
    fn target_name(
        &self,
        req: &Requested,
        described: &[String],
        progress: &dyn Fn(&str),
    ) -> Result<&'a str, DebianError> {
        if let Some((&n, _)) = self.avail_by_name.get_key_value(req.name.as_str()) {
            return Ok(n);
        }
        if let Some((&n, _)) = self.inst_by_name.get_key_value(req.name.as_str()) {
            return Ok(n);
        }
        let mut providers: Vec<&'a str> = Vec::new();
        for v in self.providers(&req.name) {
            let n = self.name_of(v);
            if self.cand(n) == Some(v) && !providers.contains(&n) {
                providers.push(n);
            }
        }
        match providers.as_slice() {
            [] => {
                let names = self
                    .avail_by_name
                    .keys()
                    .chain(self.prov_avail.keys())
                    .chain(self.inst_by_name.keys())
                    .copied();
                Err(DebianError::UnknownPackage {
                    name: req.name.clone(),
                    suggestions: suggest::nearest(&req.name, names, 5),
                    sources: described.join(", "),
                })
            }
            [one] if req.version.is_none() => {
                progress(&format!(
                    "note: selecting `{one}` instead of the virtual package `{}`",
                    req.name
                ));
                Ok(one)
            }
            _ => {
                let mut p: Vec<String> = providers.iter().map(|s| (*s).to_string()).collect();
                p.sort();
                Err(DebianError::VirtualPackage {
                    name: req.name.clone(),
                    providers: p,
                })
            }
        }
    }

    fn pinned_version(&self, name: &'a str, pin: &str) -> Result<Ver, DebianError> {
        if let Some(cur) = self.current(name)
            && compare_versions(&self.rec(cur).version, pin) == Ordering::Equal
        {
            return Ok(cur);
        }
        if let Some(vs) = self.avail_by_name.get(name)
            && let Some(&i) = vs.iter().find(|&&i| {
                compare_versions(&self.avail[i as usize].version, pin) == Ordering::Equal
            })
        {
            return Ok(Ver::Avail(i));
        }
        let mut available: Vec<String> = self
            .avail_by_name
            .get(name)
            .into_iter()
            .flatten()
            .map(|&i| self.avail[i as usize].version.clone())
            .collect();
        available.sort_by(|a, b| compare_versions(b, a));
        available.dedup();
        Err(DebianError::VersionNotFound {
            name: name.to_string(),
            version: pin.to_string(),
            available,
            installed: self.current(name).map(|v| self.rec(v).version.clone()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::paragraphs;

    fn records(text: &str, download: bool) -> Vec<Record> {
        paragraphs(text, false)
            .map(|p| Record::from_paragraph(&p, download.then_some(0)).unwrap())
            .collect()
    }

    fn plan(status: &str, packages: &str, req: &[&str]) -> Result<Vec<String>, DebianError> {
        let inst = records(status, false);
        let avail = records(packages, true);
        let base = BaseSystem {
            rootfs: "/nonexistent".into(),
            architecture: "amd64".into(),
            foreign_architectures: vec![],
            status_text: status.into(),
            installed: inst,
            sources: vec![],
            usr_aliases: vec![],
            path_filters: vec![],
        };
        let idx = Indexes {
            records: avail,
            origins: vec!["http://repo.invalid/debian".into()],
            described: vec!["test".into()],
        };
        let reqs: Vec<Requested> = req.iter().map(|r| Requested::parse(r).unwrap()).collect();
        let p = resolve_with(&base, &idx, &reqs, &|_| {})?;
        Ok(p.packages
            .iter()
            .map(|p| format!("{}={}", p.name, p.version))
            .collect())
    }

    const DL: &str = "Filename: pool/x.deb\nSize: 1\nSHA256: 00\n";

    fn pkg(name: &str, version: &str, extra: &str) -> String {
        format!(
            "Package: {name}\nVersion: {version}\nArchitecture: amd64\nPriority: optional\n{extra}{DL}\n"
        )
    }

    #[test]
    fn alternatives_virtuals_and_versions() {
        let status = "Package: libc6\nStatus: install ok installed\nVersion: 2.36-9\nArchitecture: amd64\n\nPackage: mawk\nStatus: install ok installed\nVersion: 1.3.4\nArchitecture: amd64\nProvides: awk\n";
        let packages = [
            pkg(
                "app",
                "1.0",
                "Depends: libc6 (>= 2.34), libfoo (>= 2) | libbar, awk, mail-transport-agent\n",
            ),
            pkg("libfoo", "1.5", ""),
            pkg("libfoo", "2.1", "Depends: libbaz\n"),
            pkg("libbaz", "1", ""),
            pkg("libbar", "1", ""),
            pkg("exim4", "4.96", "Provides: mail-transport-agent\n"),
            pkg("gawk", "5", "Provides: awk\n"),
        ]
        .concat();
        let got = plan(status, &packages, &["app"]).unwrap();
        assert_eq!(got, vec!["app=1.0", "exim4=4.96", "libbaz=1", "libfoo=2.1"]);
        // A pinned version of a dependency's target changes the or-group outcome.
        let got = plan(status, &packages, &["app", "libfoo=1.5"]).unwrap();
        assert_eq!(got, vec!["app=1.0", "exim4=4.96", "libbar=1", "libfoo=1.5"]);
        let err = plan(status, &packages, &["libfoo=3"]).unwrap_err();
        assert!(err.to_string().contains("available: 2.1, 1.5"), "{err}");
        let err = plan(status, &packages, &["lbfoo"]).unwrap_err();
        assert!(err.to_string().contains("`libfoo`"), "{err}");
    }

    #[test]
    fn upgrades_installed_dependencies_that_are_too_old() {
        let status = "Package: libjq1\nStatus: install ok installed\nVersion: 1.6-1\nArchitecture: amd64\n\nPackage: jq\nStatus: install ok installed\nVersion: 1.6-1\nArchitecture: amd64\nDepends: libjq1 (= 1.6-1)\n";
        let packages = [
            pkg("jq", "1.6-2", "Depends: libjq1 (= 1.6-2)\n"),
            pkg("libjq1", "1.6-2", ""),
        ]
        .concat();
        assert_eq!(
            plan(status, &packages, &["jq"]).unwrap(),
            vec!["jq=1.6-2", "libjq1=1.6-2"]
        );
        // Upgrading only the library breaks installed jq, which is upgraded too.
        assert_eq!(
            plan(status, &packages, &["libjq1"]).unwrap(),
            vec!["jq=1.6-2", "libjq1=1.6-2"]
        );
    }

    #[test]
    fn unsatisfiable_dependency_names_the_chain() {
        let packages = [
            pkg("top", "1", "Depends: mid\n"),
            pkg("mid", "1", "Depends: gone (>= 2)\n"),
            pkg("gone", "1", ""),
        ]
        .concat();
        let err = plan("", &packages, &["top"]).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("gone (>= 2)"), "{msg}");
    }

    #[test]
    fn validates_requests() {
        assert_eq!(Requested::parse("jq").unwrap().version, None);
        assert_eq!(
            Requested::parse("jq=1.6-2.1+deb12u3")
                .unwrap()
                .version
                .as_deref(),
            Some("1.6-2.1+deb12u3")
        );
        assert_eq!(Requested::parse("libc6=2:2.36~rc1").unwrap().name, "libc6");
        for bad in [
            "jq;rm -rf /",
            "$(id)",
            "jq`x`",
            "JQ",
            "j",
            "-jq",
            "jq:amd64",
            "jq=",
            "jq=1.0;ls",
            "jq=$(x)",
            "a b",
            "jq|x",
            "jq>x",
        ] {
            let e = Requested::parse(bad).unwrap_err();
            assert!(e.to_string().contains(bad), "{e}");
        }
        assert_eq!(
            Requested::parse("python3=3.11.2-1+b1").unwrap().to_string(),
            "python3=3.11.2-1+b1"
        );
    }
}
