//! Byte offsets → human line:column positions.

use std::fmt;

use serde::Serialize;

/// A position in a source file: 1-based line, 1-based column counted in
/// Unicode scalar values (characters), like most editors show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Location {
    pub line: u32,
    pub column: u32,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// Maps byte offsets of one source text to [`Location`]s.
pub(crate) struct LineIndex<'s> {
    source: &'s str,
    /// Byte offset of the first character of every line.
    line_starts: Vec<usize>,
}

impl<'s> LineIndex<'s> {
    pub(crate) fn new(source: &'s str) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(source.match_indices('\n').map(|(i, _)| i + 1));
        Self {
            source,
            line_starts,
        }
    }

    pub(crate) fn location(&self, offset: u32) -> Location {
        let mut offset = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(self.source.len());
        while !self.source.is_char_boundary(offset) {
            offset -= 1;
        }
        let line = self
            .line_starts
            .partition_point(|&start| start <= offset)
            .max(1)
            - 1;
        let start = self.line_starts[line];
        let column = self.source[start..offset].chars().count() + 1;
        Location {
            line: saturate(line + 1),
            column: saturate(column),
        }
    }
}

fn saturate(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_offsets() {
        let idx = LineIndex::new("ab\ncdé\nf");
        assert_eq!(idx.location(0), Location { line: 1, column: 1 });
        assert_eq!(idx.location(2), Location { line: 1, column: 3 });
        assert_eq!(idx.location(3), Location { line: 2, column: 1 });
        // 'é' is two bytes: the offset after it is column 4.
        assert_eq!(idx.location(7), Location { line: 2, column: 4 });
        assert_eq!(idx.location(8), Location { line: 3, column: 1 });
        // Out of range and mid-character offsets never panic.
        assert_eq!(idx.location(6), Location { line: 2, column: 3 });
        assert_eq!(idx.location(999), Location { line: 3, column: 2 });
    }
}
