//! Docker-style image references, normalised the way `docker pull` does.

use std::fmt;
use std::str::FromStr;

use crate::RegistryError;
use crate::digest;

/// The registry name Docker Hub references normalise to.
pub const DOCKER_HUB: &str = "docker.io";

/// A parsed image reference: `registry/repository[:tag][@digest]`.
///
/// `node:21-bookworm-slim` is `docker.io/library/node:21-bookworm-slim`; a first path component
/// is a registry only if it has a `.` or a `:`, or is `localhost` (as in Docker).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    /// `docker.io`, `ghcr.io`, `127.0.0.1:5000`, …
    pub registry: String,
    /// `library/node`, `imbios/bun-node`, …
    pub repository: String,
    pub tag: Option<String>,
    /// `sha256:<hex>`; when present it pins the manifest (the tag is then informational).
    pub digest: Option<String>,
}

impl Reference {
    /// The tag or digest to ask the registry for: the digest if pinned, else the tag, else `latest`.
    pub fn manifest_reference(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or("latest")
    }
}

impl FromStr for Reference {
    type Err = RegistryError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let invalid = |reason: &str| RegistryError::InvalidReference {
            input: input.to_string(),
            reason: reason.to_string(),
        };
        if input.is_empty() {
            return Err(invalid("it is empty"));
        }
        if input.chars().any(char::is_whitespace) {
            return Err(invalid("it contains whitespace"));
        }
        let (rest, digest) = match input.split_once('@') {
            Some((rest, digest)) => {
                digest::parse(digest).map_err(|_| {
                    invalid("the digest after `@` must be `sha256:` followed by 64 lowercase hex digits (or `sha512:` and 128)")
                })?;
                (rest, Some(digest.to_string()))
            }
            None => (input, None),
        };
        let (name, tag) = match rest.rfind(':') {
            Some(i) if !rest[i + 1..].contains('/') => (&rest[..i], Some(&rest[i + 1..])),
            _ => (rest, None),
        };
        if let Some(tag) = tag
            && !valid_tag(tag)
        {
            return Err(invalid(
                "a tag is 1 to 128 characters of letters, digits, `_`, `.` and `-`, not starting with `.` or `-`",
            ));
        }
        let (registry, path) = match name.split_once('/') {
            Some((first, path)) if looks_like_registry(first) => (first, path),
            _ => (DOCKER_HUB, name),
        };
        if !valid_registry(registry) {
            return Err(invalid(
                "the registry must be a host name or address, optionally with `:port`",
            ));
        }
        if path.is_empty() {
            return Err(invalid("the repository name is missing"));
        }
        if path.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(invalid("repository names must be lowercase"));
        }
        if !path.split('/').all(valid_path_component) {
            return Err(invalid(
                "repository path components are lowercase letters and digits, separated by `.`, `_`, `__` or dashes",
            ));
        }
        let registry = normalize_registry(registry);
        let repository = if registry == DOCKER_HUB && !path.contains('/') {
            format!("library/{path}")
        } else {
            path.to_string()
        };
        if registry.len() + 1 + repository.len() > 255 {
            return Err(invalid("the name is longer than 255 characters"));
        }
        Ok(Self {
            registry,
            repository,
            tag: tag.map(str::to_string),
            digest,
        })
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

/// Docker Hub's many names all mean `docker.io`.
pub(crate) fn normalize_registry(registry: &str) -> String {
    match registry {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            DOCKER_HUB.to_string()
        }
        other => other.to_string(),
    }
}

pub(crate) fn looks_like_registry(first: &str) -> bool {
    first.contains('.')
        || first.contains(':')
        || first == "localhost"
        || first.chars().any(|c| c.is_ascii_uppercase())
}

fn valid_registry(registry: &str) -> bool {
    let (host, port) = if let Some(rest) = registry.strip_prefix('[') {
        // [ipv6]:port
        let Some((addr, after)) = rest.split_once(']') else {
            return false;
        };
        if addr.is_empty() || !addr.chars().all(|c| c.is_ascii_hexdigit() || c == ':') {
            return false;
        }
        match after {
            "" => return true,
            _ => match after.strip_prefix(':') {
                Some(port) => ("x", Some(port)),
                None => return false,
            },
        }
    } else {
        match registry.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (registry, None),
        }
    };
    let port_ok =
        port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()));
    let host_ok = !host.is_empty()
        && host.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    port_ok && host_ok
}

fn valid_tag(tag: &str) -> bool {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-';
    !tag.is_empty()
        && tag.len() <= 128
        && tag.chars().all(ok_char)
        && !tag.starts_with('.')
        && !tag.starts_with('-')
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`
fn valid_path_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let (Some(&first), Some(&last)) = (bytes.first(), bytes.last()) else {
        return false;
    };
    if !alnum(first) || !alnum(last) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        // A separator run: ".", "_", "__" or one or more "-".
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let sep = &component[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|b| b == b'-');
        if !ok {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Reference {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn docker_hub_official_image_with_digest() {
        let hex = "a".repeat(64);
        let r = parse(&format!("node:21-bookworm-slim@sha256:{hex}"));
        assert_eq!(r.registry, "docker.io");
        assert_eq!(r.repository, "library/node");
        assert_eq!(r.tag.as_deref(), Some("21-bookworm-slim"));
        assert_eq!(r.digest, Some(format!("sha256:{hex}")));
        assert_eq!(r.manifest_reference(), format!("sha256:{hex}"));
        assert_eq!(
            r.to_string(),
            format!("docker.io/library/node:21-bookworm-slim@sha256:{hex}")
        );
    }

    #[test]
    fn docker_hub_user_image() {
        let r = parse("imbios/bun-node:1.1");
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str(), r.tag.as_deref()),
            ("docker.io", "imbios/bun-node", Some("1.1"))
        );
        assert_eq!(
            parse("docker.io/imbios/bun-node").repository,
            "imbios/bun-node"
        );
        assert_eq!(parse("index.docker.io/library/node").registry, "docker.io");
        assert_eq!(parse("ubuntu").manifest_reference(), "latest");
    }

    #[test]
    fn registries_with_ports_and_localhost() {
        let r = parse("127.0.0.1:5000/a/b:t");
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str(), r.tag.as_deref()),
            ("127.0.0.1:5000", "a/b", Some("t"))
        );
        let r = parse("localhost/x");
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str(), r.tag.as_deref()),
            ("localhost", "x", None)
        );
        let r = parse("localhost:5000/x");
        assert_eq!(r.registry, "localhost:5000");
        let r = parse("ghcr.io/triggerdotdev/trigger.dev:v3.3.0");
        assert_eq!(r.repository, "triggerdotdev/trigger.dev");
        let r = parse("[::1]:5000/a:b");
        assert_eq!(r.registry, "[::1]:5000");
        // Without a slash the first component is the repository, as in Docker.
        let r = parse("localhost:5000");
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str()),
            ("docker.io", "library/localhost")
        );
    }

    #[test]
    fn display_round_trips() {
        for s in [
            "docker.io/library/node:21",
            "127.0.0.1:5000/a/b-c__d.e:t_1",
            "localhost/x",
        ] {
            assert_eq!(parse(s).to_string(), s);
            assert_eq!(parse(&parse(s).to_string()), parse(s));
        }
    }

    #[test]
    fn rejects_invalid_references() {
        for (input, needle) in [
            ("", "empty"),
            ("Node:21", "lowercase"),
            ("node:", "tag"),
            ("node:-x", "tag"),
            ("node@sha256:abc", "digest"),
            ("node@md5:0123", "digest"),
            ("a//b", "path components"),
            ("a/b_/c", "path components"),
            ("example.com:port/x", "registry"),
            ("example.com/", "missing"),
            ("no de", "whitespace"),
        ] {
            let err = input.parse::<Reference>().expect_err(input).to_string();
            assert!(err.contains(needle), "{input}: {err}");
            assert!(err.contains(&format!("`{input}`")), "{err}");
        }
    }
}
