//! Logging set-up (docs/src/operations.md, Logs): `tracing` to stderr, levels from `RUST_LOG`,
//! `info` by default, as text for people or as one JSON object per line for log shippers
//! (`--log-format`).
//!
//! Lines are handed to a background writer (tracing-appender's non-blocking writer), so a
//! request never waits on a write to stderr: the suite measured `RUST_LOG=info` costing up
//! to 14% of read throughput when every request wrote its two lines itself. The queue is
//! bounded ([`LOG_QUEUE_LINES`]): when stderr is slower than the lines come, the newest are
//! dropped and counted, and a warning says how many, rather than memory filling with them.
//! The writer gathers the lines waiting into one write ([`LOG_BUFFER_BYTES`]).
//!
//! The HTTP layer opens a span per request holding its request id; both formats print it on
//! every line the request causes: in text as the `request{request_id=…}:` prefix, in JSON
//! as `"span":{"name":"request","request_id":"…"}`.

use std::io::IsTerminal;

use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

mod plain_text;
use plain_text::{PlainFields, PlainText};

/// Installs the global subscriber. Call once, at start, and keep the guard until exit: it
/// flushes the lines still queued when it drops.
pub fn init(format: LogFormat) -> WorkerGuard {
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

/// What the background writer gathers before writing to stderr: it writes when this fills
/// and whenever the queue runs empty, so a busy service makes one write for many lines
/// rather than one each (on a read-heavy load that write per line was most of what `info`
/// cost), and an idle one shows every line at once.
const LOG_BUFFER_BYTES: usize = 64 * 1024;

/// How long the writer rests after each write to stderr before it looks for more lines.
/// A writer that waits on its queue is woken by every line, and on a busy service those
/// wake-ups (two context switches per request) were most of what `info` still cost; resting
/// lets the lines of a millisecond gather and go in one write, with no wake-up for each.
/// Lines reach stderr at most this much later.
const LOG_REST: std::time::Duration = std::time::Duration::from_millis(1);

/// The writer's output: stderr through a buffer, resting [`LOG_REST`] after each flush
/// (the background writer flushes whenever its queue runs empty).
struct Coalescing<W>(W);

impl<W: std::io::Write> std::io::Write for Coalescing<W> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0.write(data)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let flushed = self.0.flush();
        std::thread::sleep(LOG_REST);
        flushed
    }
}

/// How many lines may wait for stderr.
pub const LOG_QUEUE_LINES: usize = 8_192;

/// The background writer to stderr, lossy past [`LOG_QUEUE_LINES`], with a thread that
/// reports the lines dropped (at most every 10 seconds, only when there are new ones).
fn bounded_log_queue() -> (tracing_appender::non_blocking::NonBlocking, WorkerGuard) {
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(true)
        .buffered_lines_limit(LOG_QUEUE_LINES)
        .finish(Coalescing(std::io::BufWriter::with_capacity(
            LOG_BUFFER_BYTES,
            std::io::stderr(),
        )));
    let dropped = writer.error_counter();
    let _ = std::thread::Builder::new()
        .name("roster-log-drops".into())
        .spawn(move || {
            let mut reported = 0;
            loop {
                std::thread::sleep(std::time::Duration::from_secs(10));
                let now = dropped.dropped_lines();
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
