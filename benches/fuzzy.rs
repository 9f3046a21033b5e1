//! Single-core cost of the typo-tolerant match: one thread scans every user's search keys
//! for one query, as a snapshot's `select` does, at 1,000,000 users.
//!
//! Run: `cargo bench --bench fuzzy`; after `--` add `--users 200000` for another size,
//! `--only bob` for one query, `--after-only` to leave the old match out (when profiling).
//! For each query shape it prints the median of five scans (wall clock, and time on a CPU,
//! which a machine busy with other work inflates less) beside the same scans through
//! the match as it was before the bit-parallel rewrite (module `before` below, kept as it
//! was so both sides are measured in the same run on the same data), the matches found
//! (both sides must agree on them and on their distances, or the bench stops), and the
//! resident bytes per user of either kind of keys.

use std::hint::black_box;
use std::time::Instant;

use roster::domain::search::{FuzzyQuery, Scratch, SearchKeys};

/// The service's allocator, so the bytes per user are those the service would hold.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

const RUNS: usize = 5;
const MEMORY_USERS: usize = 100_000;

/// The query shapes measured: short, transposed, two words, email-like, non-ASCII, the most
/// expensive the API accepts in practice (twenty characters at the largest distance), an
/// exact one, and one longer than the 64 characters the bit-parallel distance holds.
const QUERIES: [(&str, usize); 9] = [
    ("bob", 1),
    ("smiht", 2),
    ("jon smith", 2),
    ("jon.smith@example.con", 1),
    ("müller", 1),
    ("bbo", 1),
    ("christopher robinson", 10),
    ("smith", 0),
    (
        "jonathan christopher smithson-robinson of example.com, the third of his name",
        10,
    ),
];

/// The names of `benches/suite.rs`: "Smith" is one surname in 80, accents in both lists.
const FIRST: [&str; 40] = [
    "Jon", "John", "Joan", "Jan", "Jim", "Ann", "Anna", "Bob", "Bobby", "Carol", "Dave", "Eve", "Frank",
    "Grace", "Heidi", "Ivan", "Judy", "Mallory", "Oscar", "Peggy", "Rupert", "Sybil", "Trent", "Victor",
    "Walter", "Xena", "Yusuf", "Zoe", "Amara", "Björn", "Chloé", "Dmitri", "Elif", "Fatima", "Giulia",
    "Hiroshi", "Ines", "José", "Kwame", "Lars",
];
const LAST: [&str; 80] = [
    "Smith",
    "Smyth",
    "Jones",
    "Brown",
    "Taylor",
    "Wilson",
    "Davies",
    "Evans",
    "Thomas",
    "Johnson",
    "Roberts",
    "Walker",
    "Wright",
    "Robinson",
    "Thompson",
    "White",
    "Hughes",
    "Edwards",
    "Green",
    "Hall",
    "Wood",
    "Harris",
    "Lewis",
    "Martin",
    "Jackson",
    "Clarke",
    "Clark",
    "Turner",
    "Hill",
    "Scott",
    "Cooper",
    "Morris",
    "Ward",
    "Moore",
    "King",
    "Watson",
    "Baker",
    "Harrison",
    "Morgan",
    "Patel",
    "Young",
    "Allen",
    "Mitchell",
    "James",
    "Anderson",
    "Phillips",
    "Lee",
    "Bell",
    "Parker",
    "Davis",
    "Müller",
    "Schneider",
    "Fischer",
    "Weber",
    "Meyer",
    "Wagner",
    "Becker",
    "Schulz",
    "Hoffmann",
    "Koch",
    "Rossi",
    "Russo",
    "Ferrari",
    "Esposito",
    "Bianchi",
    "Romano",
    "Colombo",
    "Ricci",
    "Marino",
    "Greco",
    "García",
    "Fernández",
    "González",
    "Rodríguez",
    "López",
    "Martínez",
    "Sánchez",
    "Pérez",
    "Gómez",
    "Nakamura",
];

/// The `n`-th user, as in `benches/suite.rs`: same names, same emails, on every machine.
fn user(n: usize) -> (String, String) {
    let (first, last) = (
        FIRST[n % FIRST.len()],
        LAST[(n / FIRST.len() + n / 13) % LAST.len()],
    );
    let email = format!("{}.{}{n}@example.com", first.to_lowercase(), last.to_lowercase());
    (format!("{first} {last}"), email)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Resident bytes of this process (Linux; zero elsewhere).
fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// The keys of `users` built by `build`, and the resident bytes per user they added (the
/// vector that holds them included, as in a snapshot). The caller keeps the keys until
/// every measurement is done, so the next one cannot reuse their memory.
fn built<K>(users: &[(String, String)], build: impl Fn(&str, &str) -> K) -> (Vec<K>, f64) {
    let before = resident_bytes();
    let keys: Vec<K> = users.iter().map(|(name, email)| build(name, email)).collect();
    let after = resident_bytes();
    (keys, after.saturating_sub(before) as f64 / users.len() as f64)
}

/// Nanoseconds this thread has spent on a CPU (Linux's scheduler statistics; `None`
/// elsewhere). On a machine shared with other work the wall clock also counts the time
/// the scan waited for a core; this does not.
fn thread_cpu_ns() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    stat.split_whitespace().next()?.parse().ok()
}

/// What one scan took and found.
struct Scan {
    wall_ms: f64,
    cpu_ms: Option<f64>,
    /// The number of matches and the sum of their distances (a cheap check on every
    /// distance, not only on which users match).
    found: (usize, usize),
}

/// One scan of all `keys` by `scan`.
fn time_scan<K, S: Default>(keys: &[K], scan: impl Fn(&K, &mut S) -> Option<usize>) -> Scan {
    let mut scratch = S::default();
    let cpu = thread_cpu_ns();
    let started = Instant::now();
    let (mut matches, mut total) = (0usize, 0usize);
    for keys in keys {
        if let Some(distance) = scan(black_box(keys), &mut scratch) {
            matches += 1;
            total += distance;
        }
    }
    let wall_ms = started.elapsed().as_secs_f64() * 1e3;
    let cpu_ms = cpu
        .zip(thread_cpu_ns())
        .map(|(from, to)| (to - from) as f64 / 1e6);
    Scan {
        wall_ms,
        cpu_ms,
        found: (matches, total),
    }
}

/// The medians of `scans`' wall and CPU times, as table cells.
fn medians(scans: &[Scan]) -> (String, String) {
    if scans.is_empty() {
        return (String::new(), String::new());
    }
    let wall = median(scans.iter().map(|s| s.wall_ms).collect());
    let cpu: Option<Vec<f64>> = scans.iter().map(|s| s.cpu_ms).collect();
    (
        format!("{wall:.1}"),
        cpu.map_or("?".into(), |cpu| format!("{:.1}", median(cpu))),
    )
}

/// Resident bytes per user of one side's keys at [`MEMORY_USERS`] users, measured in a
/// fresh process of this bench so that neither side reuses memory the other freed.
fn bytes_per_user(side: &str) -> f64 {
    let output = std::process::Command::new(std::env::current_exe().expect("own path"))
        .args(["--users", &MEMORY_USERS.to_string(), "--bytes-per-user", side])
        .output()
        .expect("run the bench's memory mode");
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .unwrap_or(f64::NAN)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let users_wanted = args
        .iter()
        .position(|a| a == "--users")
        .and_then(|at| args.get(at + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000usize);
    let only = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|at| args.get(at + 1));
    let with_before = !args.iter().any(|a| a == "--after-only");

    if let Some(side) = args
        .iter()
        .position(|a| a == "--bytes-per-user")
        .and_then(|at| args.get(at + 1))
    {
        let users: Vec<(String, String)> = (0..users_wanted).map(user).collect();
        let bytes = match side.as_str() {
            "before" => built(&users, before::SearchKeys::new).1,
            _ => built(&users, SearchKeys::new).1,
        };
        println!("{bytes}");
        return;
    }
    let (old_bytes, new_bytes) = (bytes_per_user("before"), bytes_per_user("after"));

    // Both sides built in turn from the same users and both kept, so their layouts in
    // memory are alike.
    let users: Vec<(String, String)> = (0..users_wanted).map(user).collect();
    let old_keys = if with_before {
        built(&users, before::SearchKeys::new).0
    } else {
        Vec::new()
    };
    let (new_keys, _) = built(&users, SearchKeys::new);
    drop(users);

    println!("Fuzzy match, one thread, {users_wanted} users, median of {RUNS} scans");
    println!();
    println!(
        "| query | maxDistance | before (ms) | after (ms) | before, CPU (ms) | after, CPU (ms) | matches |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for (text, max) in QUERIES {
        if only.is_some_and(|only| only != text) {
            continue;
        }
        let old_query = before::FuzzyQuery::new(text, max);
        let new_query = FuzzyQuery::new(text, max);
        // Runs alternate between the sides, so a busy moment on the machine hits both.
        let (mut old_scans, mut new_scans) = (Vec::new(), Vec::new());
        for _ in 0..RUNS {
            if with_before {
                old_scans.push(time_scan(&old_keys, |keys, rows: &mut before::Rows| {
                    old_query.distance_with(keys, rows)
                }));
            }
            new_scans.push(time_scan(&new_keys, |keys, scratch: &mut Scratch| {
                new_query.distance_with(keys, scratch)
            }));
        }
        let found = new_scans[0].found;
        for scan in old_scans.iter().chain(&new_scans) {
            assert_eq!(scan.found, found, "{text:?} within {max}: the scans disagree");
        }
        let ((old_wall, old_cpu), (new_wall, new_cpu)) = (medians(&old_scans), medians(&new_scans));
        println!(
            "| `{text}` | {max} | {old_wall} | {new_wall} | {old_cpu} | {new_cpu} | {} |",
            found.0
        );
    }
    println!();
    println!(
        "Resident bytes per user's keys at {MEMORY_USERS} users: before {old_bytes:.0}, after {new_bytes:.0} \
         (struct alone: before {}, after {})",
        std::mem::size_of::<before::SearchKeys>(),
        std::mem::size_of::<SearchKeys>()
    );
}

/// The fuzzy match as it was before the bit-parallel rewrite, the yardstick the figures
/// above are compared with: as it was, less what the scan does not use, and with its rows
/// in `Rows` (the crate's `Scratch` keeps its fields to itself).
mod before {
    /// The table-based bounded distance.
    fn osa_within<T: PartialEq + Copy>(a: &[T], b: &[T], max: usize, rows: &mut Rows) -> Option<usize> {
        if a.len().abs_diff(b.len()) > max {
            return None;
        }
        if a.is_empty() || b.is_empty() {
            return Some(a.len().max(b.len()));
        }
        let m = b.len();
        let Rows {
            before, prev, cur, ..
        } = rows;
        before.clear();
        before.resize(m + 1, 0);
        prev.clear();
        prev.extend(0..=m);
        cur.clear();
        cur.resize(m + 1, 0);
        let mut prev_min = 0;
        for i in 1..=a.len() {
            cur[0] = i;
            let mut row_min = i;
            let ai = a[i - 1];
            for j in 1..=m {
                let cost = usize::from(ai != b[j - 1]);
                let mut best = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
                if i > 1 && j > 1 && ai == b[j - 2] && a[i - 2] == b[j - 1] {
                    best = best.min(before[j - 2] + 1);
                }
                cur[j] = best;
                row_min = row_min.min(best);
            }
            if row_min > max && prev_min > max {
                return None;
            }
            prev_min = row_min;
            std::mem::swap(before, prev);
            std::mem::swap(prev, cur);
        }
        let distance = prev[m];
        (distance <= max).then_some(distance)
    }

    /// The crate's `Scratch` as it was (its fields are private to the crate).
    #[derive(Default)]
    pub struct Rows {
        before: Vec<usize>,
        prev: Vec<usize>,
        cur: Vec<usize>,
        chars: Vec<char>,
    }

    #[derive(Clone, Copy, Debug)]
    struct Token {
        start: u32,
        end: u32,
        classes: u64,
    }

    #[derive(Clone, Debug)]
    pub struct SearchKeys {
        text: Box<str>,
        split: u32,
        name_classes: u64,
        email_classes: u64,
        tokens: Box<[Token]>,
    }

    impl SearchKeys {
        pub fn new(name: &str, email: &str) -> Self {
            let mut text = name.to_lowercase();
            let split = text.len();
            text.push_str(&email.to_lowercase());
            let mut tokens = Vec::new();
            for (offset, field) in [(0, &text[..split]), (split, &text[split..])] {
                let mut start = None;
                for (at, c) in field.char_indices().chain([(field.len(), ' ')]) {
                    match (c.is_alphanumeric() && at < field.len(), start) {
                        (true, None) => start = Some(at),
                        (false, Some(from)) => {
                            tokens.push(Token {
                                start: (offset + from) as u32,
                                end: (offset + at) as u32,
                                classes: char_classes(&field[from..at]),
                            });
                            start = None;
                        }
                        _ => {}
                    }
                }
            }
            Self {
                name_classes: char_classes(&text[..split]),
                email_classes: char_classes(&text[split..]),
                split: split as u32,
                text: text.into(),
                tokens: tokens.into(),
            }
        }

        fn name(&self) -> &str {
            &self.text[..self.split as usize]
        }

        fn email(&self) -> &str {
            &self.text[self.split as usize..]
        }

        fn token(&self, token: Token) -> &str {
            &self.text[token.start as usize..token.end as usize]
        }
    }

    fn char_classes(text: &str) -> u64 {
        text.chars().fold(0, |mask, c| mask | 1 << (u32::from(c) % 64))
    }

    fn class_lower_bound(query: u64, candidate: u64) -> usize {
        let missing = (query & !candidate).count_ones();
        let surplus = (candidate & !query).count_ones();
        missing.max(surplus) as usize
    }

    pub struct FuzzyQuery {
        text: String,
        chars: Vec<char>,
        classes: u64,
        ascii: bool,
        max_distance: usize,
    }

    impl FuzzyQuery {
        pub fn new(query: &str, max_distance: usize) -> Self {
            let text = query.to_lowercase();
            Self {
                chars: text.chars().collect(),
                classes: char_classes(&text),
                ascii: text.is_ascii(),
                text,
                max_distance,
            }
        }

        pub fn distance_with(&self, keys: &SearchKeys, scratch: &mut Rows) -> Option<usize> {
            let mut best: Option<usize> = None;
            let mut consider = |candidate: &str, classes: Option<u64>, scratch: &mut Rows| {
                let bound = best.map_or(self.max_distance, |b| b.saturating_sub(1));
                if best == Some(0) {
                    return;
                }
                if let Some(d) = self.distance_to(candidate, classes, bound, scratch) {
                    best = Some(d);
                }
            };
            consider(keys.name(), Some(keys.name_classes), scratch);
            consider(keys.email(), Some(keys.email_classes), scratch);
            let query_len = self.chars.len();
            for &span in keys.tokens.iter() {
                let token = keys.token(span);
                consider(token, Some(span.classes), scratch);
                let cut = if token.is_ascii() {
                    (token.len() > query_len).then_some(query_len)
                } else {
                    token.char_indices().nth(query_len).map(|(cut, _)| cut)
                };
                if let Some(cut) = cut {
                    consider(&token[..cut], None, scratch);
                }
            }
            best
        }

        fn distance_to(
            &self,
            candidate: &str,
            classes: Option<u64>,
            bound: usize,
            scratch: &mut Rows,
        ) -> Option<usize> {
            let classes = || classes.unwrap_or_else(|| char_classes(candidate));
            if self.ascii && candidate.is_ascii() {
                if self.text.len().abs_diff(candidate.len()) > bound
                    || class_lower_bound(self.classes, classes()) > bound
                {
                    return None;
                }
                return osa_within(self.text.as_bytes(), candidate.as_bytes(), bound, scratch);
            }
            let mut chars = std::mem::take(&mut scratch.chars);
            chars.clear();
            chars.extend(candidate.chars());
            let found = if self.chars.len().abs_diff(chars.len()) > bound
                || class_lower_bound(self.classes, classes()) > bound
            {
                None
            } else {
                osa_within(&self.chars, &chars, bound, scratch)
            };
            scratch.chars = chars;
            found
        }
    }
}
