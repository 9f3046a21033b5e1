//! Substring and typo-tolerant search (SPEC §4.5, §4.6).
//!
//! The fuzzy match compares the lowercased query with several candidates per user: the
//! whole lowercased name, the whole lowercased email, every token of either (maximal runs
//! of letters and digits) and every token's prefix of the query's length. The distance is
//! Levenshtein with adjacent transpositions (optimal string alignment), counted in
//! characters. That is why `Bbo` at distance 1 finds both `Bob` and `Bobby`.
//!
//! [`SearchKeys`] holds a user's lowercased fields and tokens so they are computed once per
//! snapshot, not once per query.

/// Plain Levenshtein distance (insertions, deletions, substitutions), in characters.
pub fn levenshtein(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// Optimal string alignment distance: Levenshtein plus the swap of two adjacent
/// characters as one edit, in characters. This is the plain reference form; searches use
/// the bounded [`typo_distance_within`].
pub fn typo_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let (n, m) = (a.len(), b.len());
    let mut d = vec![vec![0usize; m + 1]; n + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    d[0] = (0..=m).collect();
    for i in 1..=n {
        for j in 1..=m {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1).min(d[i][j - 1] + 1).min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[n][m]
}

/// Reusable rows for [`osa_within`], so a search allocates once, not once per candidate.
#[derive(Debug, Default)]
pub struct Scratch {
    before: Vec<usize>,
    prev: Vec<usize>,
    cur: Vec<usize>,
    chars: Vec<char>,
}

/// The optimal string alignment distance between `a` and `b` when it is at most `max`.
pub fn typo_distance_within(a: &[char], b: &[char], max: usize) -> Option<usize> {
    osa_within(a, b, max, &mut Scratch::default())
}

/// [`typo_distance_within`] over any symbols (bytes for ASCII, chars otherwise), using
/// `scratch` for its rows.
///
/// Gives up as soon as the answer must exceed `max`: first on the length difference, then
/// when two consecutive rows of the table are entirely above `max` (a transposition reaches
/// back two rows, so one row over the bound is not yet proof).
pub fn osa_within<T: PartialEq + Copy>(a: &[T], b: &[T], max: usize, scratch: &mut Scratch) -> Option<usize> {
    if a.len().abs_diff(b.len()) > max {
        return None;
    }
    if a.is_empty() || b.is_empty() {
        return Some(a.len().max(b.len()));
    }
    let m = b.len();
    let Scratch {
        before, prev, cur, ..
    } = scratch;
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

/// A token: a byte range of the lowercased text, with its character classes.
#[derive(Clone, Copy, Debug)]
struct Token {
    start: u32,
    end: u32,
    classes: u64,
}

/// A user's name and email prepared for searching: lowercased once (both in one
/// allocation), tokens as ranges with their character classes (one more allocation). A
/// snapshot holds one per user; at 100,000 users they take about 25 MB.
#[derive(Clone, Debug)]
pub struct SearchKeys {
    /// The lowercased name followed by the lowercased email.
    text: Box<str>,
    /// Where the email starts in `text`.
    split: u32,
    name_classes: u64,
    email_classes: u64,
    tokens: Box<[Token]>,
}

impl SearchKeys {
    /// Lowercases and tokenises a user's fields once.
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

    /// The lowercased name.
    pub fn name(&self) -> &str {
        &self.text[..self.split as usize]
    }

    /// The lowercased email.
    pub fn email(&self) -> &str {
        &self.text[self.split as usize..]
    }

    /// Whether the lowercased `needle` occurs in the name or the email.
    pub fn contains(&self, needle: &str) -> bool {
        self.name().contains(needle) || self.email().contains(needle)
    }

    fn token(&self, token: Token) -> &str {
        &self.text[token.start as usize..token.end as usize]
    }
}

/// A 64-bit summary of which characters a string holds (each character hashed to a bit).
///
/// A character class the query has and a candidate lacks costs at least one edit, and one
/// substitution can fix at most one missing and one surplus class, so the larger of the two
/// counts is a lower bound on the distance. Hash collisions only lower the bound, so the
/// filter never rejects a match; it skips the table for most non-matches.
fn char_classes(text: &str) -> u64 {
    text.chars().fold(0, |mask, c| mask | 1 << (u32::from(c) % 64))
}

fn class_lower_bound(query: u64, candidate: u64) -> usize {
    let missing = (query & !candidate).count_ones();
    let surplus = (candidate & !query).count_ones();
    missing.max(surplus) as usize
}

/// A prepared typo-tolerant query.
#[derive(Clone, Debug)]
pub struct FuzzyQuery {
    text: String,
    chars: Vec<char>,
    classes: u64,
    ascii: bool,
    max_distance: usize,
}

impl FuzzyQuery {
    /// Lowercases the query once.
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

    /// The best (smallest) distance from the query to any of the user's candidates, when
    /// it is within the threshold. `scratch` is reused between calls.
    pub fn distance_with(&self, keys: &SearchKeys, scratch: &mut Scratch) -> Option<usize> {
        let mut best: Option<usize> = None;
        let mut consider = |candidate: &str, classes: Option<u64>, scratch: &mut Scratch| {
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
            // The token's prefix of the query's length, when the token is longer.
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

    /// [`FuzzyQuery::distance_with`] with its own scratch rows.
    pub fn distance(&self, keys: &SearchKeys) -> Option<usize> {
        self.distance_with(keys, &mut Scratch::default())
    }

    fn distance_to(
        &self,
        candidate: &str,
        classes: Option<u64>,
        bound: usize,
        scratch: &mut Scratch,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn chars(s: &str) -> Vec<char> {
        s.chars().collect()
    }

    #[test]
    fn levenshtein_matches_known_values() {
        assert_eq!(levenshtein("kitten", "sitting"), 3);
        assert_eq!(levenshtein("", ""), 0);
        assert_eq!(levenshtein("", "abc"), 3);
        assert_eq!(levenshtein("abc", ""), 3);
        assert_eq!(levenshtein("flaw", "lawn"), 2);
        assert_eq!(levenshtein("bbo", "bob"), 2);
    }

    #[test]
    fn levenshtein_counts_characters_not_bytes() {
        assert_eq!(levenshtein("é", "e"), 1);
        assert_eq!(levenshtein("zoë", "zoe"), 1);
        assert_eq!(levenshtein("日本語", "日本"), 1);
    }

    #[test]
    fn typo_distance_counts_an_adjacent_swap_as_one_edit() {
        assert_eq!(typo_distance("bbo", "bob"), 1);
        assert_eq!(typo_distance("ab", "ba"), 1);
        assert_eq!(typo_distance("ca", "abc"), 3);
        assert_eq!(typo_distance("kitten", "sitting"), 3);
        assert_eq!(typo_distance("ëa", "aë"), 1);
    }

    #[test]
    fn bounded_distance_gives_up_beyond_the_bound() {
        assert_eq!(typo_distance_within(&chars("bbo"), &chars("bob"), 1), Some(1));
        assert_eq!(typo_distance_within(&chars("kitten"), &chars("sitting"), 2), None);
        assert_eq!(
            typo_distance_within(&chars("kitten"), &chars("sitting"), 3),
            Some(3)
        );
        assert_eq!(typo_distance_within(&chars("a"), &chars("abcdef"), 2), None);
        assert_eq!(typo_distance_within(&chars(""), &chars("ab"), 2), Some(2));
    }

    /// The fuzzy rule of SPEC §4.6 written as plainly as possible, to compare against.
    fn plain_fuzzy(query: &str, name: &str, email: &str, max: usize) -> Option<usize> {
        let query = query.to_lowercase();
        let query_len = query.chars().count();
        let (name, email) = (name.to_lowercase(), email.to_lowercase());
        let mut candidates = vec![name.clone(), email.clone()];
        for field in [&name, &email] {
            for token in field
                .split(|c: char| !c.is_alphanumeric())
                .filter(|t| !t.is_empty())
            {
                candidates.push(token.to_owned());
                candidates.push(token.chars().take(query_len).collect());
            }
        }
        candidates
            .iter()
            .map(|c| typo_distance(&query, c))
            .min()
            .filter(|&d| d <= max)
    }

    #[test]
    fn the_fast_fuzzy_match_agrees_with_the_plain_rule_on_random_users() {
        let words = random_strings(0x2545_F491_4F6C_DD1D, 400);
        for chunk in words.chunks(4) {
            let [query, first, last, domain] = chunk else {
                continue;
            };
            let name = format!("{first} {last}");
            let email = format!("{first}.{last}@{domain}.example");
            let keys = SearchKeys::new(&name, &email);
            for max in 0..=3 {
                assert_eq!(
                    FuzzyQuery::new(query, max).distance(&keys),
                    plain_fuzzy(query, &name, &email, max),
                    "{query:?} against {name:?} <{email}> within {max}"
                );
            }
        }
    }

    /// A small deterministic generator so the comparison covers many strings without a
    /// dependency; the alphabet mixes ASCII, accents and CJK so characters are not bytes.
    fn random_strings(seed: u64, count: usize) -> Vec<String> {
        let alphabet = [
            'a', 'b', 'c', 'é', 'ß', '日', ' ', '-', 'B', 'Ö', 'x', 'y', 'z', '.',
        ];
        let mut state = seed;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        (0..count)
            .map(|_| {
                let len = (next() % 8) as usize;
                (0..len)
                    .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                    .collect()
            })
            .collect()
    }

    #[test]
    fn bounded_distance_agrees_with_the_plain_one_on_random_strings() {
        let words = random_strings(0x9E37_79B9_7F4A_7C15, 300);
        for pair in words.windows(2) {
            let (a, b) = (&pair[0], &pair[1]);
            let plain = typo_distance(a, b);
            for max in 0..=4 {
                let bounded = typo_distance_within(&chars(a), &chars(b), max);
                let expected = (plain <= max).then_some(plain);
                assert_eq!(bounded, expected, "{a:?} vs {b:?} within {max}");
            }
        }
    }

    #[test]
    fn fuzzy_matches_tokens_and_token_prefixes() {
        let bob = SearchKeys::new("Bob", "bob@example.com");
        let bobby = SearchKeys::new("Bobby", "bobby@example.com");
        let carol = SearchKeys::new("Carol", "carol@example.com");
        let query = FuzzyQuery::new("Bbo", 1);
        assert_eq!(query.distance(&bob), Some(1));
        assert_eq!(query.distance(&bobby), Some(1));
        assert_eq!(query.distance(&carol), None);
    }

    #[test]
    fn fuzzy_reports_the_best_candidate() {
        let keys = SearchKeys::new("Jon Smith", "jsmith@example.com");
        assert_eq!(FuzzyQuery::new("jon smith", 2).distance(&keys), Some(0));
        assert_eq!(FuzzyQuery::new("smiht", 2).distance(&keys), Some(1));
        assert_eq!(FuzzyQuery::new("EXAMPLE", 0).distance(&keys), Some(0));
        assert_eq!(FuzzyQuery::new("jsmith@example.con", 1).distance(&keys), Some(1));
        assert_eq!(FuzzyQuery::new("zzzzz", 2).distance(&keys), None);
    }

    #[test]
    fn substring_search_ignores_case() {
        let keys = SearchKeys::new("Alice Liddell", "ALICE@wonder.land");
        assert!(keys.contains("liddell"));
        assert!(keys.contains("alice@"));
        assert!(!keys.contains("bob"));
    }
}
