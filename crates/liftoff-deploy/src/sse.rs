//! An incremental `text/event-stream` parser (the WHATWG rules the `eventsource` package
//! follows): lines end in LF, CRLF or CR; `:` lines are comments; `data` lines join with LF; a
//! blank line dispatches; an unterminated event at end of stream is dropped.

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event` field, `message` when absent.
    pub event: String,
    pub data: String,
    pub id: Option<String>,
}

/// Feed bytes as they arrive with [`SseParser::push`]; chunk boundaries may fall anywhere,
/// including inside a CRLF pair or a UTF-8 sequence.
#[derive(Debug, Default)]
pub struct SseParser {
    line: Vec<u8>,
    /// The previous chunk ended with CR: a leading LF in the next one belongs to it.
    after_cr: bool,
    event: Option<String>,
    data: Vec<String>,
    has_data: bool,
    id: Option<String>,
    /// Lines seen so far (to skip a UTF-8 BOM on the first).
    started: bool,
}

impl SseParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses `chunk` and returns the events it completes.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<SseEvent> {
        let mut out = Vec::new();
        for &b in chunk {
            if self.after_cr {
                self.after_cr = false;
                if b == b'\n' {
                    continue;
                }
            }
            match b {
                b'\n' => self.end_line(&mut out),
                b'\r' => {
                    self.end_line(&mut out);
                    self.after_cr = true;
                }
                _ => self.line.push(b),
            }
        }
        out
    }

    fn end_line(&mut self, out: &mut Vec<SseEvent>) {
        let raw = std::mem::take(&mut self.line);
        let mut text = String::from_utf8_lossy(&raw).into_owned();
        if !self.started {
            self.started = true;
            if let Some(rest) = text.strip_prefix('\u{feff}') {
                text = rest.to_string();
            }
        }
        if text.is_empty() {
            self.dispatch(out);
            return;
        }
        if text.starts_with(':') {
            return;
        }
        let (field, value) = match text.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (text.as_str(), ""),
        };
        match field {
            "event" => self.event = Some(value.to_string()),
            "data" => {
                self.data.push(value.to_string());
                self.has_data = true;
            }
            "id" if !value.contains('\0') => self.id = Some(value.to_string()),
            _ => {} // `retry` and unknown fields: nothing to do for a one-shot stream.
        }
    }

    fn dispatch(&mut self, out: &mut Vec<SseEvent>) {
        let event = self.event.take();
        let data = std::mem::take(&mut self.data);
        if !std::mem::take(&mut self.has_data) {
            return;
        }
        out.push(SseEvent {
            event: event
                .filter(|e| !e.is_empty())
                .unwrap_or_else(|| "message".to_string()),
            data: data.join("\n"),
            id: self.id.clone(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(event: &str, data: &str) -> SseEvent {
        SseEvent {
            event: event.into(),
            data: data.into(),
            id: None,
        }
    }

    fn parse_in_chunks(input: &[u8], size: usize) -> Vec<SseEvent> {
        let mut p = SseParser::new();
        input.chunks(size).flat_map(|c| p.push(c)).collect()
    }

    const STREAM: &str = "event: ping\ndata: {}\n\n: keep-alive comment\nevent: log\ndata: {\"message\":\"pushing é layer\"}\n\nevent: complete\ndata: {\"id\":\"deployment_1\"}\n\n";

    #[test]
    fn parses_the_finalize_stream() {
        let events = parse_in_chunks(STREAM.as_bytes(), STREAM.len());
        assert_eq!(
            events,
            vec![
                ev("ping", "{}"),
                ev("log", "{\"message\":\"pushing é layer\"}"),
                ev("complete", "{\"id\":\"deployment_1\"}"),
            ]
        );
    }

    #[test]
    fn any_chunk_boundary_gives_the_same_events() {
        let whole = parse_in_chunks(STREAM.as_bytes(), STREAM.len());
        for size in 1..12 {
            assert_eq!(parse_in_chunks(STREAM.as_bytes(), size), whole, "{size}");
        }
        let crlf = STREAM.replace('\n', "\r\n");
        for size in 1..12 {
            assert_eq!(parse_in_chunks(crlf.as_bytes(), size), whole, "crlf {size}");
        }
        let cr = STREAM.replace('\n', "\r");
        assert_eq!(parse_in_chunks(cr.as_bytes(), 3), whole);
    }

    #[test]
    fn multi_line_data_comments_and_defaults() {
        let input = "\u{feff}: hello\ndata: one\ndata:two\ndata\n\nid: 7\nevent:error\ndata: {\"error\":\"x\"}\n\n";
        let events = parse_in_chunks(input.as_bytes(), 5);
        assert_eq!(events[0], ev("message", "one\ntwo\n"));
        assert_eq!(events[1].event, "error");
        assert_eq!(events[1].id.as_deref(), Some("7"));
    }

    #[test]
    fn events_without_data_and_unterminated_events_are_dropped() {
        let mut p = SseParser::new();
        assert!(p.push(b"event: ping\n\n").is_empty());
        assert!(p.push(b"event: complete\ndata: {}").is_empty());
        assert!(p.push(b"\n").is_empty());
        assert_eq!(p.push(b"\n"), vec![ev("complete", "{}")]);
        // The `event` field does not leak into the next event.
        assert_eq!(p.push(b"data: x\n\n"), vec![ev("message", "x")]);
    }
}
