//! `roster seed N`: made-up users, as a users file, for trying the service at scale and for
//! the benchmarks (which load what the built binary writes, so every figure is measured on
//! the same data).
//!
//! A driving adapter: the command line asks, [`Seeder`] makes [`User`]s, [`write_users`]
//! streams them in the file store's format (a two-space indented array with a trailing
//! newline, timestamps as the store writes them), so memory stays bounded at any count.
//!
//! The users are realistic enough for searches and sorts to behave as on real data: names
//! from many languages with their accents and a realistic spread ([`names`]), addresses
//! derived from the name and unique by construction (each ends with a number no other user
//! has), ids in the UUID v4 form and unique by construction, creation times over past years
//! in file order, with more users lately, and some users updated since. Everything comes
//! from a small generator of our own seeded by `--seed`, with only exact arithmetic (no
//! library functions whose last bit may differ between platforms), so a seed and a count
//! give the same file, byte for byte, on every machine and with every version of the
//! dependencies.

mod names;

use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::process::ExitCode;
use std::sync::OnceLock;

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;
use serde::ser::{SerializeStruct, Serializer as _};
use serde_json::ser::PrettyFormatter;

use crate::adapters::outbound::json_file::replace_file;
use crate::adapters::outbound::users_file::write::serialize_timestamp;
use crate::domain::{User, UserId};

use names::Group;

/// The first instant a seeded user can have been created: the users span 2019 to 2025.
const FIRST_CREATED_SECONDS: i64 = 1_546_300_800; // 2019-01-01T00:00:00Z
/// The end of the span: no seeded time is later, so a seeded file never holds the future.
const LAST_SECONDS: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z

/// How much rendered text is gathered before it is handed to the output.
const CHUNK_BYTES: usize = 256 * 1024;

/// The users of one seed and count, in file order.
pub struct Seeder {
    random: SplitMix64,
    /// Mixed with a user's index into the part of its id no other user shares.
    id_key: u64,
    /// The email numbers: `index * multiplier + offset` modulo `2^bits`, a permutation of
    /// the indexes, so numbers are unique without looking sequential.
    number: (u64, u64, u32),
    next: u64,
    count: u64,
}

impl Seeder {
    /// The `count` users of `seed`.
    pub fn new(seed: u64, count: u64) -> Self {
        let mut random = SplitMix64(seed);
        let id_key = random.next();
        let bits = (u64::BITS - count.leading_zeros()).max(10);
        let number = (random.next() | 1, random.next(), bits);
        Self {
            random,
            id_key,
            number,
            next: 0,
            count,
        }
    }

    fn user(&mut self, index: u64) -> User {
        let id = self.id(index);
        let (language, first, last) = self.names();
        let (name, middle) = self.name(language, first, last);
        let email = self.email(index, first, middle.unwrap_or(last));
        let (created, updated) = self.times(index);
        User::restore(UserId::new(id), name, email, Some(created), Some(updated))
    }

    /// A UUID v4's text: 64 of its bits are a bijection of the index (unique whatever the
    /// generator draws), the other 58 are random.
    fn id(&mut self, index: u64) -> String {
        let unique = mix(index ^ self.id_key).to_be_bytes();
        let random = self.random.next().to_be_bytes();
        let mut bytes = [0u8; 16];
        bytes[..6].copy_from_slice(&random[..6]);
        bytes[6] = 0x40 | (random[6] & 0x0f);
        bytes[7] = unique[0];
        bytes[8] = 0x80 | (random[7] & 0x3f);
        bytes[9..].copy_from_slice(&unique[1..]);
        let mut text = String::with_capacity(36);
        for (at, byte) in bytes.iter().enumerate() {
            if matches!(at, 4 | 6 | 8 | 10) {
                text.push('-');
            }
            for nibble in [byte >> 4, byte & 0x0f] {
                text.push(char::from(b"0123456789abcdef"[usize::from(nibble)]));
            }
        }
        text
    }

    /// A first name and a surname: of the same language for most users, as in a real list.
    fn names(&mut self) -> (usize, &'static Name, &'static Name) {
        let tables = tables();
        let language = tables.first.language(&mut self.random);
        let given = tables.first.pick(language, &mut self.random);
        let family = match tables.surnames_of[language] {
            Some(same) if self.random.below(100) < 70 => tables.last.pick(same, &mut self.random),
            _ => tables.last.any(&mut self.random),
        };
        (language, given, family)
    }

    /// The name as written, and the surname the address uses when it is not `last` (the
    /// first of a double-barrelled one).
    fn name(
        &mut self,
        language: usize,
        first: &'static Name,
        last: &'static Name,
    ) -> (String, Option<&'static Name>) {
        match self.random.below(100) {
            // A middle initial, as many records carry.
            0..=7 => {
                let initial = char::from(b'A' + self.random.below(26) as u8);
                (format!("{} {initial}. {}", first.written, last.written), None)
            }
            // Two first names.
            8..=11 => {
                let second = tables().first.pick(language, &mut self.random);
                (
                    format!("{} {} {}", first.written, second.written, last.written),
                    None,
                )
            }
            // A double-barrelled surname.
            12..=14 => {
                let other = tables().last.any(&mut self.random);
                (
                    format!("{} {}-{}", first.written, last.written, other.written),
                    Some(last),
                )
            }
            _ => (format!("{} {}", first.written, last.written), None),
        }
    }

    /// An address from the name in one of the usual shapes, ending with the user's number:
    /// the letters before it hold no digit, so two users' addresses differ in their numbers.
    fn email(&mut self, index: u64, first: &Name, last: &Name) -> String {
        let (multiplier, offset, bits) = self.number;
        let number = index.wrapping_mul(multiplier).wrapping_add(offset) & ((1 << bits) - 1);
        let (f, l) = (first.ascii.as_str(), last.ascii.as_str());
        let initial = &f[..f.chars().next().map_or(0, char::len_utf8)];
        let local = match self.random.below(100) {
            0..=39 => format!("{f}.{l}{number}"),
            40..=54 => format!("{initial}{l}{number}"),
            55..=69 => format!("{f}{l}{number}"),
            70..=79 => format!("{f}_{l}{number}"),
            80..=89 => format!("{l}.{f}{number}"),
            _ => format!("{f}{number}"),
        };
        const DOMAINS: [&str; 8] = [
            "example.com",
            "example.com",
            "example.org",
            "example.net",
            "mail.example",
            "inbox.example",
            "post.example",
            "corp.example",
        ];
        let domain = DOMAINS[self.random.below(DOMAINS.len() as u64) as usize];
        format!("{local}@{domain}")
    }

    /// Creation times rise with the index over the span, denser towards its end (the
    /// curve `x (1.5 - x / 2)`: three times as many users a day at the end as at the
    /// start); about half the users were updated since, at some time up to the span's end.
    fn times(&mut self, index: u64) -> (DateTime<Utc>, DateTime<Utc>) {
        let span = (LAST_SECONDS - FIRST_CREATED_SECONDS) as f64 * 1e6;
        let x = (index as f64 + self.random.unit()) / self.count.max(1) as f64;
        let created_micros = FIRST_CREATED_SECONDS as f64 * 1e6 + span * x * (1.5 - 0.5 * x);
        let created = micros(created_micros as i64);
        let updated = if self.random.below(100) < 45 {
            created
        } else {
            let left = (LAST_SECONDS * 1_000_000 - created.timestamp_micros()) as f64;
            micros(created.timestamp_micros() + (left * self.random.unit()) as i64)
        };
        (created, updated)
    }
}

impl Iterator for Seeder {
    type Item = User;

    fn next(&mut self) -> Option<User> {
        (self.next < self.count).then(|| {
            self.next += 1;
            self.user(self.next - 1)
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = usize::try_from(self.count - self.next).unwrap_or(usize::MAX);
        (left, Some(left))
    }
}

impl ExactSizeIterator for Seeder {}

fn micros(micros: i64) -> DateTime<Utc> {
    DateTime::UNIX_EPOCH + TimeDelta::microseconds(micros)
}

/// SplitMix64: a tiny generator of our own (a counter through a mixing function), so a
/// seed's users never change with a dependency's version.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.0)
    }

    /// A number below `bound` (Lemire's multiply and shift; the bias is below 2^-40 for
    /// the bounds used here).
    fn below(&mut self, bound: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(bound)) >> 64) as u64
    }

    /// A number in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// SplitMix64's finaliser: a bijection of `u64`, so distinct inputs give distinct outputs.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// One name: as written, and in lowercase ASCII letters for addresses.
struct Name {
    written: &'static str,
    ascii: String,
}

/// Names by language, with cumulative weights for drawing a language by its share and a
/// name by its weight inside it.
struct Table {
    names: Vec<Name>,
    /// Each language's names, as a range of `names`.
    groups: Vec<std::ops::Range<usize>>,
    /// `group_ends[g]` is the sum of the shares of languages `0..=g`.
    group_ends: Vec<u64>,
    /// `ends[i]` is the sum of the weights of the names from the start of name `i`'s
    /// language to `i`.
    ends: Vec<u64>,
}

impl Table {
    /// Inside a language, the `k`-th name weighs `1 / sqrt(k + 4)`: a gentle fall from the
    /// most common name to the rarest (a square root is exact in IEEE arithmetic, so the
    /// weights are the same everywhere).
    fn of(groups: &[Group]) -> Self {
        let mut table = Self {
            names: Vec::new(),
            groups: Vec::new(),
            group_ends: Vec::new(),
            ends: Vec::new(),
        };
        for group in groups {
            let start = table.names.len();
            let mut total = 0u64;
            for (k, entry) in group.names.split(',').map(str::trim).enumerate() {
                let (written, latin) = entry.split_once('/').unwrap_or((entry, entry));
                total += (1e9 / (k as f64 + 4.0).sqrt()) as u64;
                table.names.push(Name {
                    written,
                    ascii: ascii_letters(latin),
                });
                table.ends.push(total);
            }
            table.groups.push(start..table.names.len());
            let shares = table.group_ends.last().copied().unwrap_or(0);
            table.group_ends.push(shares + u64::from(group.share));
        }
        table
    }

    /// A language, drawn by its share.
    fn language(&self, random: &mut SplitMix64) -> usize {
        let drawn = random.below(self.group_ends.last().copied().unwrap_or(0));
        self.group_ends.partition_point(|&end| end <= drawn)
    }

    /// A name of `language`, drawn by its weight.
    fn pick(&'static self, language: usize, random: &mut SplitMix64) -> &'static Name {
        let range = self.groups[language].clone();
        let ends = &self.ends[range.clone()];
        let drawn = random.below(ends.last().copied().unwrap_or(0));
        &self.names[range.start + ends.partition_point(|&end| end <= drawn)]
    }

    /// A name of any language.
    fn any(&'static self, random: &mut SplitMix64) -> &'static Name {
        let language = self.language(random);
        self.pick(language, random)
    }
}

struct Tables {
    first: Table,
    last: Table,
    /// For each language of the first names, the same language's place among the surnames'.
    surnames_of: Vec<Option<usize>>,
}

/// The name tables, built once.
fn tables() -> &'static Tables {
    static TABLES: OnceLock<Tables> = OnceLock::new();
    TABLES.get_or_init(|| Tables {
        first: Table::of(names::FIRST_NAMES),
        last: Table::of(names::SURNAMES),
        surnames_of: names::FIRST_NAMES
            .iter()
            .map(|first| {
                names::SURNAMES
                    .iter()
                    .position(|last| last.language == first.language)
            })
            .collect(),
    })
}

/// `text` lowercased, its accented Latin letters without their accents (`ß` as `ss`, `æ` as
/// `ae`) and everything but the letters a to z left out (spaces, apostrophes, hyphens).
fn ascii_letters(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars().flat_map(char::to_lowercase) {
        let plain = match ch {
            'a'..='z' => ch.to_string(),
            'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' | 'ă' | 'ą' | 'ạ' | 'ả' => "a".into(),
            'æ' => "ae".into(),
            'ç' | 'ć' | 'č' => "c".into(),
            'ď' | 'đ' | 'ð' => "d".into(),
            'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ė' | 'ę' | 'ě' | 'ễ' => "e".into(),
            'ğ' => "g".into(),
            'ì' | 'í' | 'î' | 'ï' | 'ī' | 'į' | 'ı' => "i".into(),
            'ł' | 'ľ' | 'ĺ' => "l".into(),
            'ñ' | 'ń' | 'ň' => "n".into(),
            'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' | 'ő' | 'ọ' => "o".into(),
            'œ' => "oe".into(),
            'ř' => "r".into(),
            'ś' | 'š' | 'ş' | 'ș' => "s".into(),
            'ß' => "ss".into(),
            'ť' | 'ţ' | 'ț' => "t".into(),
            'ù' | 'ú' | 'û' | 'ü' | 'ū' | 'ů' | 'ű' | 'ų' | 'ũ' => "u".into(),
            'ý' | 'ÿ' => "y".into(),
            'ź' | 'ż' | 'ž' => "z".into(),
            'þ' => "th".into(),
            _ => continue,
        };
        out.push_str(&plain);
    }
    out
}

/// One user as the file store writes it.
struct Record(User);

impl Serialize for Record {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let user = &self.0;
        let mut record = serializer.serialize_struct("User", 5)?;
        record.serialize_field("id", user.id().as_str())?;
        record.serialize_field("name", user.name())?;
        record.serialize_field("email", user.email())?;
        record.serialize_field("created_at", &user.created_at().map(Timestamp))?;
        record.serialize_field("updated_at", &user.updated_at().map(Timestamp))?;
        record.end()
    }
}

/// A timestamp in the store's text, without a `String` per timestamp.
struct Timestamp(DateTime<Utc>);

impl Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serialize_timestamp(self.0, serializer)
    }
}

/// Writes `users` as a users file: the array the store reads, laid out as the store writes
/// it, each user rendered as it is drawn.
///
/// # Errors
/// The output's errors.
pub fn write_users(users: impl Iterator<Item = User>, out: &mut dyn Write) -> io::Result<()> {
    let mut chunks = BufWriter::with_capacity(CHUNK_BYTES, out);
    let mut serializer =
        serde_json::Serializer::with_formatter(&mut chunks, PrettyFormatter::with_indent(b"  "));
    serializer.collect_seq(users.map(Record))?;
    chunks.write_all(b"\n")?;
    chunks.flush()
}

/// Writes `count` users of `seed` to the file at `path`, replaced atomically.
///
/// # Errors
/// The file's errors.
pub fn write_file(count: u64, seed: u64, path: &Path) -> io::Result<()> {
    replace_file(path, |file| write_users(Seeder::new(seed, count), file)).map(drop)
}

/// `roster seed`: writes `count` users of `seed` to `out`, replaced atomically, or to
/// standard output.
pub fn run(count: u64, seed: u64, out: Option<&Path>) -> ExitCode {
    let users = Seeder::new(seed, count);
    let (written, place) = match out {
        Some(path) => (
            replace_file(path, |file| write_users(users, file)).map(drop),
            path.display().to_string(),
        ),
        None => (
            write_users(users, &mut io::stdout().lock()),
            "standard output".to_owned(),
        ),
    };
    match written {
        Ok(()) => {
            eprintln!("roster: seeded {count} users ({place})");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("roster: cannot write the seeded users to {place}: {err}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use serde_json::Value;

    use super::*;
    use crate::domain::{Email, UserName, email_key, timestamp_text};

    fn rendered(seed: u64, count: u64) -> Vec<u8> {
        let mut out = Vec::new();
        write_users(Seeder::new(seed, count), &mut out).unwrap();
        out
    }

    #[test]
    fn the_same_seed_and_count_give_the_same_file_and_another_seed_other_users() {
        assert_eq!(rendered(7, 500), rendered(7, 500));
        let (seven, eight): (Vec<User>, Vec<User>) =
            (Seeder::new(7, 500).collect(), Seeder::new(8, 500).collect());
        let differing = seven
            .iter()
            .zip(&eight)
            .filter(|(a, b)| a.name() != b.name())
            .count();
        assert!(differing > 400, "only {differing} of 500 names differ");
        assert!(
            seven
                .iter()
                .zip(&eight)
                .all(|(a, b)| a.id() != b.id() && a.email() != b.email())
        );
    }

    #[test]
    fn the_file_is_the_stores_layout_and_holds_every_field_of_every_user() {
        let bytes = rendered(3, 200);
        let text = String::from_utf8(bytes).unwrap();
        let parsed: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            text,
            format!("{}\n", serde_json::to_string_pretty(&parsed).unwrap())
        );
        assert!(text.starts_with("[\n  {\n    \"id\": \""), "{}", &text[..40]);
        let records = parsed.as_array().unwrap();
        assert_eq!(records.len(), 200);
        for (record, user) in records.iter().zip(Seeder::new(3, 200)) {
            let keys: Vec<&str> = record.as_object().unwrap().keys().map(String::as_str).collect();
            assert_eq!(keys, ["id", "name", "email", "created_at", "updated_at"]);
            assert_eq!(record["id"], user.id().as_str());
            assert_eq!(record["name"], user.name());
            assert_eq!(record["email"], user.email());
            assert_eq!(record["created_at"], timestamp_text(user.created_at().unwrap()));
            assert_eq!(record["updated_at"], timestamp_text(user.updated_at().unwrap()));
        }
        assert_eq!(rendered(3, 0), b"[]\n");
    }

    #[test]
    fn every_seeded_name_and_address_passes_the_domains_validation_unchanged() {
        for user in Seeder::new(11, 20_000) {
            assert_eq!(UserName::parse(user.name()).unwrap().as_str(), user.name());
            assert_eq!(Email::parse(user.email()).unwrap().as_str(), user.email());
        }
    }

    #[test]
    fn addresses_are_unique_ignoring_case_and_ids_are_unique_uuid_v4s() {
        let users: Vec<User> = Seeder::new(5, 100_000).collect();
        let keys: HashSet<String> = users.iter().map(|u| email_key(u.email())).collect();
        assert_eq!(keys.len(), users.len());
        let ids: HashSet<&str> = users.iter().map(|u| u.id().as_str()).collect();
        assert_eq!(ids.len(), users.len());
        for id in ids.iter().take(1000) {
            let parsed = uuid::Uuid::parse_str(id).unwrap();
            assert_eq!(parsed.get_version_num(), 4, "{id}");
            assert_eq!(parsed.get_variant(), uuid::Variant::RFC4122, "{id}");
            assert_eq!(parsed.hyphenated().to_string(), *id);
        }
    }

    #[test]
    fn smith_is_about_one_user_in_eighty_and_names_keep_their_accents() {
        let users: Vec<User> = Seeder::new(1, 100_000).collect();
        let surname = |u: &&User| u.name().rsplit(' ').next().map(str::to_owned);
        let smiths = users
            .iter()
            .filter(|u| surname(u).as_deref() == Some("Smith"))
            .count();
        assert!((1_050..=1_450).contains(&smiths), "{smiths} Smiths in 100,000");
        let accented = users.iter().filter(|u| !u.name().is_ascii()).count();
        assert!(
            accented > 20_000,
            "only {accented} names with letters beyond ASCII"
        );
        let names: HashSet<&str> = users.iter().map(User::name).collect();
        assert!(names.len() > 20_000, "only {} distinct names", names.len());
        let surnames: HashSet<String> = users.iter().filter_map(|u| surname(&u)).collect();
        assert!(surnames.len() > 400, "only {} distinct surnames", surnames.len());
        let jon_smith = users.iter().filter(|u| u.name() == "Jon Smith").count();
        assert!(jon_smith > 0, "no Jon Smith for the benchmarks' fuzzy search");
    }

    #[test]
    fn users_are_created_in_file_order_over_past_years_and_updated_no_earlier() {
        let users: Vec<User> = Seeder::new(2, 50_000).collect();
        let span = micros(FIRST_CREATED_SECONDS * 1_000_000)..=micros(LAST_SECONDS * 1_000_000);
        let mut previous = *span.start();
        let mut updated_later = 0;
        for user in &users {
            let (created, updated) = (user.created_at().unwrap(), user.updated_at().unwrap());
            assert!(span.contains(&created) && span.contains(&updated), "{user:?}");
            assert!(previous <= created && created <= updated, "{user:?}");
            previous = created;
            updated_later += usize::from(updated > created);
        }
        assert!(
            (20_000..=35_000).contains(&updated_later),
            "{updated_later} updated"
        );
        // More users lately: the last fifth of the span holds more than its fifth.
        let late = micros((LAST_SECONDS - (LAST_SECONDS - FIRST_CREATED_SECONDS) / 5) * 1_000_000);
        let recent = users.iter().filter(|u| u.created_at().unwrap() >= late).count();
        assert!(recent > 50_000 / 4, "{recent} created in the last fifth");
    }

    #[test]
    fn every_language_of_the_first_names_has_surnames() {
        let missing: Vec<&str> = names::FIRST_NAMES
            .iter()
            .zip(&tables().surnames_of)
            .filter(|(_, surnames)| surnames.is_none())
            .map(|(group, _)| group.language)
            .collect();
        assert!(missing.is_empty(), "no surnames for {missing:?}");
    }

    #[test]
    fn every_name_has_letters_for_its_address_and_accents_fold_to_plain_letters() {
        for table in [&tables().first, &tables().last] {
            for name in &table.names {
                assert!(
                    !name.ascii.is_empty() && name.ascii.bytes().all(|b| b.is_ascii_lowercase()),
                    "{} gives {:?}",
                    name.written,
                    name.ascii
                );
            }
        }
        assert_eq!(ascii_letters("José García"), "josegarcia");
        assert_eq!(ascii_letters("Søren Weiß-O'Brien"), "sorenweissobrien");
        assert_eq!(ascii_letters("Łukasz Dvořák"), "lukaszdvorak");
    }
}
