//! A small `.env` parser with dotenv (npm, v16) semantics.

use std::path::Path;

use crate::ConfigError;

/// Reads a dotenv file: `KEY=value` lines, `export KEY=value`, `KEY: value`,
/// `#` comments (whole-line, or after an unquoted value), single/double/back
/// quotes (possibly spanning lines), and `\n`/`\r` escapes inside double
/// quotes. Lines that don't parse are ignored, as dotenv does.
///
/// Returns the pairs in file order; a key that appears twice keeps its first
/// position with the last value (dotenv's "last one wins").
pub fn parse_env_file(path: &Path) -> Result<Vec<(String, String)>, ConfigError> {
    let bytes = std::fs::read(path).map_err(|source| ConfigError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(parse_env(&String::from_utf8_lossy(&bytes)))
}

pub(crate) fn parse_env(src: &str) -> Vec<(String, String)> {
    let text = src.replace("\r\n", "\n").replace('\r', "\n");
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let mut out: Vec<(String, String)> = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let (entry, next) = parse_line(rest);
        rest = next;
        if let Some((k, v)) = entry {
            match out.iter_mut().find(|(key, _)| *key == k) {
                Some(slot) => slot.1 = v,
                None => out.push((k, v)),
            }
        }
    }
    out
}

fn is_hspace(c: char) -> bool {
    c.is_whitespace() && c != '\n'
}

/// Parses one entry at the start of `s`; returns it (if any) and the text after it.
fn parse_line(s: &str) -> (Option<(String, String)>, &str) {
    let line_end = s.find('\n').map_or(s.len(), |i| i + 1);
    let skip_line = (None, &s[line_end..]);

    let mut cur = s.trim_start_matches(is_hspace);
    if let Some(after) = cur.strip_prefix("export")
        && after.starts_with(is_hspace)
    {
        cur = after.trim_start_matches(is_hspace);
    }
    let key_len = cur
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
        .unwrap_or(cur.len());
    if key_len == 0 {
        return skip_line;
    }
    let key = &cur[..key_len];
    cur = &cur[key_len..];
    let after_ws = cur.trim_start_matches(is_hspace);
    if let Some(v) = after_ws.strip_prefix('=') {
        cur = v;
    } else if let Some(v) = cur.strip_prefix(':').filter(|v| v.starts_with(is_hspace)) {
        cur = v;
    } else {
        return skip_line;
    }
    let value_start = cur.trim_start_matches(is_hspace);

    // Quoted value, possibly multi-line; must be followed only by spaces and an optional comment.
    if let Some(q) = value_start
        .chars()
        .next()
        .filter(|c| matches!(c, '"' | '\'' | '`'))
        && let Some(close) = find_closing(&value_start[1..], q)
    {
        let inner = &value_start[1..=close];
        let after = &value_start[close + 2..];
        let tail_end = after.find('\n').map_or(after.len(), |i| i + 1);
        let tail = after[..tail_end].trim_matches(char::is_whitespace);
        if tail.is_empty() || tail.starts_with('#') {
            return (
                Some((key.to_string(), finish(inner, q))),
                &after[tail_end..],
            );
        }
    }

    // Unquoted: up to `#` or end of line, trimmed; then dotenv's quote stripping.
    let line = &value_start[..value_start.find('\n').unwrap_or(value_start.len())];
    let raw = line[..line.find('#').unwrap_or(line.len())].trim();
    let rest = &s[line_end..];
    let mut chars = raw.chars();
    let (first, last) = (chars.next(), chars.next_back());
    let value = match (first, last) {
        (Some(f), Some(l)) if f == l && matches!(f, '"' | '\'' | '`') => {
            finish(&raw[1..raw.len() - 1], f)
        }
        _ => raw.to_string(),
    };
    (Some((key.to_string(), value)), rest)
}

/// Index (in `s`) of the closing quote `q`; a backslash-escaped quote doesn't close.
fn find_closing(s: &str, q: char) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == q {
            return Some(i);
        }
    }
    None
}

fn finish(inner: &str, quote: char) -> String {
    if quote == '"' {
        inner.replace("\\n", "\n").replace("\\r", "\r")
    } else {
        inner.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::parse_env;

    fn get<'a>(pairs: &'a [(String, String)], k: &str) -> Option<&'a str> {
        pairs
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn dotenv_syntax() {
        let src = "# comment\n\
                   A=1\n\
                   export B = two words  \n\
                   C=\"line\\nbreak\" # trailing\n\
                   D='single \\n kept'\n\
                   E=unquoted # comment\n\
                   F=\"multi\nline\"\n\
                   G:  colon\n\
                   H=\n\
                   not a line\n\
                   A=override\r\n\
                   I=`back`\n\
                   J=\"unterminated\n\
                   K=a#b\n";
        let pairs = parse_env(src);
        assert_eq!(get(&pairs, "A"), Some("override"));
        assert_eq!(pairs[0].0, "A");
        assert_eq!(get(&pairs, "B"), Some("two words"));
        assert_eq!(get(&pairs, "C"), Some("line\nbreak"));
        assert_eq!(get(&pairs, "D"), Some("single \\n kept"));
        assert_eq!(get(&pairs, "E"), Some("unquoted"));
        assert_eq!(get(&pairs, "F"), Some("multi\nline"));
        assert_eq!(get(&pairs, "G"), Some("colon"));
        assert_eq!(get(&pairs, "H"), Some(""));
        assert_eq!(get(&pairs, "I"), Some("back"));
        assert_eq!(get(&pairs, "J"), Some("\"unterminated"));
        assert_eq!(get(&pairs, "K"), Some("a"));
        assert_eq!(get(&pairs, "not"), None);
    }
}
