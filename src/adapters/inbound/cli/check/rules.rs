//! What the service would hide, refuse or change in a users file, record by record.
//!
//! The file's rules are the users file format's own
//! ([`crate::adapters::outbound::users_file`]), which the store and import read with, and
//! the validators are the domain's: a stricter rule in either shows up here.

use std::borrow::Cow;
use std::cell::{OnceCell, RefCell};
use std::collections::HashMap;

use super::scan::{self, Cursor, Element, Field, Key, Kind, Located, Position};
use crate::adapters::inbound::graphql::messages;
use crate::adapters::outbound::users_file::{self, TooDeep, read_timestamp, why_not_a_user};
use crate::domain::{Email, UserName, email_key, timestamp_text};

/// Everything found in a file that is a JSON array.
#[derive(Debug, Default)]
pub struct Report {
    /// Top-level elements.
    pub records: usize,
    /// Records the API serves as users.
    pub users: usize,
    /// What the service would hide, refuse or lose, in file order.
    pub problems: Vec<Finding>,
    /// What it keeps or tidies without loss, one entry per kind, at its first occurrence.
    pub notes: Vec<Note>,
}

impl Report {
    /// Whether the file holds nothing that needs a person's attention.
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

/// One problem at one place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub at: Position,
    pub message: String,
}

/// A kind of harmless finding: where it first occurs and how many records have it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub first: Position,
    pub count: usize,
    pub message: String,
}

/// Why a file is not a user list at all (the store would set it aside and serve nothing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotAList {
    pub at: Option<Position>,
    pub message: String,
}

/// Checks a file's bytes.
///
/// # Errors
/// [`NotAList`] when the contents are not a JSON array, with the place serde_json stopped.
pub fn check(bytes: &[u8]) -> Result<Report, NotAList> {
    let with_bom = bytes;
    let bytes = users_file::strip_bom(bytes);
    let mut checker = Checker::new(bytes);
    if bytes.len() != with_bom.len() {
        checker.note(
            "the file starts with a byte-order mark: the service reads past it and does not write it back",
            || Position { line: 1, column: 1 },
        );
    }
    let Some(first) = bytes.iter().position(|b| !b.is_ascii_whitespace()) else {
        checker.note(
            "the file is empty: the service reads it as an empty list and writes `[]` on the first change",
            || Position { line: 1, column: 1 },
        );
        return Ok(checker.report);
    };
    // The store's reader refuses this, with this message, before anything else it finds.
    if let Some(deep) = users_file::too_deep(bytes) {
        return Err(NotAList {
            at: Some(deep.at),
            message: TooDeep::message(),
        });
    }
    // The store parses the whole file with serde_json; this gives the very same verdict.
    if let Err(err) = serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
        return Err(not_json(&err));
    }
    if bytes[first] != b'[' {
        return Err(NotAList {
            at: Some(Cursor::new(bytes).position(first)),
            message: format!(
                "the top level is {}, not an array of users",
                Kind::of_first_byte(bytes[first])
            ),
        });
    }
    for located in scan::elements(bytes) {
        checker.record(located.map_err(|err| not_json(&err))?);
    }
    let mut report = checker.report;
    report.problems.sort_by_key(|finding| finding.at);
    Ok(report)
}

fn not_json(err: &serde_json::Error) -> NotAList {
    let text = err.to_string();
    let suffix = format!(" at line {} column {}", err.line(), err.column());
    let message = text.strip_suffix(&suffix).unwrap_or(&text);
    NotAList {
        at: (err.line() > 0).then_some(Position {
            line: err.line(),
            column: err.column().max(1),
        }),
        message: format!("not valid JSON: {message}"),
    }
}

/// The state carried from record to record: where we are and what was seen before.
struct Checker<'a> {
    bytes: &'a [u8],
    cursor: Cursor<'a>,
    ids: HashMap<Cow<'a, str>, Position>,
    emails: HashMap<String, (Position, Cow<'a, str>)>,
    note_index: HashMap<String, usize>,
    report: Report,
}

/// One record being checked: its text and where it starts.
struct Record<'a> {
    text: &'a [u8],
    offset: usize,
    /// A cursor standing at `offset`.
    cursor: Cursor<'a>,
    /// A cursor standing at the last key asked for: keys are mostly asked for in file order,
    /// so a record with many costs one pass over it, not one per key.
    moving: RefCell<Cursor<'a>>,
    at: Position,
    /// Where each key's last occurrence sits, found in one pass when first asked for: most
    /// records have nothing to report and are never scanned twice.
    keys: OnceCell<HashMap<Cow<'a, str>, usize>>,
}

impl Record<'_> {
    /// Where `key`'s last occurrence sits (the record's start if it cannot be found).
    fn key(&self, key: &str) -> Position {
        let Some(offset) = self.keys.get_or_init(|| scan::key_offsets(self.text)).get(key) else {
            return self.at;
        };
        let offset = self.offset + offset;
        let mut moving = self.moving.borrow_mut();
        if offset < moving.offset() {
            // Back to the record's start, to move forward from there again.
            *moving = self.cursor.clone();
        }
        moving.position(offset)
    }
}

impl<'a> Checker<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self {
            bytes,
            cursor: Cursor::new(bytes),
            ids: HashMap::new(),
            emails: HashMap::new(),
            note_index: HashMap::new(),
            report: Report::default(),
        }
    }

    fn problem(&mut self, at: Position, message: String) {
        self.report.problems.push(Finding { at, message });
    }

    /// Counts a note; its position is only worked out the first time.
    fn note(&mut self, message: &str, at: impl FnOnce() -> Position) {
        if let Some(&index) = self.note_index.get(message) {
            self.report.notes[index].count += 1;
            return;
        }
        self.note_index
            .insert(message.to_owned(), self.report.notes.len());
        self.report.notes.push(Note {
            first: at(),
            count: 1,
            message: message.to_owned(),
        });
    }

    fn record(&mut self, located: Located<'a>) {
        self.report.records += 1;
        let at = self.cursor.position(located.start);
        let record = Record {
            text: &self.bytes[located.start..located.end],
            offset: located.start,
            cursor: self.cursor.clone(),
            moving: RefCell::new(self.cursor.clone()),
            at,
            keys: OnceCell::new(),
        };
        let entries = match located.element {
            Element::Object(entries) => entries,
            Element::Other(kind) => {
                self.problem(at, format!("not a user record but {kind}: {HIDDEN}"));
                return;
            }
        };
        let last = |key: &Key<'_>| entries.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v);
        let why_not = why_not_a_user(&entries);
        if !why_not.is_empty() {
            self.problem(
                at,
                format!("not a user record ({}): {HIDDEN}", why_not.join(", ")),
            );
            return;
        }
        self.report.users += 1;
        self.repeated_keys(&record, &entries);
        for (key, _) in &entries {
            if let Key::Other(key) = key {
                let message = format!(
                    "unknown key {} is kept as written but not served by the API",
                    quoted(key)
                );
                self.note(&message, || record.key(key));
            }
        }
        let text = |key: Key<'_>| match last(&key) {
            Some(Field::Text(text)) => text.clone(),
            _ => Cow::Borrowed(""),
        };
        self.id(&record, text(Key::Id));
        self.name(&record, &text(Key::Name));
        self.email(&record, text(Key::Email));
        for key in [Key::CreatedAt, Key::UpdatedAt] {
            self.timestamp(&record, key.as_str(), last(&key));
        }
    }

    fn repeated_keys(&mut self, record: &Record<'_>, entries: &[(Key<'a>, Field<'a>)]) {
        // Each key once, in the order it first appears, with how often it does.
        let mut counts: Vec<(&Key<'a>, usize)> = Vec::new();
        let mut seen: HashMap<&Key<'a>, usize> = HashMap::with_capacity(entries.len());
        for (key, _) in entries {
            match seen.get(key) {
                Some(&at) => counts[at].1 += 1,
                None => {
                    seen.insert(key, counts.len());
                    counts.push((key, 1));
                }
            }
        }
        for (key, count) in counts.into_iter().filter(|(_, count)| *count > 1) {
            self.problem(
                record.key(key.as_str()),
                format!(
                    "key {} appears {count} times in this record: the service reads the last one and drops the others when it next writes the file",
                    quoted(key.as_str())
                ),
            );
        }
    }

    fn id(&mut self, record: &Record<'_>, id: Cow<'a, str>) {
        if id.is_empty() {
            self.problem(record.key("id"), "the id is empty".to_owned());
        }
        if let Some(first) = self.ids.get(&id) {
            let message = format!(
                "id {} is also the id of the record at line {}: the API reaches only the first of them by id",
                quoted(&id),
                first.line
            );
            self.problem(record.key("id"), message);
        } else {
            self.ids.insert(id, record.at);
        }
    }

    fn name(&mut self, record: &Record<'_>, name: &str) {
        match UserName::parse(name) {
            Err(err) => self.problem(
                record.key("name"),
                format!("name {}: {}", quoted(name), messages::name(&err)),
            ),
            // Trimming only removes, so a change shows in the length.
            Ok(valid) if valid.as_str().len() != name.len() => self.note(
                "a name with spaces around it is served as written; an edit through the API trims it",
                || record.key("name"),
            ),
            Ok(_) => {}
        }
    }

    fn email(&mut self, record: &Record<'_>, email: Cow<'a, str>) {
        match Email::parse(&email) {
            Err(err) => self.problem(
                record.key("email"),
                format!("email {}: {}", quoted(&email), messages::email(&err)),
            ),
            Ok(valid) if valid.as_str().len() != email.len() => self.note(
                "an email with spaces around it is served as written; an edit through the API trims it",
                || record.key("email"),
            ),
            Ok(_) => {}
        }
        let key = email_key(&email);
        if let Some((first, earlier)) = self.emails.get(&key) {
            let message = format!(
                "email {} is the address of the record at line {} ({}), ignoring case: userByEmail finds only the first, and updates that keep either address fail with \"Email in use.\"",
                quoted(&email),
                first.line,
                quoted(earlier)
            );
            self.problem(record.key("email"), message);
        } else {
            self.emails.insert(key, (record.at, email));
        }
    }

    fn timestamp(&mut self, record: &Record<'_>, key: &str, value: Option<&Field<'_>>) {
        match value {
            None => {}
            Some(Field::Other(Kind::Null)) => self.note(
                "a null timestamp is served as null and kept as written until a change of the user sets it",
                || record.key(key),
            ),
            Some(Field::Other(kind)) => self.problem(
                record.key(key),
                format!("`{key}` is {kind}, not a timestamp: {UNREADABLE_TIME}"),
            ),
            Some(Field::Text(text)) => match read_timestamp(text) {
                None => self.problem(
                    record.key(key),
                    format!("`{key}` {} is not a timestamp the service reads (RFC 3339, or the reference's `2024-05-01T10:00:00.123456` as UTC, in years 1 to 9999): {UNREADABLE_TIME}", quoted(text)),
                ),
                Some(at) if timestamp_text(at) != text.as_ref() => self.note(
                    "timestamps not in RFC 3339 UTC with microseconds (such as the reference's, read as UTC) are rewritten as `2024-05-01T10:00:00.123456Z` when the file is next written",
                    || record.key(key),
                ),
                Some(_) => {}
            },
        }
    }
}

const HIDDEN: &str = "the service keeps it in the file but hides it from the API";
const UNREADABLE_TIME: &str = "the API shows null and the value is kept as written";

/// A value from the file as a report shows it: quoted, escaped so that no control
/// character reaches the terminal, and cut short when long.
pub fn quoted(text: &str) -> String {
    const SHOWN: usize = 60;
    let count = text.chars().count();
    if count <= SHOWN {
        return format!("\"{}\"", text.escape_debug());
    }
    let head: String = text.chars().take(SHOWN).collect();
    format!("\"{}…\" ({count} characters)", head.escape_debug())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(text: &str) -> Vec<(usize, String)> {
        let report = check(text.as_bytes()).unwrap();
        report
            .problems
            .into_iter()
            .map(|finding| (finding.at.line, finding.message))
            .collect()
    }

    fn notes(text: &str) -> Vec<(usize, usize, String)> {
        let report = check(text.as_bytes()).unwrap();
        report
            .notes
            .into_iter()
            .map(|note| (note.first.line, note.count, note.message))
            .collect()
    }

    fn only_problem(text: &str) -> (usize, String) {
        let mut found = problems(text);
        assert_eq!(found.len(), 1, "{found:?}");
        found.remove(0)
    }

    const ANN: &str =
        r#"{"id": "1", "name": "Ann", "email": "ann@x.com", "created_at": "2024-05-01T10:00:00.123456Z"}"#;

    #[test]
    fn a_file_the_service_writes_is_clean() {
        let text = format!(
            "[\n  {ANN},\n  {}\n]\n",
            r#"{"id": "2", "name": "Bob", "email": "bob@x.com"}"#
        );
        let report = check(text.as_bytes()).unwrap();
        assert!(report.is_clean(), "{report:?}");
        assert!(report.notes.is_empty(), "{report:?}");
        assert_eq!((report.records, report.users), (2, 2));
    }

    #[test]
    fn records_that_are_not_users_are_named_with_the_reason() {
        let text = "[\n42,\n{\"id\": 5, \"name\": \"A\"},\n[1]\n]";
        let found = problems(text);
        assert_eq!(found.len(), 3, "{found:?}");
        assert_eq!(found[0].0, 2);
        assert!(
            found[0].1.starts_with("not a user record but a number"),
            "{found:?}"
        );
        assert_eq!(found[1].0, 3);
        assert!(
            found[1].1.contains("`id` is a number, `email` is missing"),
            "{found:?}"
        );
        assert!(found[1].1.contains("hides it from the API"), "{found:?}");
        assert!(
            found[2].1.starts_with("not a user record but an array"),
            "{found:?}"
        );
        let report = check(text.as_bytes()).unwrap();
        assert_eq!((report.records, report.users), (3, 0));
    }

    #[test]
    fn a_repeated_id_points_back_to_the_first_record() {
        let text = format!(
            "[\n{ANN},\n\n{}\n]",
            r#"{"id": "1", "name": "Bo", "email": "bo@x.com"}"#
        );
        let (line, message) = only_problem(&text);
        assert_eq!(line, 4);
        assert!(
            message.starts_with("id \"1\" is also the id of the record at line 2"),
            "{message}"
        );
    }

    #[test]
    fn emails_repeated_in_another_case_or_with_spaces_are_found() {
        let text = format!(
            "[\n{ANN},\n{}\n]",
            r#"{"id": "2", "name": "Bo", "email": " ANN@X.com"}"#
        );
        let (line, message) = only_problem(&text);
        assert_eq!(line, 3);
        assert!(
            message
                .starts_with("email \" ANN@X.com\" is the address of the record at line 2 (\"ann@x.com\")"),
            "{message}"
        );
    }

    #[test]
    fn invalid_names_and_emails_use_the_domain_rules_and_point_at_their_key() {
        let text = "[\n  {\n    \"id\": \"1\",\n    \"name\": \"  \",\n    \"email\": \"ann@@x\"\n  }\n]";
        let found = problems(text);
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!(found[0].0, 4);
        assert_eq!(found[0].1, "name \"  \": Invalid name: it must not be empty.");
        assert_eq!(found[1].0, 5);
        assert_eq!(
            found[1].1,
            "email \"ann@@x\": Invalid email: it must contain exactly one '@' between a local part and a domain."
        );
    }

    #[test]
    fn unreadable_timestamps_are_problems_and_odd_forms_are_notes() {
        let text = concat!(
            "[\n",
            r#"{"id": "1", "name": "A", "email": "a@x", "created_at": "yesterday", "updated_at": 17},"#,
            "\n",
            r#"{"id": "2", "name": "B", "email": "b@x", "created_at": "2024-05-01T10:00:00.123456", "updated_at": null},"#,
            "\n",
            r#"{"id": "3", "name": "C", "email": "c@x", "created_at": "2024-05-01T12:00:00+02:00"}"#,
            "\n]"
        );
        let found = problems(text);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(
            found[0]
                .1
                .starts_with("`created_at` \"yesterday\" is not a timestamp"),
            "{found:?}"
        );
        assert!(
            found[1]
                .1
                .starts_with("`updated_at` is a number, not a timestamp"),
            "{found:?}"
        );
        let noted = notes(text);
        assert_eq!(noted.len(), 2, "{noted:?}");
        assert_eq!((noted[0].0, noted[0].1), (3, 2), "{noted:?}");
        assert!(
            noted[0].2.starts_with("timestamps not in RFC 3339 UTC"),
            "{noted:?}"
        );
        assert!(noted[1].2.starts_with("a null timestamp"), "{noted:?}");
    }

    #[test]
    fn unknown_keys_are_notes_counted_per_key() {
        let text = r#"[{"id": "1", "name": "A", "email": "a@x", "role": 1},
 {"id": "2", "name": "B", "email": "b@x", "role": "x", "team": "t"}]"#;
        let report = check(text.as_bytes()).unwrap();
        assert!(report.is_clean());
        let noted = notes(text);
        assert_eq!(noted.len(), 2, "{noted:?}");
        assert_eq!(noted[0].1, 2);
        assert!(noted[0].2.starts_with("unknown key \"role\""), "{noted:?}");
        assert_eq!((noted[1].0, noted[1].1), (2, 1));
    }

    #[test]
    fn a_repeated_key_loses_data_and_is_a_problem() {
        let text = "[{\"id\": \"1\", \"name\": \"A\",\n \"email\": \"a@x\", \"name\": \"B\"}]";
        let (line, message) = only_problem(text);
        assert_eq!(line, 2, "points at the occurrence the service keeps");
        assert!(message.starts_with("key \"name\" appears 2 times"), "{message}");
    }

    #[test]
    fn broken_json_reports_where_the_parser_stopped() {
        let err = check(b"[\n  {\"id\": \"1\",\n  oops\n]").unwrap_err();
        assert_eq!(err.at, Some(Position { line: 3, column: 3 }));
        assert_eq!(err.message, "not valid JSON: key must be a string");
        let trailing = check(b"[] x").unwrap_err();
        assert!(trailing.message.contains("trailing characters"), "{trailing:?}");
    }

    #[test]
    fn valid_json_that_is_not_an_array_is_refused_with_its_kind() {
        let err = check(b"\n  {\"users\": []}").unwrap_err();
        assert_eq!(err.at, Some(Position { line: 2, column: 3 }));
        assert_eq!(err.message, "the top level is an object, not an array of users");
    }

    #[test]
    fn an_empty_file_is_an_empty_list_with_a_note() {
        let report = check(b" \n").unwrap();
        assert!(report.is_clean());
        assert_eq!(report.records, 0);
        assert_eq!(report.notes.len(), 1);
    }

    #[test]
    fn values_are_quoted_escaped_and_cut_short() {
        assert_eq!(quoted("a\"b\u{1b}[31m"), r#""a\"b\u{1b}[31m""#);
        let long = "x".repeat(300);
        assert_eq!(quoted(&long), format!("\"{}…\" (300 characters)", "x".repeat(60)));
    }
}
