//! Where findings go: stdout, as text for people or as NDJSON.

use std::io::{self, Write};
use std::time::{Duration, Instant};

use fdir::event::EventRecord;

use super::args::Format;

/// In text mode, a list of baselined targets longer than this is summarized.
pub const TEXT_LIST_LIMIT: usize = 30;

/// The event writer. Each event is flushed at once (a pipeline sees it).
pub struct Output {
    format: Format,
    last_text_check: Option<Instant>,
    /// The line being written, kept from one event to the next: a watch's
    /// steady cycle writes its `check` event without allocating.
    line: Vec<u8>,
}

impl Output {
    pub fn new(format: Format) -> Output {
        Output { format, last_text_check: None, line: Vec::new() }
    }

    pub fn format(&self) -> Format {
        self.format
    }

    /// Writes one event.
    pub fn emit(&mut self, e: &EventRecord) -> io::Result<()> {
        let mut out = io::stdout().lock();
        match self.format {
            Format::Json => {
                self.line.clear();
                e.write_json(&mut self.line);
                self.line.push(b'\n');
                out.write_all(&self.line)?;
            }
            Format::Text => writeln!(out, "{e}")?,
        }
        out.flush()
    }

    /// Writes a line for people (text mode only).
    pub fn say(&mut self, line: &str) -> io::Result<()> {
        if self.format == Format::Text {
            let mut out = io::stdout().lock();
            writeln!(out, "{line}")?;
            out.flush()?;
        }
        Ok(())
    }

    /// Writes a `check` summary: always in JSON; in text when the cycle had
    /// findings, and otherwise at most once a minute, as a heartbeat.
    pub fn check_summary(&mut self, e: &EventRecord, had_findings: bool) -> io::Result<()> {
        if self.format == Format::Json {
            return self.emit(e);
        }
        let due = self.last_text_check.is_none_or(|t| t.elapsed() >= Duration::from_secs(60));
        if had_findings || due {
            self.last_text_check = Some(Instant::now());
            self.emit(e)?;
        }
        Ok(())
    }
}
