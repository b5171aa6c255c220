//! `sources` entries: upstream `resolveFileSource` / `compressContent`.

use std::io::Write;

use base64::Engine;
use flate2::Compression;
use flate2::write::ZlibEncoder;
use md5::{Digest, Md5};

use crate::manifest::SourceFile;

/// Encode a source file the way upstream stores it in `sources`:
/// `contents` = base64(zlib (RFC 1950) deflate of the UTF-8 text), compression level 6 like
/// Node's `zlib.deflateSync` default; `contentHash` = lowercase hex md5 of the text.
///
/// The compressed bytes need not equal Node's, only inflate (`zlib.inflateSync`) back to
/// the same text.
pub fn encode_source(text: &str) -> SourceFile {
    let mut encoder = ZlibEncoder::new(Vec::new(), Compression::new(6));
    // Writing into a Vec cannot fail.
    encoder
        .write_all(text.as_bytes())
        .expect("compressing into memory cannot fail");
    let compressed = encoder
        .finish()
        .expect("compressing into memory cannot fail");
    SourceFile {
        contents: base64::engine::general_purpose::STANDARD.encode(compressed),
        content_hash: md5_hex(text.as_bytes()),
    }
}

fn md5_hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = Md5::digest(bytes);
    let mut out = String::with_capacity(32);
    for b in digest {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn round_trips_and_hashes() {
        let text = "export const a = \"é\";\n".repeat(50);
        let encoded = encode_source(&text);
        let compressed = base64::engine::general_purpose::STANDARD
            .decode(&encoded.contents)
            .unwrap();
        assert_eq!(compressed[0], 0x78, "zlib header");
        let mut decoded = String::new();
        flate2::read::ZlibDecoder::new(&compressed[..])
            .read_to_string(&mut decoded)
            .unwrap();
        assert_eq!(decoded, text);
        assert_eq!(
            encode_source("").content_hash,
            "d41d8cd98f00b204e9800998ecf8427e"
        );
        assert_eq!(
            encode_source("hello world\n").content_hash,
            "6f5902ac237024bdd0c176cb93063dc4"
        );
    }
}
