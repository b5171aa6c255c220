//! dpkg version comparison (epochs, `~`, letters before non-letters), as `dpkg --compare-versions`.

use std::cmp::Ordering;

/// Compare two Debian versions the way dpkg does.
pub fn compare_versions(a: &str, b: &str) -> Ordering {
    let (ea, ua, ra) = split(a);
    let (eb, ub, rb) = split(b);
    ea.cmp(&eb)
        .then_with(|| verrevcmp(ua.as_bytes(), ub.as_bytes()))
        .then_with(|| verrevcmp(ra.as_bytes(), rb.as_bytes()))
}

/// A relation operator of a dependency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relation {
    /// `<<`
    Lt,
    /// `<=` (also the obsolete `<`)
    Le,
    /// `=`
    Eq,
    /// `>=` (also the obsolete `>`)
    Ge,
    /// `>>`
    Gt,
}

impl Relation {
    /// Parse an operator as written in a relationship field.
    pub fn parse(op: &str) -> Option<Self> {
        Some(match op {
            "<<" => Self::Lt,
            "<=" | "<" => Self::Le,
            "=" => Self::Eq,
            ">=" | ">" => Self::Ge,
            ">>" => Self::Gt,
            _ => return None,
        })
    }

    /// The operator as dpkg writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Lt => "<<",
            Self::Le => "<=",
            Self::Eq => "=",
            Self::Ge => ">=",
            Self::Gt => ">>",
        }
    }

    /// Whether `version <op> wanted` holds.
    pub fn holds(self, version: &str, wanted: &str) -> bool {
        let o = compare_versions(version, wanted);
        match self {
            Self::Lt => o == Ordering::Less,
            Self::Le => o != Ordering::Greater,
            Self::Eq => o == Ordering::Equal,
            Self::Ge => o != Ordering::Less,
            Self::Gt => o == Ordering::Greater,
        }
    }
}

fn split(v: &str) -> (u64, &str, &str) {
    let v = v.trim();
    let (epoch, rest) = match v.split_once(':') {
        Some((e, r)) if !e.is_empty() && e.bytes().all(|c| c.is_ascii_digit()) => {
            (e.parse().unwrap_or(u64::MAX), r)
        }
        _ => (0, v),
    };
    match rest.rsplit_once('-') {
        Some((u, r)) => (epoch, u, r),
        None => (epoch, rest, ""),
    }
}

fn order(c: Option<u8>) -> i32 {
    match c {
        None => 0,
        Some(c) if c.is_ascii_digit() => 0,
        Some(c) if c.is_ascii_alphabetic() => i32::from(c),
        Some(b'~') => -1,
        Some(c) => i32::from(c) + 256,
    }
}

fn verrevcmp(a: &[u8], b: &[u8]) -> Ordering {
    let (mut i, mut j) = (0usize, 0usize);
    let at = |s: &[u8], k: usize| s.get(k).copied();
    let digit = |c: Option<u8>| c.is_some_and(|c| c.is_ascii_digit());
    while i < a.len() || j < b.len() {
        let mut first_diff: i32 = 0;
        while (i < a.len() && !digit(at(a, i))) || (j < b.len() && !digit(at(b, j))) {
            let ac = order(at(a, i));
            let bc = order(at(b, j));
            if ac != bc {
                return ac.cmp(&bc);
            }
            i += 1;
            j += 1;
        }
        while at(a, i) == Some(b'0') {
            i += 1;
        }
        while at(b, j) == Some(b'0') {
            j += 1;
        }
        while digit(at(a, i)) && digit(at(b, j)) {
            if first_diff == 0 {
                first_diff = i32::from(a[i]) - i32::from(b[j]);
            }
            i += 1;
            j += 1;
        }
        if digit(at(a, i)) {
            return Ordering::Greater;
        }
        if digit(at(b, j)) {
            return Ordering::Less;
        }
        if first_diff != 0 {
            return first_diff.cmp(&0);
        }
    }
    Ordering::Equal
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cmp::Ordering::{Equal, Greater, Less};

    #[test]
    fn compares_like_dpkg() {
        let cases = [
            ("1.0", "1.0", Equal),
            ("1.0", "1.1", Less),
            ("1.0-1", "1.0-2", Less),
            ("1:0.1", "2.0", Greater),
            ("0:2.0", "2.0", Equal),
            ("1.0~rc1", "1.0", Less),
            ("1.0~~", "1.0~", Less),
            ("1.0~", "1.0", Less),
            ("1.0", "1.0+b1", Less),
            ("1.0a", "1.0", Greater),
            ("1.0a", "1.0+", Less),
            ("1.10", "1.9", Greater),
            ("1.001", "1.1", Equal),
            ("2.36-9+deb12u4", "2.36-9+deb12u10", Less),
            ("1.6-2.1+deb12u1", "1.6-2.1+deb12u3", Less),
            ("7:5.1.6-0+deb12u1", "7:5.1.9-0+deb12u1", Less),
            ("2:8.39-15", "8.40", Greater),
            ("1.2.3-1~bpo12+1", "1.2.3-1", Less),
            ("", "0", Equal),
        ];
        for (a, b, want) in cases {
            assert_eq!(compare_versions(a, b), want, "{a} vs {b}");
            assert_eq!(compare_versions(b, a), want.reverse(), "{b} vs {a}");
        }
    }

    #[test]
    fn relations() {
        assert!(Relation::Ge.holds("2.36-9", "2.34"));
        assert!(!Relation::Lt.holds("2.36", "2.36"));
        assert!(Relation::Le.holds("2.36", "2.36"));
        assert!(Relation::Eq.holds("0:1.0", "1.0"));
        assert!(Relation::Gt.holds("1:0", "9"));
        assert_eq!(Relation::parse("<"), Some(Relation::Le));
        assert_eq!(Relation::parse("=>"), None);
    }
}
