//! deb822 control-file paragraphs (dpkg status, Packages indexes, `InRelease`, `.sources`, DEBIAN/control).

/// One paragraph: its fields in file order and its raw text.
#[derive(Debug, Clone)]
pub(crate) struct Paragraph<'a> {
    /// `(name, value)`; the value starts after `Name:` and leading blanks, and keeps
    /// continuation lines (`"\n continued"`) verbatim.
    pub fields: Vec<(&'a str, &'a str)>,
    /// The paragraph's text, without the separating blank line.
    pub raw: &'a str,
}

impl<'a> Paragraph<'a> {
    /// The value of a field (field names are case-insensitive).
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.fields
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }

    /// The value with continuation lines folded into one line (for relationship fields).
    pub fn folded(&self, name: &str) -> Option<String> {
        self.get(name).map(fold)
    }
}

/// Fold a multi-line field value into one line.
pub(crate) fn fold(value: &str) -> String {
    if value.contains('\n') {
        value
            .split('\n')
            .map(str::trim)
            .collect::<Vec<_>>()
            .join(" ")
    } else {
        value.trim().to_string()
    }
}

/// Iterate over the paragraphs of a deb822 text. With `comments`, lines starting with `#`
/// are skipped (apt `.sources` files allow them; dpkg files do not have them).
pub(crate) fn paragraphs(text: &str, comments: bool) -> Paragraphs<'_> {
    Paragraphs {
        text,
        pos: 0,
        comments,
    }
}

pub(crate) struct Paragraphs<'a> {
    text: &'a str,
    pos: usize,
    comments: bool,
}

impl<'a> Iterator for Paragraphs<'a> {
    type Item = Paragraph<'a>;

    fn next(&mut self) -> Option<Paragraph<'a>> {
        let text = self.text;
        let mut fields: Vec<(&'a str, &'a str)> = Vec::new();
        let mut start: Option<usize> = None;
        let mut end = self.pos;
        // (name, value start) of the field being read; its value ends at `value_end`.
        let mut current: Option<(&'a str, usize)> = None;
        let mut value_end = 0usize;
        while self.pos < text.len() {
            let line_start = self.pos;
            let line_end = text[line_start..]
                .find('\n')
                .map_or(text.len(), |i| line_start + i);
            self.pos = (line_end + 1).min(text.len());
            if line_end == text.len() {
                self.pos = text.len();
            }
            let line = &text[line_start..line_end];
            let line_trimmed = line.trim_end_matches('\r');
            if line_trimmed.trim().is_empty() {
                if start.is_some() {
                    break;
                }
                continue;
            }
            if self.comments && line_trimmed.starts_with('#') {
                continue;
            }
            if line_trimmed.starts_with([' ', '\t']) {
                if current.is_some() {
                    value_end = line_start + line_trimmed.len();
                    end = value_end;
                }
                continue;
            }
            if let Some((name, vs)) = current.take() {
                fields.push((name, &text[vs..value_end.max(vs)]));
            }
            if start.is_none() {
                start = Some(line_start);
            }
            end = line_start + line_trimmed.len();
            if let Some(colon) = line_trimmed.find(':') {
                let name = line_trimmed[..colon].trim();
                let rest = &line_trimmed[colon + 1..];
                let lead = rest.len() - rest.trim_start().len();
                let vs = line_start + colon + 1 + lead;
                current = Some((name, vs));
                value_end = line_start + line_trimmed.trim_end().len();
            }
        }
        if let Some((name, vs)) = current.take() {
            fields.push((name, &text[vs..value_end.max(vs)]));
        }
        let start = start?;
        Some(Paragraph {
            fields,
            raw: &text[start..end],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_paragraphs_with_continuations() {
        let text = "Package: a\nDepends: b,\n c (>= 1)\nDescription: x\n line one\n .\n line two\n\n\nPackage: b\nVersion: 1\n";
        let ps: Vec<_> = paragraphs(text, false).collect();
        assert_eq!(ps.len(), 2);
        assert_eq!(ps[0].get("package"), Some("a"));
        assert_eq!(ps[0].get("Depends"), Some("b,\n c (>= 1)"));
        assert_eq!(ps[0].folded("Depends").unwrap(), "b, c (>= 1)");
        assert_eq!(
            ps[0].get("Description"),
            Some("x\n line one\n .\n line two")
        );
        assert_eq!(ps[1].raw, "Package: b\nVersion: 1");
        assert!(ps[0].raw.ends_with("line two"));
    }

    #[test]
    fn skips_comments_when_asked() {
        let text = "# c\nTypes: deb\n# inner\nURIs: http://x\n";
        let ps: Vec<_> = paragraphs(text, true).collect();
        assert_eq!(ps.len(), 1);
        assert_eq!(ps[0].get("URIs"), Some("http://x"));
    }
}
