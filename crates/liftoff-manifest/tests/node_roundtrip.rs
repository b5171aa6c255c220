//! `encode_source` output must inflate in Node exactly as upstream's consumers do it
//! (`zlib.inflateSync(Buffer.from(contents, "base64"))`), with a matching md5.

use std::io::Write;
use std::process::{Command, Stdio};

use liftoff_manifest::encode_source;

const SCRIPT: &str = r#"
const zlib = require("node:zlib");
const crypto = require("node:crypto");
let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (c) => (input += c));
process.stdin.on("end", () => {
  const cases = JSON.parse(input);
  const out = cases.map(({ text, contents, contentHash }) => {
    const inflated = zlib.inflateSync(Buffer.from(contents, "base64")).toString("utf8");
    return {
      inflatedOk: inflated === text,
      hashOk: crypto.createHash("md5").update(text).digest("hex") === contentHash,
      sameBytesAsNode: zlib.deflateSync(text).toString("base64") === contents,
    };
  });
  process.stdout.write(JSON.stringify(out));
});
"#;

#[test]
#[allow(clippy::print_stderr, reason = "explain why the test was skipped")]
fn encode_source_inflates_in_node() {
    let texts = [
        String::new(),
        "export const x = 1;\n".to_owned(),
        "import { task } from \"@trigger.dev/sdk/v3\";\n// ünïcødé ✓ 🚀\r\n".repeat(300),
        (0..20_000)
            .map(|i| char::from(b'a' + u8::try_from(i % 26).unwrap()))
            .collect(),
    ];
    let cases: Vec<serde_json::Value> = texts
        .iter()
        .map(|text| {
            let encoded = encode_source(text);
            serde_json::json!({"text": text, "contents": encoded.contents, "contentHash": encoded.content_hash})
        })
        .collect();

    let child = Command::new("node")
        .arg("-e")
        .arg(SCRIPT)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!("note: `node` not found; skipping the Node inflate round-trip test");
            return;
        }
        Err(e) => panic!("spawning node: {e}"),
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(serde_json::to_string(&cases).unwrap().as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "node failed: {output:?}");
    let results: Vec<serde_json::Value> = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(results.len(), texts.len());
    for (text, result) in texts.iter().zip(&results) {
        assert_eq!(
            result["inflatedOk"],
            true,
            "inflate mismatch for {:?}",
            &text[..text.len().min(40)]
        );
        assert_eq!(
            result["hashOk"],
            true,
            "md5 mismatch for {:?}",
            &text[..text.len().min(40)]
        );
    }
}
