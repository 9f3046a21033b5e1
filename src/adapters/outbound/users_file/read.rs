//! Reading a users file: which files are read and how much of them, the byte-order mark,
//! the nesting limit, timestamps, and line and column numbers for reports.

use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::Path;

use chrono::{DateTime, Datelike, NaiveDateTime, Utc};
use serde::de::IgnoredAny;

use crate::domain::to_micros;

/// The deepest a value may nest, the top-level array counting as the first level (so a
/// record's own braces are the second). serde_json's own limit is 128; a person may keep a
/// few hundred levels under a key of their own, and a thousand parse and write well within
/// the 2 MiB stack of the store's thread.
pub const MAX_DEPTH: usize = 1000;

/// The biggest users file read: 4 GiB, about 18 million users of 220 bytes. Anything
/// bigger (or a file that keeps growing while it is read) is refused rather than read
/// until memory runs out.
pub const MAX_FILE_BYTES: u64 = 4 << 30;

/// The UTF-8 byte-order mark some editors put first.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// `bytes` without a leading UTF-8 byte-order mark.
pub fn strip_bom(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix(BOM).unwrap_or(bytes)
}

/// Whether a file's contents are empty or only whitespace (read as an empty list).
pub fn is_blank(bytes: &[u8]) -> bool {
    strip_bom(bytes).iter().all(u8::is_ascii_whitespace)
}

/// What a file system entry is, in words an error can use, when it is not a regular file.
fn not_regular(metadata: &fs::Metadata) -> Option<&'static str> {
    let kind = metadata.file_type();
    if kind.is_file() {
        return None;
    }
    if kind.is_dir() {
        return Some("a folder");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_fifo() {
            return Some("a FIFO");
        }
        if kind.is_char_device() || kind.is_block_device() {
            return Some("a device");
        }
        if kind.is_socket() {
            return Some("a socket");
        }
    }
    Some("not a regular file")
}

fn refuse_kind(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("it is {what}, not a regular file"),
    )
}

fn too_big() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!(
            "it is bigger than {} GiB, the most a users file may hold",
            MAX_FILE_BYTES >> 30
        ),
    )
}

/// Whether the entry at `path` (a symbolic link followed) may be read as a users file:
/// a regular file of at most [`MAX_FILE_BYTES`]. Answers without opening it, since
/// opening a FIFO waits for a writer.
///
/// # Errors
/// The file system's error (`NotFound` included), or one that names what the entry is.
pub fn check_regular(path: &Path) -> io::Result<u64> {
    let metadata = fs::metadata(path)?;
    if let Some(what) = not_regular(&metadata) {
        return Err(refuse_kind(what));
    }
    if metadata.len() > MAX_FILE_BYTES {
        return Err(too_big());
    }
    Ok(metadata.len())
}

/// Opens the users file at `path` for reading once [`check_regular`] agrees, and answers
/// its size.
///
/// # Errors
/// As [`check_regular`], and the open's own.
pub fn open_regular(path: &Path) -> io::Result<(File, u64)> {
    check_regular(path)?;
    let file = File::open(path)?;
    let metadata = file.metadata()?;
    if let Some(what) = not_regular(&metadata) {
        return Err(refuse_kind(what));
    }
    if metadata.len() > MAX_FILE_BYTES {
        return Err(too_big());
    }
    Ok((file, metadata.len()))
}

/// Reads at most [`MAX_FILE_BYTES`] from `reader` (standard input, say).
///
/// # Errors
/// The reader's, or one that says the contents are too big.
pub fn read_bounded(reader: impl Read, expected: u64) -> io::Result<Vec<u8>> {
    read_at_most(reader, expected, MAX_FILE_BYTES)
}

fn read_at_most(reader: impl Read, expected: u64, limit: u64) -> io::Result<Vec<u8>> {
    let capacity = usize::try_from(expected.min(limit)).unwrap_or(0);
    let mut bytes = Vec::with_capacity(capacity);
    reader.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(too_big());
    }
    Ok(bytes)
}

/// Reads the users file at `path` whole: only a regular file, and at most
/// [`MAX_FILE_BYTES`] of it.
///
/// # Errors
/// As [`open_regular`] and [`read_bounded`].
pub fn read_file(path: &Path) -> io::Result<Vec<u8>> {
    let (file, size) = open_regular(path)?;
    read_bounded(file, size)
}

/// A place in the file, as editors count it: lines from 1, columns in bytes from 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

/// Turns byte offsets into [`Position`]s, moving forward only, so that a whole file costs
/// one pass however many positions are asked for (a minified file is one long line).
#[derive(Clone, Debug)]
pub struct Cursor<'a> {
    bytes: &'a [u8],
    offset: usize,
    line: usize,
    line_start: usize,
}

impl<'a> Cursor<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Self {
            bytes,
            offset: 0,
            line: 1,
            line_start: 0,
        }
    }

    /// The offset it stands at: the last one asked for.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// The position of `offset`, which must not lie before the last one asked for.
    pub fn position(&mut self, offset: usize) -> Position {
        let offset = offset.clamp(self.offset, self.bytes.len());
        let passed = &self.bytes[self.offset..offset];
        // Counting and a reverse search both vectorise; a byte-by-byte walk was a tenth of
        // a whole check.
        if let Some(last) = passed.iter().rposition(|byte| *byte == b'\n') {
            self.line += passed.iter().filter(|byte| **byte == b'\n').count();
            self.line_start = self.offset + last + 1;
        }
        self.offset = offset;
        Position {
            line: self.line,
            column: offset - self.line_start + 1,
        }
    }
}

/// A file that nests deeper than [`MAX_DEPTH`]: where the first bracket past the limit is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TooDeep {
    pub at: Position,
}

impl TooDeep {
    /// What is wrong, without the place.
    pub fn message() -> String {
        format!("a value is nested more than {MAX_DEPTH} levels deep")
    }
}

impl fmt::Display for TooDeep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} at line {} column {}",
            Self::message(),
            self.at.line,
            self.at.column
        )
    }
}

/// Where `bytes` (a file's contents, byte-order mark skipped) first nest deeper than
/// [`MAX_DEPTH`], when that comes before anything that is not JSON (which a parser reports
/// instead): one pass that only follows brackets and strings.
pub fn too_deep(bytes: &[u8]) -> Option<TooDeep> {
    let mut depth = 0usize;
    let mut at = 0;
    let mut past = None;
    while at < bytes.len() {
        match bytes[at] {
            b'"' => {
                at += 1;
                while at < bytes.len() {
                    match bytes[at] {
                        b'\\' => at += 2,
                        b'"' => break,
                        _ => at += 1,
                    }
                }
            }
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    past = Some(at);
                    break;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        at += 1;
    }
    let past = past?;
    // Everything before the bracket must be JSON that only lacks its end.
    match serde_json::from_slice::<IgnoredAny>(&bytes[..past]) {
        Err(err) if err.classify() == serde_json::error::Category::Eof => Some(TooDeep {
            at: Cursor::new(bytes).position(past),
        }),
        _ => None,
    }
}

/// Reads RFC 3339, or the reference's naive `2024-05-01T10:00:00.123456` as UTC.
pub fn parse_timestamp(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Some(at.with_timezone(&Utc));
    }
    NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
        .ok()
        .map(|naive| naive.and_utc())
}

/// A timestamp as every reader of the file takes it: [`parse_timestamp`] to the
/// microsecond, in years 1 to 9999 (what both stores keep); `None` for text that is kept
/// as written instead.
pub fn read_timestamp(text: &str) -> Option<DateTime<Utc>> {
    parse_timestamp(text)
        .map(to_micros)
        .filter(|at| (1..=9999).contains(&at.year()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_count_lines_and_byte_columns_from_one() {
        let text = b"ab\ncd\n\nef";
        let mut cursor = Cursor::new(text);
        assert_eq!(cursor.position(0), Position { line: 1, column: 1 });
        assert_eq!(cursor.position(4), Position { line: 2, column: 2 });
        assert_eq!(cursor.position(7), Position { line: 4, column: 1 });
        assert_eq!(cursor.position(8), Position { line: 4, column: 2 });
    }

    fn nested(depth: usize) -> String {
        format!("{}{}", "[".repeat(depth), "]".repeat(depth))
    }

    #[test]
    fn depth_is_counted_outside_strings_and_only_valid_json_before_it_counts() {
        assert_eq!(too_deep(nested(MAX_DEPTH).as_bytes()), None);
        let over = nested(MAX_DEPTH + 1);
        assert_eq!(
            too_deep(over.as_bytes()).map(|deep| deep.at),
            Some(Position {
                line: 1,
                column: MAX_DEPTH + 1
            })
        );
        let quoted = format!("[\"{}\\\"{}\"]", "[".repeat(2000), "{".repeat(2000));
        assert_eq!(too_deep(quoted.as_bytes()), None);
        let broken = format!("[1 2, {}]", nested(MAX_DEPTH + 1));
        assert_eq!(too_deep(broken.as_bytes()), None, "the syntax error comes first");
    }

    #[test]
    fn a_byte_order_mark_is_skipped() {
        assert_eq!(strip_bom(b"\xEF\xBB\xBF[]"), b"[]");
        assert_eq!(strip_bom(b"[]"), b"[]");
        assert!(is_blank(b"\xEF\xBB\xBF \n"));
    }

    #[test]
    fn timestamps_are_read_in_years_both_stores_keep() {
        assert!(read_timestamp("2024-05-01T10:00:00.1234567").is_some());
        assert!(read_timestamp("0000-01-01T00:00:00Z").is_none());
        assert!(read_timestamp("+20000-01-01T00:00:00").is_none());
        assert!(read_timestamp("yesterday").is_none());
    }

    #[cfg(unix)]
    #[test]
    fn only_regular_files_are_read_and_only_so_much() {
        let dir = tempfile::tempdir().unwrap();
        let err = read_file(Path::new("/dev/zero")).unwrap_err();
        assert_eq!(err.to_string(), "it is a device, not a regular file");
        let link = dir.path().join("zero.json");
        std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
        assert_eq!(read_file(&link).unwrap_err().kind(), io::ErrorKind::InvalidInput);
        let err = read_at_most(io::repeat(b' '), 0, 10).unwrap_err();
        assert!(err.to_string().contains("bigger than 4 GiB"), "{err}");
        assert_eq!(read_at_most(&b"[]"[..], 2, 10).unwrap(), b"[]");
    }
}
