//! Relationship fields: `Depends: a (>= 1) | b, c:any`.

use crate::version::Relation;
use std::fmt;

/// One alternative of a dependency: a package name with an optional version constraint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Atom {
    pub name: String,
    /// Architecture qualifier (`any`, `native` or an architecture), if written.
    pub arch: Option<String>,
    pub rel: Option<(Relation, String)>,
}

impl Atom {
    /// Whether a package `name` at `version` satisfies this atom directly.
    pub fn matches(&self, name: &str, version: &str) -> bool {
        self.name == name && self.rel.as_ref().is_none_or(|(op, v)| op.holds(version, v))
    }

    /// Whether a `Provides: name (= version)` entry satisfies this atom.
    pub fn provided_by(&self, provides: &Provide) -> bool {
        if provides.name != self.name {
            return false;
        }
        match (&self.rel, &provides.version) {
            (None, _) => true,
            // An unversioned Provides never satisfies a versioned dependency.
            (Some(_), None) => false,
            (Some((op, want)), Some(have)) => op.holds(have, want),
        }
    }
}

impl fmt::Display for Atom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if let Some(a) = &self.arch {
            write!(f, ":{a}")?;
        }
        if let Some((op, v)) = &self.rel {
            write!(f, " ({} {v})", op.as_str())?;
        }
        Ok(())
    }
}

/// An or-group of alternatives.
pub(crate) type Group = Vec<Atom>;

pub(crate) fn group_to_string(g: &[Atom]) -> String {
    g.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" | ")
}

/// A `Provides` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Provide {
    pub name: String,
    pub version: Option<String>,
}

/// Parse a relationship field into and-ed or-groups.
pub(crate) fn parse_relations(field: &str) -> Result<Vec<Group>, String> {
    let mut out = Vec::new();
    for clause in field.split(',') {
        if clause.trim().is_empty() {
            continue;
        }
        let mut group = Vec::new();
        for alt in clause.split('|') {
            group.push(parse_atom(alt)?);
        }
        out.push(group);
    }
    Ok(out)
}

/// Parse a `Provides` field.
pub(crate) fn parse_provides(field: &str) -> Result<Vec<Provide>, String> {
    let mut out = Vec::new();
    for clause in field.split(',') {
        if clause.trim().is_empty() {
            continue;
        }
        let atom = parse_atom(clause)?;
        let version = match atom.rel {
            None => None,
            Some((Relation::Eq, v)) => Some(v),
            Some((op, _)) => {
                return Err(format!(
                    "Provides `{}` uses `{}`; only `=` is allowed",
                    atom.name,
                    op.as_str()
                ));
            }
        };
        out.push(Provide {
            name: atom.name,
            version,
        });
    }
    Ok(out)
}

fn parse_atom(text: &str) -> Result<Atom, String> {
    let s = text.trim();
    let name_end = s
        .find(|c: char| c.is_whitespace() || matches!(c, '(' | '[' | '<' | ':'))
        .unwrap_or(s.len());
    let name = &s[..name_end];
    if name.is_empty() {
        return Err(format!("empty package name in `{}`", text.trim()));
    }
    let mut rest = s[name_end..].trim_start();
    let mut arch = None;
    if let Some(r) = rest.strip_prefix(':') {
        let end = r
            .find(|c: char| c.is_whitespace() || matches!(c, '(' | '[' | '<'))
            .unwrap_or(r.len());
        arch = Some(r[..end].to_string());
        rest = r[end..].trim_start();
    }
    let mut rel = None;
    if let Some(r) = rest.strip_prefix('(') {
        let close = r
            .find(')')
            .ok_or_else(|| format!("unclosed `(` in `{}`", text.trim()))?;
        let inner = r[..close].trim();
        let op_end = inner
            .find(|c: char| !matches!(c, '<' | '>' | '='))
            .unwrap_or(inner.len());
        let op = Relation::parse(&inner[..op_end])
            .ok_or_else(|| format!("bad version operator in `{}`", text.trim()))?;
        let version = inner[op_end..].trim();
        if version.is_empty() {
            return Err(format!("missing version in `{}`", text.trim()));
        }
        rel = Some((op, version.to_string()));
        rest = r[close + 1..].trim_start();
    }
    // Architecture restrictions `[...]` and build profiles `<...>` only appear in source
    // packages; they are accepted and ignored here.
    let _ = rest;
    Ok(Atom {
        name: name.to_string(),
        arch,
        rel,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_groups() {
        let g = parse_relations("libc6 (>= 2.34), libjack-jackd2-0 (>= 1.9.10+20150825) | libjack-0.125, python3:any,  perl(>>5.0)").unwrap();
        assert_eq!(g.len(), 4);
        assert_eq!(g[0][0].name, "libc6");
        assert_eq!(g[0][0].rel, Some((Relation::Ge, "2.34".into())));
        assert_eq!(g[1].len(), 2);
        assert_eq!(g[1][1].name, "libjack-0.125");
        assert_eq!(g[2][0].arch.as_deref(), Some("any"));
        assert_eq!(g[3][0].rel, Some((Relation::Gt, "5.0".into())));
        assert_eq!(
            group_to_string(&g[1]),
            "libjack-jackd2-0 (>= 1.9.10+20150825) | libjack-0.125"
        );
    }

    #[test]
    fn provides_and_matching() {
        let p = parse_provides("libfoo-abi-1, bar (= 2.0)").unwrap();
        assert_eq!(p[1].version.as_deref(), Some("2.0"));
        let versioned = &parse_relations("bar (>= 1.5)").unwrap()[0][0];
        assert!(versioned.provided_by(&p[1]));
        let plain = &parse_relations("libfoo-abi-1 (>= 1)").unwrap()[0][0];
        assert!(!plain.provided_by(&p[0]));
        assert!(parse_provides("x (>= 1)").is_err());
        assert!(parse_relations("a (>= )").is_err());
    }
}
