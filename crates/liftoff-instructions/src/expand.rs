//! Docker's word processing for ENV, ARG, WORKDIR, USER, COPY and ADD: words split on unquoted
//! whitespace, quotes removed, `\` escapes, and `$NAME`, `${NAME}`, `${NAME:-w}`, `${NAME-w}`,
//! `${NAME:+w}`, `${NAME+w}`, `${NAME:?msg}`, `${NAME?msg}` expanded (not inside single quotes).

/// Splits `s` on whitespace outside quotes; each word is returned raw (quotes and escapes kept).
#[must_use]
pub fn words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut chars = s.chars();
    let mut in_word = false;
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, c) if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None | Some('"'), '\\') => {
                cur.push('\\');
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
                in_word = true;
            }
            (None, '"' | '\'') => {
                quote = Some(c);
                cur.push(c);
                in_word = true;
            }
            (Some(q), c) if c == q => {
                quote = None;
                cur.push(c);
            }
            (_, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    out
}

/// Expands one raw word: quotes removed, escapes applied, variables substituted from `lookup`
/// (unset variables expand to nothing, as in Docker).
///
/// # Errors
/// `${NAME:?message}` with `NAME` unset or empty, an unterminated `${` or quote.
pub fn expand(word: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let chars: Vec<char> = word.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    let mut quote: Option<char> = None;
    while i < chars.len() {
        let c = chars[i];
        match (quote, c) {
            (None, '\'' | '"') => {
                quote = Some(c);
                i += 1;
            }
            (Some(q), c) if c == q => {
                quote = None;
                i += 1;
            }
            (Some('\''), c) => {
                out.push(c);
                i += 1;
            }
            (None, '\\') => {
                if let Some(n) = chars.get(i + 1) {
                    out.push(*n);
                }
                i += 2;
            }
            (Some('"'), '\\') => {
                match chars.get(i + 1) {
                    Some(n @ ('$' | '"' | '\\')) => out.push(*n),
                    Some(n) => {
                        out.push('\\');
                        out.push(*n);
                    }
                    None => out.push('\\'),
                }
                i += 2;
            }
            (_, '$') => {
                let (value, next) = variable(&chars, i, lookup)?;
                out.push_str(&value);
                i = next;
            }
            (_, c) => {
                out.push(c);
                i += 1;
            }
        }
    }
    if let Some(q) = quote {
        return Err(format!("unterminated {q} quote in {word:?}"));
    }
    Ok(out)
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Expands the variable at `chars[start] == '$'`; returns the value and the index after it.
fn variable(
    chars: &[char],
    start: usize,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<(String, usize), String> {
    let mut i = start + 1;
    match chars.get(i) {
        Some('{') => {
            i += 1;
            let name_start = i;
            while chars.get(i).is_some_and(|c| is_name_char(*c)) {
                i += 1;
            }
            let name: String = chars[name_start..i].iter().collect();
            if name.is_empty() {
                return Err("empty variable name in ${}".into());
            }
            // Find the matching close brace (nested ${} allowed in the word).
            let mut depth = 1;
            let op_start = i;
            while i < chars.len() {
                match chars[i] {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
            if i >= chars.len() {
                return Err(format!("unterminated ${{{name}"));
            }
            let op: String = chars[op_start..i].iter().collect();
            let value = lookup(&name);
            let result = apply(&name, value, &op, lookup)?;
            Ok((result, i + 1))
        }
        Some(c) if c.is_ascii_alphabetic() || *c == '_' => {
            let name_start = i;
            while chars.get(i).is_some_and(|c| is_name_char(*c)) {
                i += 1;
            }
            let name: String = chars[name_start..i].iter().collect();
            Ok((lookup(&name).unwrap_or_default(), i))
        }
        // A lone `$` stays.
        _ => Ok(("$".to_string(), i)),
    }
}

fn apply(
    name: &str,
    value: Option<String>,
    op: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, String> {
    if op.is_empty() {
        return Ok(value.unwrap_or_default());
    }
    let (colon, rest) = match op.strip_prefix(':') {
        Some(r) => (true, r),
        None => (false, op),
    };
    let mut it = rest.chars();
    let kind = it
        .next()
        .ok_or_else(|| format!("bad substitution ${{{name}{op}}}"))?;
    let word = it.as_str();
    let set = match &value {
        Some(v) => !(colon && v.is_empty()),
        None => false,
    };
    match kind {
        '-' => {
            if set {
                Ok(value.unwrap_or_default())
            } else {
                expand(word, lookup)
            }
        }
        '+' => {
            if set {
                expand(word, lookup)
            } else {
                Ok(String::new())
            }
        }
        '?' => {
            if set {
                Ok(value.unwrap_or_default())
            } else {
                let msg = expand(word, lookup)?;
                Err(if msg.is_empty() {
                    format!("{name} is not set")
                } else {
                    format!("{name}: {msg}")
                })
            }
        }
        _ => Err(format!(
            "unsupported substitution ${{{name}{op}}} (liftoff supports :-, -, :+, +, :?, ?)"
        )),
    }
}
