//! The users file: one definition of its format, read and written by the file store, by
//! `roster import` and `roster export`, and judged by `roster check`.
//!
//! A JSON array of `{ "id", "name", "email", "created_at", "updated_at" }` objects,
//! written two-space indented with a trailing newline, each user's own fields first and
//! the keys Roster does not model after them, in the order they were read.
//!
//! Reading ([`read`], [`record`]):
//! - Empty or all-whitespace contents are an empty list. A leading UTF-8 byte-order mark
//!   is skipped (and never written back).
//! - Only a regular file is read (a symbolic link is followed to one): a FIFO, a device or
//!   a socket is refused before it is opened, and at most [`MAX_FILE_BYTES`] are read.
//! - Values may nest up to [`MAX_DEPTH`] levels, the top-level array counting as the first;
//!   a file with anything deeper is not a user list, with the same message everywhere
//!   ([`TooDeep`]).
//! - A record is a user when it is an object whose `id`, `name` and `email` are strings.
//!   A repeated key keeps its first place and its last value, as any JSON reader does.
//!   Anything else is kept verbatim at its place and hidden from the API.
//! - A timestamp is read from RFC 3339, or from the reference's naive
//!   `2024-05-01T10:00:00.123456` as UTC, kept to the microsecond, in years 1 to 9999 (what
//!   both stores can hold). Any other value under `created_at` or `updated_at` is kept as
//!   written, and the API shows null.
//!
//! `"updated_at": null` (or `"created_at": null`): the API shows null, and the `null` is
//! kept as written like any other value Roster does not read as a time. A record Roster
//! does not change is written back as it was read, so the `null` stays until that user is
//! changed; then the change's time replaces it (a timestamp Roster sets wins over the text
//! it kept under the same key). The file store, an import followed by an export, and
//! `roster check` all say and do this.
//!
//! Writing ([`write`]): a timestamp as RFC 3339 UTC with microseconds
//! (`2024-05-01T10:00:00.123456Z`); values kept as they were read, laid out as serde_json's
//! pretty printer lays them out, without recursion, so any depth the reader accepts is
//! written on any thread's stack.

pub mod raw;
pub mod read;
pub mod record;
pub mod write;

pub use read::{
    Cursor, MAX_DEPTH, MAX_FILE_BYTES, Position, TooDeep, is_blank, open_regular, parse_timestamp, read_file,
    read_timestamp, strip_bom, too_deep,
};
pub use record::{FieldValue, Key, Kind, Record, UserRecord, classify, why_not_a_user};
