//! A server-sent-events body written straight to the connection, one HTTP
//! chunk per event, flushed at once (`tiny_http`'s own chunked encoder buffers).

use std::io::{self, Write};

use serde_json::Value;

pub struct SseStream {
    writer: Box<dyn Write + Send>,
    broken: bool,
}

impl SseStream {
    /// Writes the status line and headers (§2.3).
    pub fn start(mut writer: Box<dyn Write + Send>) -> Self {
        let head = "HTTP/1.1 200 OK\r\n\
                    Content-Type: text/event-stream\r\n\
                    Cache-Control: no-cache\r\n\
                    Connection: keep-alive\r\n\
                    Transfer-Encoding: chunked\r\n\r\n";
        let broken = writer
            .write_all(head.as_bytes())
            .and_then(|()| writer.flush())
            .is_err();
        Self { writer, broken }
    }

    /// Sends `event: <name>\ndata: <json>\n\n`.
    pub fn event(&mut self, name: &str, data: &Value) {
        let frame = format!("event: {name}\ndata: {data}\n\n");
        self.chunk(frame.as_bytes());
    }

    fn chunk(&mut self, bytes: &[u8]) {
        if self.broken || bytes.is_empty() {
            return;
        }
        let result: io::Result<()> = (|| {
            write!(self.writer, "{:x}\r\n", bytes.len())?;
            self.writer.write_all(bytes)?;
            self.writer.write_all(b"\r\n")?;
            self.writer.flush()
        })();
        self.broken = result.is_err();
    }

    /// Ends the body (the terminating zero-length chunk).
    pub fn finish(mut self) {
        if !self.broken {
            let _ = self
                .writer
                .write_all(b"0\r\n\r\n")
                .and_then(|()| self.writer.flush());
        }
    }
}
