//! A `JSON.stringify(value)` look-alike (minified form).
//!
//! Differences from `serde_json::to_string` that matter for byte-identical output:
//! * object keys that are JavaScript array indices ("0", "10", ...) are enumerated first, in
//!   ascending numeric order, before all other keys (which keep insertion order);
//! * numbers use JavaScript's `Number.prototype.toString` format (`1` not `1.0`, `1e+21`,
//!   `1e-7`, `0.000001`), after rounding to an f64 as `JSON.parse` would have.
//!
//! String escaping is the same in both (`\u00XX` lowercase for other control characters,
//! no escaping of `/`, U+2028/U+2029 or non-ASCII).

use serde_json::Value;

/// Serialise `value` exactly as `JSON.stringify(value)` would.
pub(crate) fn stringify(value: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, value);
    out
}

/// The keys of `entries` in JavaScript own-property order: array-index keys ascending, then
/// the rest in insertion order.
pub(crate) fn js_key_order<'a, V>(
    entries: impl IntoIterator<Item = (&'a String, V)>,
) -> Vec<(&'a String, V)> {
    let mut indices = Vec::new();
    let mut others = Vec::new();
    for (key, value) in entries {
        match array_index(key) {
            Some(index) => indices.push((index, key, value)),
            None => others.push((key, value)),
        }
    }
    if indices.is_empty() {
        return others;
    }
    indices.sort_by_key(|(index, _, _)| *index);
    indices
        .into_iter()
        .map(|(_, key, value)| (key, value))
        .chain(others)
        .collect()
}

/// `Some(n)` if `key` is the canonical decimal form of an integer in `0..2^32-1`.
fn array_index(key: &str) -> Option<u32> {
    let bytes = key.as_bytes();
    if bytes.is_empty() || bytes.len() > 10 || !bytes.iter().all(u8::is_ascii_digit) {
        return None;
    }
    if bytes.len() > 1 && bytes[0] == b'0' {
        return None;
    }
    let n: u64 = key.parse().ok()?;
    u32::try_from(n).ok().filter(|n| *n != u32::MAX)
}

fn write_value(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&js_number(n.as_f64().unwrap_or(f64::NAN))),
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (key, item)) in js_key_order(map).into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(out, key);
                out.push(':');
                write_value(out, item);
            }
            out.push('}');
        }
    }
}

fn write_string(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                let b = u32::from(c) as usize;
                out.push_str("\\u00");
                out.push(char::from(HEX[b >> 4]));
                out.push(char::from(HEX[b & 0xf]));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// JavaScript `Number.prototype.toString()` for an f64 (ECMA-262 `Number::toString`).
fn js_number(f: f64) -> String {
    if !f.is_finite() {
        // JSON.stringify writes NaN and ±Infinity as null.
        return "null".to_owned();
    }
    if f == 0.0 {
        return "0".to_owned(); // also -0
    }
    // Rust's `{:e}` gives the shortest round-tripping digits, like JavaScript.
    let sci = format!("{:e}", f.abs());
    let (mantissa, exponent) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let exponent: i64 = exponent.parse().unwrap_or(0);
    let k = i64::try_from(digits.len()).unwrap_or(i64::MAX);
    let n = exponent + 1; // position of the decimal point relative to the digits

    let mut out = String::new();
    if f < 0.0 {
        out.push('-');
    }
    let zeros = |count: i64| "0".repeat(usize::try_from(count).unwrap_or(0));
    if k <= n && n <= 21 {
        out.push_str(&digits);
        out.push_str(&zeros(n - k));
    } else if 0 < n && n <= 21 {
        let split = usize::try_from(n).unwrap_or(0);
        out.push_str(&digits[..split]);
        out.push('.');
        out.push_str(&digits[split..]);
    } else if -6 < n && n <= 0 {
        out.push_str("0.");
        out.push_str(&zeros(-n));
        out.push_str(&digits);
    } else {
        out.push_str(&digits[..1]);
        if k > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push('e');
        out.push(if n - 1 < 0 { '-' } else { '+' });
        out.push_str(&(n - 1).abs().to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_match_javascript() {
        let cases: &[(f64, &str)] = &[
            (1.0, "1"),
            (-1.5, "-1.5"),
            (1e21, "1e+21"),
            (1e20, "100000000000000000000"),
            (123_456_789_012_345_680_000_000.0, "1.2345678901234569e+23"),
            (0.000_001, "0.000001"),
            (1e-7, "1e-7"),
            (1.5e-7, "1.5e-7"),
            (0.1 + 0.2, "0.30000000000000004"),
            (-0.0, "0"),
            (5e-324, "5e-324"),
            (f64::MAX, "1.7976931348623157e+308"),
            (123.456, "123.456"),
            (9_007_199_254_740_993.0, "9007199254740992"),
        ];
        for (f, expected) in cases {
            assert_eq!(js_number(*f), *expected, "formatting {f:e}");
        }
    }

    #[test]
    fn array_index_keys_come_first() {
        let v = json!({"b": 1, "10": 2, "2": 3, "02": 4, "4294967295": 5, "4294967294": 6, "a": 7});
        assert_eq!(
            stringify(&v),
            r#"{"2":3,"10":2,"4294967294":6,"b":1,"02":4,"4294967295":5,"a":7}"#
        );
    }

    #[test]
    fn strings_escape_like_json_stringify() {
        let v = json!(["\"\\/\u{8}\u{c}\n\r\t\u{1}\u{1f}\u{7f}\u{2028}é"]);
        assert_eq!(
            stringify(&v),
            "[\"\\\"\\\\/\\b\\f\\n\\r\\t\\u0001\\u001f\u{7f}\u{2028}é\"]"
        );
    }
}
