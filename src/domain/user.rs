//! The user entity and its validated value types.
//!
//! Input from clients goes through [`UserName::parse`] and [`Email::parse`] once, at the
//! edge of the use cases; a [`User`] restored from storage keeps whatever a person wrote
//! into the file, because hiding a hand-edited record would lose it from the API.

use std::fmt;

use chrono::{DateTime, SubsecRound, Utc};

/// Longest accepted name, in characters.
pub const MAX_NAME_CHARS: usize = 200;
/// Longest accepted email address, in characters (RFC 5321's path limit).
pub const MAX_EMAIL_CHARS: usize = 254;

/// A user's identifier: any non-empty string (new users get a UUID v4).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(String);

impl UserId {
    /// Wraps an identifier as it appears in storage or in a request.
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    /// The identifier's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a name was rejected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("empty name")]
    Empty,
    #[error("name over {MAX_NAME_CHARS} characters")]
    TooLong,
    #[error("name with control characters")]
    Control,
    #[error("name of only invisible or zero-width characters")]
    Invisible,
}

/// C0 controls, DEL and C1 controls: they break terminals, logs and files that show them.
fn is_control(ch: char) -> bool {
    ch.is_control()
}

/// Characters that show nothing and take no space: zero-width spaces and joiners, the
/// byte-order mark, bidirectional and other format controls, fillers, variation selectors
/// and tags. A name made only of these looks empty; an address with one looks like
/// another address.
fn is_invisible(ch: char) -> bool {
    matches!(
        ch,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{061C}'
            | '\u{115F}'
            | '\u{1160}'
            | '\u{17B4}'
            | '\u{17B5}'
            | '\u{180B}'..='\u{180F}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}'
            | '\u{2800}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{FFF0}'..='\u{FFFB}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0000}'..='\u{E0FFF}'
    )
}

/// A trimmed, non-empty name of at most [`MAX_NAME_CHARS`] characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserName(String);

impl UserName {
    /// Trims and validates a name given by a client.
    ///
    /// # Errors
    /// [`NameError`] when the trimmed name is empty, too long, holds a control character,
    /// or has nothing visible.
    pub fn parse(raw: &str) -> Result<Self, NameError> {
        let name = raw.trim();
        if name.is_empty() {
            return Err(NameError::Empty);
        }
        if name.chars().count() > MAX_NAME_CHARS {
            return Err(NameError::TooLong);
        }
        if name.chars().any(is_control) {
            return Err(NameError::Control);
        }
        if name.chars().all(|ch| is_invisible(ch) || ch.is_whitespace()) {
            return Err(NameError::Invisible);
        }
        Ok(Self(name.to_owned()))
    }

    /// The name's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Why an email address was rejected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    #[error("empty email")]
    Empty,
    #[error("email over {MAX_EMAIL_CHARS} characters")]
    TooLong,
    #[error("email with whitespace")]
    Whitespace,
    #[error("email with control characters")]
    Control,
    #[error("email with invisible or zero-width characters")]
    Invisible,
    #[error("email without exactly one '@' between a local part and a domain")]
    Shape,
}

/// A trimmed email address: one `@` with a non-empty local part and domain, no
/// whitespace, at most [`MAX_EMAIL_CHARS`] characters. Case is kept as given; equality
/// for uniqueness goes through [`Email::key`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    /// Trims and validates an address given by a client.
    ///
    /// # Errors
    /// [`EmailError`] naming the first rule the address breaks.
    pub fn parse(raw: &str) -> Result<Self, EmailError> {
        let email = raw.trim();
        if email.is_empty() {
            return Err(EmailError::Empty);
        }
        if email.chars().count() > MAX_EMAIL_CHARS {
            return Err(EmailError::TooLong);
        }
        if email.chars().any(char::is_whitespace) {
            return Err(EmailError::Whitespace);
        }
        if email.chars().any(is_control) {
            return Err(EmailError::Control);
        }
        if email.chars().any(is_invisible) {
            return Err(EmailError::Invisible);
        }
        match email.split_once('@') {
            Some((local, domain)) if !local.is_empty() && !domain.is_empty() && !domain.contains('@') => {
                Ok(Self(email.to_owned()))
            }
            _ => Err(EmailError::Shape),
        }
    }

    /// The address as given (trimmed).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key under which addresses are unique: trimmed and lowercased.
    pub fn key(&self) -> String {
        email_key(&self.0)
    }
}

/// A timestamp as the file and the API carry it: RFC 3339 in UTC with microseconds, e.g.
/// `2024-05-01T10:00:00.123456Z` (fixed width, so the text sorts like the time).
pub fn timestamp_text(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// `at` at the precision every timestamp is kept at: microseconds, as the file and the API
/// write it, so what a client reads always compares equal to what is stored.
pub fn to_micros(at: DateTime<Utc>) -> DateTime<Utc> {
    at.trunc_subsecs(6)
}

/// The uniqueness key of any stored address, validated or not.
pub fn email_key(email: &str) -> String {
    email.trim().to_lowercase()
}

/// One user record. Fields are private so that a `User` only changes through the
/// rules in [`crate::domain::UserSet`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    id: UserId,
    name: String,
    email: String,
    created_at: Option<DateTime<Utc>>,
    updated_at: Option<DateTime<Utc>>,
}

impl User {
    /// A brand-new user, created and updated at `now`.
    pub fn new(id: UserId, name: UserName, email: Email, now: DateTime<Utc>) -> Self {
        let now = to_micros(now);
        Self {
            id,
            name: name.0,
            email: email.0,
            created_at: Some(now),
            updated_at: Some(now),
        }
    }

    /// A user as storage holds it. Name and email are taken as written, even when a
    /// person's edit would not pass validation, so that no record disappears; timestamps
    /// are kept to the microsecond.
    pub fn restore(
        id: UserId,
        name: String,
        email: String,
        created_at: Option<DateTime<Utc>>,
        updated_at: Option<DateTime<Utc>>,
    ) -> Self {
        Self {
            id,
            name,
            email,
            created_at: created_at.map(to_micros),
            updated_at: updated_at.map(to_micros),
        }
    }

    pub fn id(&self) -> &UserId {
        &self.id
    }
    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn email(&self) -> &str {
        &self.email
    }
    pub fn created_at(&self) -> Option<DateTime<Utc>> {
        self.created_at
    }
    pub fn updated_at(&self) -> Option<DateTime<Utc>> {
        self.updated_at
    }

    /// The uniqueness key of this user's address.
    pub fn email_key(&self) -> String {
        email_key(&self.email)
    }

    pub(crate) fn rename(&mut self, name: UserName, email: Email, now: DateTime<Utc>) {
        self.name = name.0;
        self.email = email.0;
        self.updated_at = Some(to_micros(now));
    }

    pub(crate) fn patch(&mut self, name: Option<UserName>, email: Option<Email>, now: DateTime<Utc>) {
        if let Some(name) = name {
            self.name = name.0;
        }
        if let Some(email) = email {
            self.email = email.0;
        }
        self.updated_at = Some(to_micros(now));
    }

    pub(crate) fn change_email(&mut self, email: Email, now: DateTime<Utc>) {
        self.email = email.0;
        self.updated_at = Some(to_micros(now));
    }
}

/// Users as storage would hold them, from `(id, name, email)` rows without timestamps.
#[cfg(test)]
pub(crate) fn stored_users(rows: &[(&str, &str, &str)]) -> Vec<std::sync::Arc<User>> {
    rows.iter()
        .map(|(id, name, email)| {
            std::sync::Arc::new(User::restore(
                UserId::new(*id),
                name.to_string(),
                email.to_string(),
                None,
                None,
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_kept_to_the_microsecond() {
        let at = DateTime::parse_from_rfc3339("2024-05-01T10:00:00.1234567Z")
            .unwrap()
            .with_timezone(&Utc);
        let user = User::restore(UserId::new("a"), "A".into(), "a@x".into(), Some(at), Some(at));
        assert_eq!(
            timestamp_text(user.updated_at().unwrap()),
            "2024-05-01T10:00:00.123456Z"
        );
        assert_eq!(user.updated_at(), Some(to_micros(at)));
        let fresh = User::new(
            UserId::new("b"),
            UserName::parse("B").unwrap(),
            Email::parse("b@x").unwrap(),
            at,
        );
        assert_eq!(fresh.created_at().unwrap().timestamp_subsec_nanos() % 1000, 0);
    }

    #[test]
    fn names_are_trimmed() {
        assert_eq!(UserName::parse("  Ada ").unwrap().as_str(), "Ada");
    }

    #[test]
    fn blank_names_are_rejected() {
        assert_eq!(UserName::parse(""), Err(NameError::Empty));
        assert_eq!(UserName::parse(" \t\n"), Err(NameError::Empty));
    }

    #[test]
    fn names_are_limited_by_characters_not_bytes() {
        assert!(UserName::parse(&"é".repeat(200)).is_ok());
        assert_eq!(UserName::parse(&"a".repeat(201)), Err(NameError::TooLong));
    }

    #[test]
    fn emails_are_trimmed_and_keep_their_case() {
        let email = Email::parse("  Ada@Example.COM ").unwrap();
        assert_eq!(email.as_str(), "Ada@Example.COM");
        assert_eq!(email.key(), "ada@example.com");
    }

    #[test]
    fn emails_need_one_at_between_two_non_empty_parts() {
        for bad in ["ada", "@example.com", "ada@", "a@b@c", "@"] {
            assert_eq!(Email::parse(bad), Err(EmailError::Shape), "{bad}");
        }
        assert!(Email::parse("a@b").is_ok());
    }

    #[test]
    fn emails_reject_inner_whitespace_and_emptiness() {
        assert_eq!(Email::parse("a da@x.com"), Err(EmailError::Whitespace));
        assert_eq!(Email::parse("ada@x\t.com"), Err(EmailError::Whitespace));
        assert_eq!(Email::parse("   "), Err(EmailError::Empty));
    }

    #[test]
    fn names_refuse_control_characters_and_say_so() {
        for bad in [
            "Ada\u{0}",
            "A\u{1b}[31mda",
            "Ada\u{7f}",
            "Ad\u{85}a",
            "A\tda",
            "A\nda",
        ] {
            assert_eq!(UserName::parse(bad), Err(NameError::Control), "{bad:?}");
        }
        assert!(NameError::Control.to_string().contains("control characters"));
    }

    #[test]
    fn names_made_only_of_invisible_characters_are_refused() {
        for bad in [
            "\u{200B}",
            " \u{200B}\u{200D} ",
            "\u{FEFF}",
            "\u{2060}\u{00A0}\u{3164}",
            "\u{E0041}",
        ] {
            assert_eq!(UserName::parse(bad), Err(NameError::Invisible), "{bad:?}");
        }
        // A visible name may still carry a joiner, as emoji and some scripts need.
        assert!(UserName::parse("Zoë \u{1F469}\u{200D}\u{1F4BB}").is_ok());
        assert!(UserName::parse("محمد").is_ok());
    }

    #[test]
    fn emails_refuse_control_and_invisible_characters_anywhere() {
        assert_eq!(Email::parse("ada\u{0}@x.com"), Err(EmailError::Control));
        assert_eq!(Email::parse("ada@x.com\u{1b}"), Err(EmailError::Control));
        assert_eq!(Email::parse("ada\u{200B}@x.com"), Err(EmailError::Invisible));
        assert_eq!(Email::parse("ada@x\u{FEFF}.com"), Err(EmailError::Invisible));
        assert_eq!(Email::parse("ada@x\u{3000}.com"), Err(EmailError::Whitespace));
        assert!(EmailError::Invisible.to_string().contains("zero-width"));
    }

    #[test]
    fn emails_are_limited_to_254_characters() {
        let local = "a".repeat(64);
        let ok = format!("{local}@{}", "d".repeat(254 - 65));
        assert_eq!(ok.chars().count(), 254);
        assert!(Email::parse(&ok).is_ok());
        assert_eq!(Email::parse(&format!("{ok}x")), Err(EmailError::TooLong));
    }
}
