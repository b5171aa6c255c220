//! dpkg's `path-exclude`/`path-include` filters (`/etc/dpkg/dpkg.cfg`, `/etc/dpkg/dpkg.cfg.d/*`),
//! which slim images use to drop documentation, man pages and locales from every package dpkg
//! installs. liftoff's unpacker applies them as dpkg does: the last matching filter decides, the
//! glob is `fnmatch` without `FNM_PATHNAME` (`*` matches `/` too), and an excluded directory (or
//! symlink) is kept when an include filter could match below it.

use std::path::Path;

use crate::rootfs;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PathFilter {
    pub include: bool,
    pub pattern: String,
}

/// The filters of a rootfs, in dpkg's order: `dpkg.cfg`, then `dpkg.cfg.d/*` by name (only names
/// of letters, digits, `_` and `-`, as dpkg reads them).
pub(crate) fn read(root: &Path) -> Vec<PathFilter> {
    let mut texts = Vec::new();
    if let Ok(b) = rootfs::read(root, "/etc/dpkg/dpkg.cfg") {
        texts.push(String::from_utf8_lossy(&b).into_owned());
    }
    let dir = rootfs::resolve_in(root, Path::new("/etc/dpkg/dpkg.cfg.d"));
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| {
            n.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        })
        .collect();
    names.sort();
    for n in names {
        if let Ok(b) = rootfs::read(root, &format!("/etc/dpkg/dpkg.cfg.d/{n}")) {
            texts.push(String::from_utf8_lossy(&b).into_owned());
        }
    }
    let mut out = Vec::new();
    for text in texts {
        out.extend(parse(&text));
    }
    out
}

fn parse(text: &str) -> Vec<PathFilter> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = match line.split_once(['=', ' ', '\t']) {
            Some((k, v)) => (k.trim(), v.trim()),
            None => (line, ""),
        };
        let include = match key {
            "path-include" => true,
            "path-exclude" => false,
            _ => continue,
        };
        if !value.is_empty() {
            out.push(PathFilter {
                include,
                pattern: value.to_string(),
            });
        }
    }
    out
}

/// Whether dpkg would leave `path` (absolute, e.g. `/usr/share/doc/x/changelog.gz`) out.
pub(crate) fn skip(filters: &[PathFilter], path: &str, dir_or_symlink: bool) -> bool {
    let mut skip = false;
    for f in filters {
        if fnmatch(f.pattern.as_bytes(), path.as_bytes()) {
            skip = !f.include;
        }
    }
    if skip && dir_or_symlink {
        // Keep directories an include filter may need: the pattern's literal prefix (up to its
        // first wildcard) and the path agree over the shorter of the two.
        for f in filters.iter().filter(|f| f.include) {
            let prefix_len = f
                .pattern
                .find(['*', '?', '[', '\\'])
                .unwrap_or(f.pattern.len());
            let n = prefix_len.min(path.len());
            if f.pattern.as_bytes()[..n] == path.as_bytes()[..n] {
                return false;
            }
        }
    }
    skip
}

/// `fnmatch(pattern, name, 0)`: `*` and `?` match any byte including `/`, `[...]` classes
/// (`!`/`^` negation, ranges), `\` escapes.
fn fnmatch(p: &[u8], n: &[u8]) -> bool {
    match p.first() {
        None => n.is_empty(),
        Some(b'*') => {
            let rest = &p[1..];
            (0..=n.len()).any(|i| fnmatch(rest, &n[i..]))
        }
        Some(b'?') => !n.is_empty() && fnmatch(&p[1..], &n[1..]),
        Some(b'\\') if p.len() > 1 => n.first() == Some(&p[1]) && fnmatch(&p[2..], &n[1..]),
        Some(b'[') => {
            let Some(c) = n.first() else { return false };
            let mut i = 1;
            let negate = matches!(p.get(i), Some(b'!' | b'^'));
            if negate {
                i += 1;
            }
            let mut hit = false;
            let mut first = true;
            while i < p.len() && (first || p[i] != b']') {
                first = false;
                if i + 2 < p.len() && p[i + 1] == b'-' && p[i + 2] != b']' {
                    hit |= p[i] <= *c && *c <= p[i + 2];
                    i += 3;
                } else {
                    hit |= p[i] == *c;
                    i += 1;
                }
            }
            if i >= p.len() {
                // No closing bracket: a literal `[`.
                return *c == b'[' && fnmatch(&p[1..], &n[1..]);
            }
            hit != negate && fnmatch(&p[i + 1..], &n[1..])
        }
        Some(ch) => n.first() == Some(ch) && fnmatch(&p[1..], &n[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slim() -> Vec<PathFilter> {
        parse(
            "# slim\npath-exclude=/usr/share/doc/*\npath-include=/usr/share/doc/*/copyright\npath-exclude /usr/share/man/*\npath-exclude=/usr/share/locale/*\npath-include=/usr/share/locale/locale.alias\n",
        )
    }

    #[test]
    fn dpkg_semantics() {
        let f = slim();
        assert!(skip(&f, "/usr/share/doc/git/changelog.gz", false));
        assert!(skip(&f, "/usr/share/doc/git/contrib/x/y.sh", false));
        assert!(!skip(&f, "/usr/share/doc/git/copyright", false));
        // The directory that holds an included file stays.
        assert!(!skip(&f, "/usr/share/doc/git", true));
        assert!(!skip(&f, "/usr/share/doc", true));
        assert!(skip(&f, "/usr/share/man/man1", true));
        assert!(skip(&f, "/usr/share/man/man1/git.1.gz", false));
        assert!(!skip(&f, "/usr/share/man", true));
        assert!(skip(&f, "/usr/share/locale/de/LC_MESSAGES/git.mo", false));
        assert!(skip(&f, "/usr/share/locale/de", true));
        assert!(!skip(&f, "/usr/share/locale/locale.alias", false));
        assert!(!skip(&f, "/usr/bin/git", false));
        assert!(!skip(&[], "/usr/share/doc/git/changelog.gz", false));
    }

    #[test]
    fn globs() {
        assert!(fnmatch(b"/a/*", b"/a/b/c"));
        assert!(fnmatch(b"/a/?.txt", b"/a/b.txt"));
        assert!(fnmatch(b"/a/[a-c]x", b"/a/bx"));
        assert!(!fnmatch(b"/a/[!a-c]x", b"/a/bx"));
        assert!(fnmatch(b"/a/\\*", b"/a/*"));
        assert!(!fnmatch(b"/a/\\*", b"/a/b"));
    }
}
