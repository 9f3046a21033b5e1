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

/// The optimal string alignment distance between `a` and `b` when it is at most `max`.
///
/// Gives up as soon as the answer must exceed `max`: first on the length difference, then
/// when a whole row of the table is above `max` (values along any alignment never shrink
/// by more than the transposition allows, so a row above the bound ends the search).
pub fn typo_distance_within(a: &[char], b: &[char], max: usize) -> Option<usize> {
    if a.len().abs_diff(b.len()) > max {
        return None;
    }
    if a.is_empty() || b.is_empty() {
        return Some(a.len().max(b.len()));
    }
    let m = b.len();
    let mut before: Vec<usize> = vec![0; m + 1];
    let mut prev: Vec<usize> = (0..=m).collect();
    let mut cur: Vec<usize> = vec![0; m + 1];
    for i in 1..=a.len() {
        cur[0] = i;
        let mut row_min = cur[0];
        for j in 1..=m {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(before[j - 2] + 1);
            }
            cur[j] = best;
            row_min = row_min.min(best);
        }
        // A transposition reaches back two rows, so stop only when two rows are over.
        if row_min > max && prev.iter().min().is_some_and(|&p| p > max) {
            return None;
        }
        std::mem::swap(&mut before, &mut prev);
        std::mem::swap(&mut prev, &mut cur);
    }
    let distance = prev[m];
    (distance <= max).then_some(distance)
}

/// A user's name and email prepared for searching.
#[derive(Clone, Debug)]
pub struct SearchKeys {
    name: String,
    email: String,
    /// The whole name, the whole email, then each token of either, as characters.
    candidates: Vec<Vec<char>>,
    /// How many leading entries of `candidates` are whole fields rather than tokens.
    whole_fields: usize,
}

impl SearchKeys {
    /// Lowercases and tokenises a user's fields once.
    pub fn new(name: &str, email: &str) -> Self {
        let name = name.to_lowercase();
        let email = email.to_lowercase();
        let mut candidates = vec![name.chars().collect(), email.chars().collect()];
        for field in [&name, &email] {
            for token in field
                .split(|c: char| !c.is_alphanumeric())
                .filter(|t| !t.is_empty())
            {
                candidates.push(token.chars().collect());
            }
        }
        Self {
            name,
            email,
            candidates,
            whole_fields: 2,
        }
    }

    /// Whether the lowercased `needle` occurs in the name or the email.
    pub fn contains(&self, needle: &str) -> bool {
        self.name.contains(needle) || self.email.contains(needle)
    }
}

/// A prepared typo-tolerant query.
#[derive(Clone, Debug)]
pub struct FuzzyQuery {
    query: Vec<char>,
    max_distance: usize,
}

impl FuzzyQuery {
    /// Lowercases the query once.
    pub fn new(query: &str, max_distance: usize) -> Self {
        Self {
            query: query.to_lowercase().chars().collect(),
            max_distance,
        }
    }

    /// The best (smallest) distance from the query to any of the user's candidates, when
    /// it is within the threshold.
    pub fn distance(&self, keys: &SearchKeys) -> Option<usize> {
        let q = &self.query;
        let mut best: Option<usize> = None;
        for (at, candidate) in keys.candidates.iter().enumerate() {
            let bound = best.map_or(self.max_distance, |b| b.saturating_sub(1));
            if best.is_some() && best == Some(0) {
                break;
            }
            if let Some(d) = typo_distance_within(q, candidate, bound) {
                best = Some(best.map_or(d, |b| b.min(d)));
            }
            let is_token = at >= keys.whole_fields;
            if is_token && candidate.len() > q.len() {
                let bound = best.map_or(self.max_distance, |b| b.saturating_sub(1));
                if best != Some(0)
                    && let Some(d) = typo_distance_within(q, &candidate[..q.len()], bound)
                {
                    best = Some(best.map_or(d, |b| b.min(d)));
                }
            }
        }
        best
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

    /// A small deterministic generator so the comparison covers many strings without a
    /// dependency; the alphabet mixes ASCII, accents and CJK so characters are not bytes.
    fn random_strings(seed: u64, count: usize) -> Vec<String> {
        let alphabet = ['a', 'b', 'c', 'é', 'ß', '日', ' ', '-'];
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
                (0..len).map(|_| alphabet[(next() % 8) as usize]).collect()
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
