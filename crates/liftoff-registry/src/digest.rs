//! Content digests (`sha256:<hex>`, `sha512:<hex>`): parsing and hashing.

use sha2::Digest as _;

use crate::RegistryError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Algorithm {
    Sha256,
    Sha512,
}

impl Algorithm {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Sha256 => "sha256",
            Self::Sha512 => "sha512",
        }
    }

    fn hex_len(self) -> usize {
        match self {
            Self::Sha256 => 64,
            Self::Sha512 => 128,
        }
    }

    pub(crate) fn hasher(self) -> Hasher {
        match self {
            Self::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
            Self::Sha512 => Hasher::Sha512(sha2::Sha512::new()),
        }
    }
}

/// A syntactically valid digest of a supported algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ParsedDigest<'a> {
    pub algorithm: Algorithm,
    pub hex: &'a str,
}

/// Parses `algo:hex`; only sha256 and sha512 with lowercase hex of the right length are accepted.
pub(crate) fn parse(digest: &str) -> Result<ParsedDigest<'_>, RegistryError> {
    let unsupported = || RegistryError::UnsupportedDigest {
        digest: digest.to_string(),
    };
    let (algo, hex) = digest.split_once(':').ok_or_else(unsupported)?;
    let algorithm = match algo {
        "sha256" => Algorithm::Sha256,
        "sha512" => Algorithm::Sha512,
        _ => return Err(unsupported()),
    };
    if hex.len() != algorithm.hex_len()
        || !hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(unsupported());
    }
    Ok(ParsedDigest { algorithm, hex })
}

pub(crate) enum Hasher {
    Sha256(sha2::Sha256),
    Sha512(sha2::Sha512),
}

impl Hasher {
    pub(crate) fn update(&mut self, bytes: &[u8]) {
        match self {
            Self::Sha256(h) => h.update(bytes),
            Self::Sha512(h) => h.update(bytes),
        }
    }

    pub(crate) fn finish(self) -> String {
        match self {
            Self::Sha256(h) => format!("sha256:{:x}", h.finalize()),
            Self::Sha512(h) => format!("sha512:{:x}", h.finalize()),
        }
    }
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{:x}", sha2::Sha256::digest(bytes))
}

/// The digest of `bytes` with `algorithm`, as `algo:hex`.
pub(crate) fn of_bytes(algorithm: Algorithm, bytes: &[u8]) -> String {
    let mut hasher = algorithm.hasher();
    hasher.update(bytes);
    hasher.finish()
}
