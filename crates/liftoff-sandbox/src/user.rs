//! `USER` resolution against the image's `/etc/passwd` and `/etc/group`, the way container
//! runtimes do it: `name`, `uid`, `name:group`, `uid:gid`; supplementary groups come from the
//! `/etc/group` member lists.

use crate::error::{Result, SandboxError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ExecUser {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups (sorted, deduplicated).
    pub groups: Vec<u32>,
}

struct PasswdEntry<'a> {
    name: &'a str,
    uid: u32,
    gid: u32,
}

fn passwd_entries(passwd: &str) -> impl Iterator<Item = PasswdEntry<'_>> {
    passwd.lines().filter_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() < 4 || line.starts_with('#') {
            return None;
        }
        Some(PasswdEntry {
            name: f[0],
            uid: f[2].parse().ok()?,
            gid: f[3].parse().ok()?,
        })
    })
}

struct GroupEntry<'a> {
    name: &'a str,
    gid: u32,
    members: Vec<&'a str>,
}

fn group_entries(group: &str) -> impl Iterator<Item = GroupEntry<'_>> {
    group.lines().filter_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() < 3 || line.starts_with('#') {
            return None;
        }
        Some(GroupEntry {
            name: f[0],
            gid: f[2].parse().ok()?,
            members: f
                .get(3)
                .map(|m| {
                    m.split(',')
                        .map(str::trim)
                        .filter(|m| !m.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
        })
    })
}

/// Resolves `spec` (`None` means root) against the image's passwd and group files (empty when the
/// image has none).
pub(crate) fn resolve(spec: Option<&str>, passwd: &str, group: &str) -> Result<ExecUser> {
    let spec = spec
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .unwrap_or("root");
    let (user_part, group_part) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    if user_part.is_empty() {
        return Err(SandboxError::InvalidSpec(format!(
            "user {spec:?} has no user part"
        )));
    }

    let (uid, mut gid, name) = if let Ok(uid) = user_part.parse::<u32>() {
        match passwd_entries(passwd).find(|e| e.uid == uid) {
            Some(e) => (uid, e.gid, Some(e.name)),
            // A uid the image does not know runs with gid 0, like runc.
            None => (uid, 0, None),
        }
    } else {
        match passwd_entries(passwd).find(|e| e.name == user_part) {
            Some(e) => (e.uid, e.gid, Some(e.name)),
            None if user_part == "root" => (0, 0, Some("root")),
            None => {
                return Err(SandboxError::UnknownUser {
                    user: user_part.to_owned(),
                });
            }
        }
    };

    if let Some(g) = group_part.filter(|g| !g.is_empty()) {
        gid = if let Ok(n) = g.parse::<u32>() {
            n
        } else {
            group_entries(group)
                .find(|e| e.name == g)
                .map(|e| e.gid)
                .ok_or_else(|| SandboxError::UnknownGroup {
                    user: spec.to_owned(),
                    group: g.to_owned(),
                })?
        };
    }

    let mut groups: Vec<u32> = match name {
        Some(name) => group_entries(group)
            .filter(|e| e.members.contains(&name))
            .map(|e| e.gid)
            .collect(),
        None => Vec::new(),
    };
    groups.sort_unstable();
    groups.dedup();
    Ok(ExecUser { uid, gid, groups })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str =
        "root:x:0:0:root:/root:/bin/sh\n# comment\nnode:x:1000:1000::/home/node:/bin/sh\n";
    const GROUP: &str = "root:x:0:\nnode:x:1000:\nstaff:x:50:node,other\naudio:x:29:node\n";

    fn r(spec: Option<&str>) -> Result<ExecUser> {
        resolve(spec, PASSWD, GROUP)
    }

    #[test]
    fn names_and_numbers() {
        assert_eq!(
            r(None).unwrap(),
            ExecUser {
                uid: 0,
                gid: 0,
                groups: vec![]
            }
        );
        assert_eq!(
            r(Some("node")).unwrap(),
            ExecUser {
                uid: 1000,
                gid: 1000,
                groups: vec![29, 50]
            }
        );
        assert_eq!(r(Some("1000")).unwrap().groups, vec![29, 50]);
        assert_eq!(r(Some("1000:1000")).unwrap().gid, 1000);
        assert_eq!(r(Some("node:staff")).unwrap().gid, 50);
        assert_eq!(
            r(Some("4242")).unwrap(),
            ExecUser {
                uid: 4242,
                gid: 0,
                groups: vec![]
            }
        );
        assert_eq!(r(Some("4242:7")).unwrap().gid, 7);
        assert_eq!(resolve(Some("root"), "", "").unwrap().uid, 0);
    }

    #[test]
    fn unknown_names_are_errors() {
        assert!(matches!(
            r(Some("nobody")),
            Err(SandboxError::UnknownUser { .. })
        ));
        assert!(matches!(
            r(Some("node:wheel")),
            Err(SandboxError::UnknownGroup { .. })
        ));
        assert!(matches!(r(Some(":1")), Err(SandboxError::InvalidSpec(_))));
    }
}
