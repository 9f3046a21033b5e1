//! The text log line for a log that is not a terminal, written straight into the line.
//!
//! It is tracing-subscriber's full format without colours, the same text character for
//! character (a test compares the two), minus what that format pays on every line: each
//! part wrapped in a colour style that then writes nothing, the level padded through the
//! formatting machinery, the timestamp built from its seven numbers each time. Here the
//! date and time down to the second are formatted once per second and thread, and the rest
//! is plain writes. Fields are written the same way ([`PlainFields`]): `name=value` with the
//! value's own formatting, where the default visitor paints the name and the `=` in styles
//! first; numbers are written by itoa and ryu rather than the formatting machinery, and the
//! message's terminal controls are escaped as the full format escapes them, with a scan
//! that lets clean text straight through. Errors, rare, still go through the default
//! visitor.

use std::cell::RefCell;
use std::fmt::{self, Write as _};
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_log::NormalizeEvent;
use tracing_subscriber::field::{RecordFields, VisitOutput};
use tracing_subscriber::fmt::format::{DefaultVisitor, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// The plain text format.
pub struct PlainText;

/// The fields of the plain text format, of events and spans alike.
pub struct PlainFields;

impl<'writer> FormatFields<'writer> for PlainFields {
    fn format_fields<R: RecordFields>(&self, writer: Writer<'writer>, fields: R) -> fmt::Result {
        let mut visitor = PlainVisitor {
            writer,
            is_empty: true,
            result: Ok(()),
        };
        fields.record(&mut visitor);
        visitor.result
    }
}

/// Writes `name=value` for each field, a space between two.
struct PlainVisitor<'writer> {
    writer: Writer<'writer>,
    /// Nothing written yet: no space before the next field.
    is_empty: bool,
    result: fmt::Result,
}

impl PlainVisitor<'_> {
    /// Has the default visitor write one field, for what it escapes.
    fn delegate(&mut self, record: impl FnOnce(&mut DefaultVisitor<'_>)) {
        if self.result.is_err() {
            return;
        }
        let mut visitor = DefaultVisitor::new(self.writer.by_ref(), self.is_empty);
        record(&mut visitor);
        self.result = visitor.finish();
        self.is_empty = false;
    }
}

impl Visit for PlainVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message(|out| out.write_str(value));
        } else {
            self.record_debug(field, &value);
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.delegate(|visitor| visitor.record_error(field, value));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            return self.message(|out| write!(out, "{value:?}"));
        }
        if self.name(field) {
            self.result = write!(self.writer, "{value:?}");
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.plain(field, itoa::Buffer::new().format(value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.plain(field, itoa::Buffer::new().format(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.plain(field, if value { "true" } else { "false" });
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        match shortest_decimal(value, &mut ryu::Buffer::new()) {
            Some(text) => self.plain(field, text),
            None => self.record_debug(field, &value),
        }
    }
}

impl PlainVisitor<'_> {
    /// Writes the separator, the name and `=` of a field other than the message, unless the
    /// line has failed or the field is a `log` record's own metadata (shown elsewhere in the
    /// line); tells whether the value should follow.
    fn name(&mut self, field: &Field) -> bool {
        let name = field.name();
        if self.result.is_err() || name.starts_with("log.") {
            return false;
        }
        let name = name.strip_prefix("r#").unwrap_or(name);
        let separator = if self.is_empty { "" } else { " " };
        self.is_empty = false;
        self.result = (|| {
            self.writer.write_str(separator)?;
            self.writer.write_str(name)?;
            self.writer.write_char('=')
        })();
        self.result.is_ok()
    }

    /// The message: its text, with the controls a terminal would act on escaped, as the
    /// full format writes it.
    fn message(&mut self, write: impl FnOnce(&mut Escaping<'_, '_>) -> fmt::Result) {
        if self.result.is_err() {
            return;
        }
        if !self.is_empty {
            self.result = self.writer.write_char(' ');
        }
        self.is_empty = false;
        let escape = self.writer.sanitizes_ansi_escapes();
        let mut out = Escaping {
            writer: &mut self.writer,
            escape,
        };
        self.result = self.result.and_then(|()| write(&mut out));
    }

    /// A field whose value is already text as `Debug` would write it (numbers, `true`).
    fn plain(&mut self, field: &Field, text: &str) {
        if field.name() == "message" {
            return self.message(|out| out.write_str(text));
        }
        if self.name(field) {
            self.result = self.writer.write_str(text);
        }
    }
}

/// Writes text with what could drive a terminal escaped (ESC, BEL, backspace, form feed,
/// DEL and the C1 controls), as the full format escapes a message, so a client's text in a
/// message cannot move the cursor or recolour the screen. Text without any goes straight
/// through.
struct Escaping<'a, 'writer> {
    writer: &'a mut Writer<'writer>,
    escape: bool,
}

/// Whether a byte may start something [`Escaping`] rewrites: the C0 controls it escapes,
/// DEL, and the lead byte of U+0080 to U+00BF (the C1 controls among them).
fn may_need_escape(byte: u8) -> bool {
    matches!(byte, 0x1b | 0x07 | 0x08 | 0x0c | 0x7f | 0xc2)
}

impl fmt::Write for Escaping<'_, '_> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        if !self.escape || !text.bytes().any(may_need_escape) {
            return self.writer.write_str(text);
        }
        for c in text.chars() {
            match c {
                '\u{1b}' => self.writer.write_str("\\x1b")?,
                '\u{07}' => self.writer.write_str("\\x07")?,
                '\u{08}' => self.writer.write_str("\\x08")?,
                '\u{0c}' => self.writer.write_str("\\x0c")?,
                '\u{7f}' => self.writer.write_str("\\x7f")?,
                '\u{80}'..='\u{9f}' => write!(self.writer, "\\u{{{:x}}}", c as u32)?,
                c => self.writer.write_char(c)?,
            }
        }
        Ok(())
    }
}

/// `value` as `{:?}` writes it, when that is a plain decimal (from 0.0001 to below 10^16,
/// or zero) of at most 15 significant digits, through ryu, for about a third of the work. Both
/// write the shortest digits that read back as the value, and within 15 digits those are
/// unique (two decimals of 15 digits never read as one double); with 16 or 17 they may
/// choose differently, and outside that range they choose exponents differently, so those
/// values are left to `Debug`. Latencies in milliseconds to the microsecond are all in.
fn shortest_decimal(value: f64, buffer: &mut ryu::Buffer) -> Option<&str> {
    if value != 0.0 && !(1e-4..1e16).contains(&value.abs()) {
        return None;
    }
    let text = buffer.format_finite(value);
    let significant = text
        .trim_start_matches(['-', '0', '.'])
        .bytes()
        .filter(u8::is_ascii_digit)
        .count();
    (significant <= 15).then_some(text)
}

/// A level as the full format shows it, with the space after it.
fn level_text(level: &Level) -> &'static str {
    match *level {
        Level::TRACE => "TRACE ",
        Level::DEBUG => "DEBUG ",
        Level::INFO => " INFO ",
        Level::WARN => " WARN ",
        Level::ERROR => "ERROR ",
    }
}

thread_local! {
    /// The second last formatted on this thread, and its text up to the fraction's point.
    static SECOND: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
}

/// `2026-12-03T19:20:00.123456Z `: UTC, to the microsecond, with the space after it.
fn write_timestamp(writer: &mut Writer<'_>, now: SystemTime) -> fmt::Result {
    let Ok(since) = now.duration_since(UNIX_EPOCH) else {
        return writer.write_str("<unknown time> ");
    };
    let second = since.as_secs();
    SECOND.with_borrow_mut(|(cached, text)| {
        if *cached != second {
            text.clear();
            let Some(time) = i64::try_from(second)
                .ok()
                .and_then(|second| chrono::DateTime::from_timestamp(second, 0))
            else {
                return writer.write_str("<unknown time> ");
            };
            let _ = write!(text, "{}.", time.format("%Y-%m-%dT%H:%M:%S"));
            *cached = second;
        }
        writer.write_str(text)?;
        let mut micros = since.subsec_micros();
        let mut digits = [b'0'; 6];
        for digit in digits.iter_mut().rev() {
            *digit = b'0' + (micros % 10) as u8;
            micros /= 10;
        }
        // Six ASCII digits.
        writer.write_str(std::str::from_utf8(&digits).unwrap_or("000000"))?;
        writer.write_str("Z ")
    })
}

impl<S, N> FormatEvent<S, N> for PlainText
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        // A `log` record carries its own target; the full format shows that one.
        let normalized = event.normalized_metadata();
        let meta = normalized.as_ref().unwrap_or_else(|| event.metadata());
        write_timestamp(&mut writer, SystemTime::now())?;
        writer.write_str(level_text(meta.level()))?;
        if let Some(scope) = ctx.event_scope() {
            let mut seen = false;
            for span in scope.from_root() {
                writer.write_str(span.metadata().name())?;
                seen = true;
                if let Some(fields) = span.extensions().get::<FormattedFields<N>>()
                    && !fields.is_empty()
                {
                    writer.write_char('{')?;
                    writer.write_str(fields)?;
                    writer.write_char('}')?;
                }
                writer.write_char(':')?;
            }
            if seen {
                writer.write_char(' ')?;
            }
        }
        writer.write_str(meta.target())?;
        writer.write_str(": ")?;
        ctx.format_fields(writer.by_ref(), event)?;
        writer.write_char('\n')
    }
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::fmt::MakeWriter;

    use super::*;

    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Lines {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Lines {
        type Writer = Lines;
        fn make_writer(&'a self) -> Lines {
            self.clone()
        }
    }

    /// An error with a source, which the line lists after it.
    #[derive(Debug)]
    struct Wrapped(io::Error);

    impl fmt::Display for Wrapped {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("cannot save")
        }
    }

    impl std::error::Error for Wrapped {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    /// Every kind of line the service writes: levels, spans with and without fields,
    /// nested, none, a message with fields of each type.
    fn log_some_lines() {
        let request = tracing::error_span!("request", request_id = %"7f3e-ab");
        request.in_scope(|| {
            tracing::info!(method = %"POST", path = %"/graphql", status = 200_u16, latency_ms = 0.125_f64, fields = %"allUsers{limit: 10}", "request");
            let inner = tracing::error_span!("inner");
            inner.in_scope(|| tracing::warn!(error = "a \"quoted\" text", kind = ?io::ErrorKind::NotFound, "cannot read"));
        });
        tracing::error!(count = -3_i64, flag = true, "no span at all");
        let wrapped = Wrapped(io::Error::other("the disk is full"));
        let fields = tracing::info_span!("several", a = 1_u64, b = %"two", c = ?Some(3));
        fields.in_scope(|| {
            tracing::error!(
                error = &wrapped as &(dyn std::error::Error + 'static),
                "with a source"
            );
            tracing::info!(r#type = "raw", message = "a message given as a field");
        });
        tracing::debug!("just a message with \u{1b}[31m an escape");
        tracing::warn!(
            a = 0.0_f64,
            b = -0.0_f64,
            c = 1e-4_f64,
            d = 9.99e-5_f64,
            e = 1e16_f64,
            f = 9_999_999_999_999_998.0_f64,
            g = f64::NAN,
            h = f64::NEG_INFINITY,
            i = 123.456_f64,
            j = u64::MAX,
            k = i64::MIN,
            l = false,
            m = 0.1_f64 + 0.2_f64,
            "numbers"
        );
        tracing::info!("controls \u{7} \u{8} \u{c} \u{7f} \u{80} \u{9f} \u{a0} \u{c2}\u{a9} and é");
        tracing::info!(message = "given as a text field \u{1b}[0m", after = 1_u64);
        tracing::info!(message = 42_u64);
        tracing::trace!(r#type = "raw name", "trace");
    }

    fn lines_of(plain: bool) -> Vec<String> {
        let lines = Lines::default();
        let builder = tracing_subscriber::fmt()
            .with_max_level(Level::TRACE)
            .with_ansi(false)
            .with_writer(lines.clone());
        if plain {
            let subscriber = builder.fmt_fields(PlainFields).event_format(PlainText).finish();
            tracing::subscriber::with_default(subscriber, log_some_lines);
        } else {
            tracing::subscriber::with_default(builder.finish(), log_some_lines);
        }
        let text = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
        text.lines().map(str::to_owned).collect()
    }

    #[test]
    fn lines_are_the_full_formats_without_colours_character_for_character() {
        let (plain, full) = (lines_of(true), lines_of(false));
        assert_eq!(plain.len(), 11, "{plain:#?}");
        assert_eq!(plain.len(), full.len());
        for (plain, full) in plain.iter().zip(&full) {
            // The times differ by the moments between the two runs; their shape does not.
            let (plain_time, plain_rest) = plain.split_at(28);
            let (full_time, full_rest) = full.split_at(28);
            assert_eq!(plain_rest, full_rest);
            assert_eq!(plain_time.len(), full_time.len());
            let shape = |time: &str| {
                time.chars()
                    .map(|c| if c.is_ascii_digit() { '0' } else { c })
                    .collect::<String>()
            };
            assert_eq!(shape(plain_time), "0000-00-00T00:00:00.000000Z ");
            assert_eq!(shape(full_time), shape(plain_time));
        }
        assert!(
            plain[0].contains(" INFO request{request_id=7f3e-ab}: "),
            "{}",
            plain[0]
        );
    }

    #[test]
    fn plain_decimals_are_written_as_debug_writes_them() {
        let mut buffer = ryu::Buffer::new();
        // Spread over every exponent of the range and just outside it: a xorshift walk
        // through bit patterns, and the edges themselves.
        let mut bits = 0x9e37_79b9_7f4a_7c15_u64;
        let mut checked = 0;
        let edges = [
            0.0,
            -0.0,
            1e-4,
            -1e-4,
            9_999_999_999_999_998.0,
            1e16,
            9.9e-5,
            1.0,
            0.1,
        ];
        for value in edges.into_iter().chain((0..200_000).map(|_| {
            bits ^= bits << 13;
            bits ^= bits >> 7;
            bits ^= bits << 17;
            // Exponents around the plain range: 1e-6 to 1e18.
            f64::from_bits((bits & 0x800f_ffff_ffff_ffff) | ((0x3eb + bits % 80) << 52))
        })) {
            if let Some(text) = shortest_decimal(value, &mut buffer) {
                assert_eq!(text, format!("{value:?}"));
                checked += 1;
            }
        }
        // Random bit patterns need 16 or 17 digits most of the time; a few thousand don't.
        assert!(checked > 1_000, "{checked}");
        // What the request line writes: milliseconds to the microsecond, all taken.
        for micros in 0..200_000_u64 {
            let value = micros as f64 / 1000.0;
            assert_eq!(shortest_decimal(value, &mut buffer), Some(&*format!("{value:?}")));
        }
    }

    #[test]
    fn the_timestamp_is_the_utc_time_to_the_microsecond() {
        let mut text = String::new();
        let at = UNIX_EPOCH + std::time::Duration::new(1_796_325_600, 7_654_321);
        write_timestamp(&mut Writer::new(&mut text), at).unwrap();
        // The same second again comes from the cache.
        write_timestamp(
            &mut Writer::new(&mut text),
            at + std::time::Duration::from_micros(2),
        )
        .unwrap();
        assert_eq!(text, "2026-12-03T19:20:00.007654Z 2026-12-03T19:20:00.007656Z ");
    }
}
