//! Logging set-up (docs/src/operations.md, Logs): `tracing` to stderr, levels from `RUST_LOG`,
//! `info` by default, as text for people or as one JSON object per line for log shippers
//! (`--log-format`).
//!
//! Lines are handed to a background writer (`line_buffers.rs`), so a request never waits
//! on a write to stderr: the suite measured `RUST_LOG=info` costing up to 14% of read
//! throughput when every request wrote its two lines itself. Each thread's lines wait in a
//! buffer of its own, bounded ([`LOG_BUFFER_BYTES`]): when stderr is slower than the lines
//! come, the newest are dropped and counted, and a warning says how many, rather than
//! memory filling with them. The writer gathers the lines waiting into one write.
//!
//! The HTTP layer opens a span per request holding its request id; both formats print it on
//! every line the request causes: in text as the `request{request_id=…}:` prefix, in JSON
//! as `"span":{"name":"request","request_id":"…"}`.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

mod line_buffers;
mod plain_text;
use line_buffers::LineBuffers;
pub use line_buffers::LineBuffersGuard;
use plain_text::{PlainFields, PlainText};

/// Installs the global subscriber. Call once, at start, and keep the guard until exit: it
/// flushes the lines still queued when it drops.
pub fn init(format: LogFormat) -> LineBuffersGuard {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let (writer, guard) = bounded_log_queue();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    match format {
        LogFormat::Text if std::io::stderr().is_terminal() => builder.with_ansi(true).init(),
        // The same text without colours, formatted for less (`plain_text.rs`).
        LogFormat::Text => builder
            .with_ansi(false)
            .fmt_fields(PlainFields)
            .event_format(PlainText)
            .init(),
        // The event's own fields at the top level and the innermost span (the request's,
        // with its id) beside them: what log shippers index without further parsing.
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .init(),
    }
    guard
}

/// How long the writer rests after each write to stderr before it collects again: the
/// lines of a millisecond go out in one write, and reach stderr at most this much later.
const LOG_REST: std::time::Duration = std::time::Duration::from_millis(1);

/// The most bytes of lines one thread holds between two collections (a few thousand
/// lines): past it, while stderr is slower than the lines come, the newest are dropped.
pub const LOG_BUFFER_BYTES: usize = 512 * 1024;

/// The background writer to stderr, with a thread that reports the lines dropped (at most
/// every 10 seconds, only when there are new ones).
fn bounded_log_queue() -> (LineBuffers, LineBuffersGuard) {
    let (writer, guard) = LineBuffers::start(std::io::stderr(), LOG_BUFFER_BYTES, LOG_REST)
        .expect("start the log writer thread");
    let dropped = writer.clone();
    let _ = std::thread::Builder::new()
        .name("roster-log-drops".into())
        .spawn(move || {
            let mut reported = 0;
            loop {
                std::thread::sleep(std::time::Duration::from_secs(10));
                let now = dropped.dropped();
                if now > reported {
                    tracing::warn!(
                        dropped = now - reported,
                        total = now,
                        "log lines dropped: stderr is too slow"
                    );
                    reported = now;
                }
            }
        });
    (writer, guard)
}
