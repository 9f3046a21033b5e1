//! Substring and typo-tolerant search.
//!
//! The fuzzy match compares the lowercased query with several candidates per user: the
//! whole lowercased name, the whole lowercased email, every token of either (maximal runs
//! of letters and digits) and every token's prefix of the query's length. The distance is
//! Levenshtein with adjacent transpositions (optimal string alignment), counted in
//! characters. That is why `Bbo` at distance 1 finds both `Bob` and `Bobby`.
//!
//! A search compares one query with every user, so the cost per user is what counts. Most
//! candidates are ruled out before any distance is computed: by their length, then by the
//! characters they lack or have in surplus (64 classes in a bit mask), then whole fields'
//! tokens at once by what the field as a whole lacks. What remains is measured with the
//! bit-parallel form of the table (one machine word per candidate character, for queries
//! of up to 64 characters), which gives a token's distance and its prefix's in one pass;
//! longer queries use the table itself.
//!
//! [`SearchKeys`] holds a user's lowercased fields and what the filters need, computed once
//! per snapshot, not once per query. The plain [`typo_distance`] is the reference the
//! tests hold the fast path to.

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

/// A user's name and email prepared for searching: both lowercased once, into one
/// allocation, with what lets most candidates be ruled out without reading them (lengths in
/// characters, character classes, the longest token, whether everything is ASCII). Tokens
/// are not stored, which halves the keys' memory: a scan finds them again, eight bytes at a
/// time. A snapshot holds one per user; at 100,000 users they take about 10 MB.
#[derive(Clone, Debug)]
pub struct SearchKeys {
    /// The lowercased name followed by the lowercased email.
    text: Box<str>,
    name_classes: u64,
    email_classes: u64,
    /// Where the email starts in `text`.
    split: u32,
    /// Lengths in characters, [`Count::MAX`] when too long to store (then counted again
    /// or, for the longest tokens, taken as unbounded).
    name_chars: Count,
    email_chars: Count,
    name_longest_token: Count,
    email_longest_token: Count,
    /// Whether `text` is all ASCII, so a scan can read bytes as characters.
    ascii: bool,
}

/// A stored character count; the largest value means "at least this many, count them".
type Count = u16;

fn stored_count(count: usize) -> Count {
    Count::try_from(count).unwrap_or(Count::MAX)
}

impl SearchKeys {
    /// Lowercases the fields and notes their lengths and classes once.
    pub fn new(name: &str, email: &str) -> Self {
        let mut text = name.to_lowercase();
        let split = text.len();
        text.push_str(&email.to_lowercase());
        let longest_token = |field: &str| {
            let longest = Scanned::<Unicode>::new(field).map(|token| token.chars).max();
            stored_count(longest.unwrap_or(0))
        };
        Self {
            name_classes: char_classes(&text[..split]),
            email_classes: char_classes(&text[split..]),
            name_chars: stored_count(text[..split].chars().count()),
            email_chars: stored_count(text[split..].chars().count()),
            name_longest_token: longest_token(&text[..split]),
            email_longest_token: longest_token(&text[split..]),
            ascii: text.is_ascii(),
            split: split as u32,
            text: text.into(),
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

    /// The name and the email, with what the scan knows of them without reading them.
    fn fields(&self) -> [Field<'_>; 2] {
        let (name, email) = (self.name(), self.email());
        let count = |stored: Count, text: &str| match stored {
            Count::MAX => text.chars().count(),
            short => usize::from(short),
        };
        let longest = |stored: Count| match stored {
            Count::MAX => usize::MAX,
            short => usize::from(short),
        };
        [
            Field {
                text: name,
                chars: count(self.name_chars, name),
                classes: self.name_classes,
                longest_token: longest(self.name_longest_token),
            },
            Field {
                text: email,
                chars: count(self.email_chars, email),
                classes: self.email_classes,
                longest_token: longest(self.email_longest_token),
            },
        ]
    }
}

/// A whole field of [`SearchKeys`]: its text, length in characters, classes, and a length
/// no token of it exceeds.
struct Field<'a> {
    text: &'a str,
    chars: usize,
    classes: u64,
    longest_token: usize,
}

/// Which of 64 classes a character falls in: letters and digits of ASCII one each, the
/// rest of ASCII in twelve more, everything else folded into the last sixteen.
///
/// A class the query has and a candidate lacks costs at least one edit, and one
/// substitution can fix at most one missing and one surplus class (a transposition none),
/// so the larger of the two counts is a lower bound on the distance. Any mapping keeps the
/// bound true; giving each letter and digit its own class keeps it tight for names and
/// emails, so most non-matches are ruled out without computing a distance.
fn class_of(c: char) -> u64 {
    match u32::from(c) {
        code @ 0..0x80 => 1 << (ASCII_CLASSES[code as usize] & 0x3f),
        code => 1 << (48 + code % 16),
    }
}

/// For each ASCII character: its class (low six bits) and whether it belongs to tokens
/// (0x80).
const ASCII_CLASSES: [u8; 128] = {
    let mut table = [0; 128];
    let mut byte = 0;
    while byte < 128 {
        let c = byte as u8 as char;
        let class = match c {
            'a'..='z' => byte - 'a' as usize,
            '0'..='9' => 26 + byte - '0' as usize,
            _ => 36 + byte % 12,
        };
        let token = if c.is_ascii_alphanumeric() { 0x80 } else { 0 };
        table[byte] = class as u8 | token;
        byte += 1;
    }
    table
};

/// Which of U+0080 to U+00FF are alphanumeric (bit `c - 0x80`): `ª µ º ² ³ ¹ ¼ ½ ¾` and the
/// letters from `À` to `ÿ` but for `×` and `÷`.
const LATIN1_ALPHANUMERIC: [u64; 2] = [0x762c_0400_0000_0000, 0xff7f_ffff_ff7f_ffff];

/// The classes only ASCII separators fall in (spaces, dots, `@`...): no token has them.
const SEPARATOR_CLASSES: u64 = 0xfff << 36;

fn char_classes(text: &str) -> u64 {
    text.chars().fold(0, |mask, c| mask | class_of(c))
}

/// Whether `mask` has at most `count` bits set. Bounds are small and the baseline x86-64
/// target has no popcount instruction, so clearing the lowest bit `count` times is
/// cheaper than counting (and takes the same number of steps for every user).
fn at_most_bits(mut mask: u64, count: usize) -> bool {
    for _ in 0..count.min(64) {
        mask &= mask.wrapping_sub(1);
    }
    mask == 0
}

/// Whether the class bound lets `candidate` be within `bound` of the query.
fn classes_within(query: u64, candidate: u64, bound: usize) -> bool {
    at_most_bits(query & !candidate, bound) && at_most_bits(candidate & !query, bound)
}

/// How a scan reads a user's text: as bytes when it is all ASCII (no decoding, one table
/// look-up per character), as characters otherwise. The scan is written once over this.
trait Alphabet {
    /// Whether the texts read this way are all ASCII: no multi-byte characters to track.
    const ASCII: bool;
    type Chars<'a>: Iterator<Item = char>;
    fn chars(text: &str) -> Self::Chars<'_>;
    /// The character's class bit (see [`class_of`]).
    fn class(c: char) -> u64;
    /// Whether the character belongs to tokens (is alphanumeric).
    fn in_token(c: char) -> bool;
    /// The character's length in bytes.
    fn width(c: char) -> usize;
}

struct Ascii;
struct Unicode;

impl Alphabet for Ascii {
    const ASCII: bool = true;
    type Chars<'a> = std::iter::Map<std::str::Bytes<'a>, fn(u8) -> char>;

    fn chars(text: &str) -> Self::Chars<'_> {
        text.bytes().map(char::from)
    }

    fn class(c: char) -> u64 {
        1 << (ASCII_CLASSES[usize::from(c as u8 & 0x7f)] & 0x3f)
    }

    fn in_token(c: char) -> bool {
        ASCII_CLASSES[usize::from(c as u8 & 0x7f)] & 0x80 != 0
    }

    fn width(_: char) -> usize {
        1
    }
}

impl Alphabet for Unicode {
    const ASCII: bool = false;
    type Chars<'a> = std::str::Chars<'a>;

    fn chars(text: &str) -> Self::Chars<'_> {
        text.chars()
    }

    fn class(c: char) -> u64 {
        class_of(c)
    }

    fn in_token(c: char) -> bool {
        match u32::from(c) {
            0..0x80 => Ascii::in_token(c),
            // Accented Latin letters are the common case beyond ASCII, and the general
            // look-up is a search through Unicode's tables.
            code @ 0x80..0x100 => LATIN1_ALPHANUMERIC[(code as usize - 0x80) / 64] >> (code % 64) & 1 != 0,
            _ => c.is_alphanumeric(),
        }
    }

    fn width(c: char) -> usize {
        c.len_utf8()
    }
}

/// The classes of `text`'s first `prefix_len` characters and of its first `stop`.
fn token_classes<A: Alphabet>(text: &str, prefix_len: usize, stop: usize) -> (u64, u64) {
    let mut chars = A::chars(text).take(stop);
    let prefix = chars
        .by_ref()
        .take(prefix_len)
        .fold(0, |mask, c| mask | A::class(c));
    (prefix, chars.fold(prefix, |mask, c| mask | A::class(c)))
}

/// A token of a field: a maximal run of letters and digits, and its length in characters.
struct Token<'a> {
    text: &'a str,
    chars: usize,
}

/// The tokens of a field of at most 64 bytes, from a mask of the bytes that belong to
/// tokens: found for eight bytes at a time, so there is no branch per byte (a branch at
/// each token's start and end is mispredicted about as often as it is taken).
struct Masked<'a> {
    field: &'a str,
    /// Bit `i` set when byte `i` belongs to a token; taken off token by token.
    tokens: u64,
    /// Bit `i` set when byte `i` continues a multi-byte character.
    continuations: u64,
}

/// One bit per byte of `word`, from the byte's top bit (the others must be clear).
fn top_bits(word: u64) -> u64 {
    // Each byte's top bit, moved down to bit 0 of its byte, lands in its own bit of the
    // top byte of the product; no two partial products overlap, so nothing carries.
    ((word >> 7) & 0x0101_0101_0101_0101).wrapping_mul(0x0102_0408_1020_4080) >> 56
}

/// The up to eight bytes of `bytes` from `at` as a little-endian word, zeros past the end;
/// without copying them to a buffer first (a copy of variable length is a call to
/// `memcpy`, and reading the buffer back stalls on the copy's byte-wide stores).
fn word_at(bytes: &[u8], at: usize) -> u64 {
    let rest = &bytes[at..];
    if let Some(word) = rest.first_chunk::<8>() {
        u64::from_le_bytes(*word)
    } else if let Some(last) = bytes.last_chunk::<8>() {
        // The last eight bytes end where `rest` does: drop those before it.
        u64::from_le_bytes(*last) >> (8 * (8 - rest.len()))
    } else {
        rest.iter()
            .rev()
            .fold(0, |word, &byte| (word << 8) | u64::from(byte))
    }
}

impl<'a> Masked<'a> {
    fn new<A: Alphabet>(field: &'a str) -> Self {
        const ONES: u64 = 0x0101_0101_0101_0101;
        const TOPS: u64 = 0x8080_8080_8080_8080;
        let (mut tokens, mut continuations, mut leads) = (0u64, 0u64, 0u64);
        let bytes = field.as_bytes();
        for at in (0..bytes.len()).step_by(8) {
            let word = word_at(bytes, at);
            // Without the top bits, adding to each byte cannot carry into the next; a
            // byte's top bit then says whether it reached a bound: `a` and past `z`, `0`
            // and past `9` (the text is lowercased, so ASCII letters are `a` to `z`).
            let low = word & !TOPS;
            let letter = low.wrapping_add(ONES * (0x80 - 0x61)) & !low.wrapping_add(ONES * (0x80 - 0x7b));
            let digit = low.wrapping_add(ONES * (0x80 - 0x30)) & !low.wrapping_add(ONES * (0x80 - 0x3a));
            tokens |= top_bits((letter | digit) & !word & TOPS) << at;
            if !A::ASCII {
                // Bytes `10xxxxxx` continue a character, `11xxxxxx` start one.
                continuations |= top_bits(word & !(word << 1) & TOPS) << at;
                leads |= top_bits(word & (word << 1) & TOPS) << at;
            }
        }
        // The few characters beyond ASCII are looked up one by one.
        while leads != 0 {
            let at = leads.trailing_zeros() as usize;
            leads &= leads - 1;
            if let Some(c) = field[at..].chars().next().filter(|&c| Unicode::in_token(c)) {
                tokens |= ((1u64 << c.len_utf8()) - 1) << at;
            }
        }
        Self {
            field,
            tokens,
            continuations,
        }
    }
}

impl<'a> Iterator for Masked<'a> {
    type Item = Token<'a>;

    fn next(&mut self) -> Option<Token<'a>> {
        if self.tokens == 0 {
            return None;
        }
        let start = self.tokens.trailing_zeros();
        let len = (!(self.tokens >> start)).trailing_zeros();
        // Adding the run's lowest bit carries through the run and clears it.
        self.tokens &= self.tokens.wrapping_add(1 << start);
        let (start, end) = (start as usize, (start + len) as usize);
        let mut chars = len as usize;
        if self.continuations != 0 {
            let mut continuations = self.continuations >> start;
            if len < 64 {
                continuations &= (1 << len) - 1;
            }
            while continuations != 0 {
                continuations &= continuations - 1;
                chars -= 1;
            }
        }
        Some(Token {
            text: &self.field[start..end],
            chars,
        })
    }
}

/// The tokens of a field, found by reading it character by character.
struct Scanned<'a, A: Alphabet> {
    field: &'a str,
    chars: A::Chars<'a>,
    at: usize,
}

impl<'a, A: Alphabet> Scanned<'a, A> {
    fn new(field: &'a str) -> Self {
        Self {
            field,
            chars: A::chars(field),
            at: 0,
        }
    }
}

impl<'a, A: Alphabet> Iterator for Scanned<'a, A> {
    type Item = Token<'a>;

    fn next(&mut self) -> Option<Token<'a>> {
        let (mut start, mut chars) = (self.at, 0);
        for c in self.chars.by_ref() {
            let end = self.at;
            self.at += A::width(c);
            if A::in_token(c) {
                if chars == 0 {
                    start = end;
                }
                chars += 1;
            } else if chars > 0 {
                return Some(Token {
                    text: &self.field[start..end],
                    chars,
                });
            }
        }
        (chars > 0).then(|| Token {
            text: &self.field[start..],
            chars,
        })
    }
}

/// The query as bit masks for the bit-parallel distance: for each character, the set of
/// query positions that hold it (bit `i` for position `i`).
#[derive(Clone)]
struct Pattern {
    /// Characters below U+0100 (ASCII and the Latin-1 accents), looked up directly.
    low: Box<[u64; 256]>,
    /// The query's other characters, few enough to look up one by one.
    high: Box<[(char, u64)]>,
    /// The query's length, and the bit of its last position.
    len: usize,
    last: u64,
}

impl std::fmt::Debug for Pattern {
    /// The table says nothing the query's text does not.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pattern")
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

impl Pattern {
    /// The pattern of `chars` when the bit-parallel form applies: 1 to 64 characters.
    fn new(chars: &[char]) -> Option<Self> {
        if chars.is_empty() || chars.len() > 64 {
            return None;
        }
        let mut low = Box::new([0u64; 256]);
        let mut high: Vec<(char, u64)> = Vec::new();
        for (at, &c) in chars.iter().enumerate() {
            let bit = 1u64 << at;
            match usize::try_from(u32::from(c)).ok().filter(|&code| code < 256) {
                Some(code) => low[code] |= bit,
                None => match high.iter_mut().find(|(known, _)| *known == c) {
                    Some((_, mask)) => *mask |= bit,
                    None => high.push((c, bit)),
                },
            }
        }
        Some(Self {
            low,
            high: high.into(),
            len: chars.len(),
            last: 1 << (chars.len() - 1),
        })
    }

    fn positions(&self, c: char) -> u64 {
        match self.low.get(c as usize) {
            Some(&mask) => mask,
            None => self
                .high
                .iter()
                .find(|(known, _)| *known == c)
                .map_or(0, |&(_, mask)| mask),
        }
    }

    /// The distances from the query to `candidate`'s first `checkpoint` characters and to
    /// its first `stop` characters (`usize::MAX` for a checkpoint past the end).
    ///
    /// Myers' bit-vector form of the table, one column per candidate character, with
    /// Hyyrö's extension to transpositions. Bit `i` of the vectors describes row `i + 1`
    /// of the column: `vp`/`vn` whether the cell is one more/one less than the cell
    /// above, `d0` whether it equals its upper-left neighbour. A swap of two adjacent
    /// characters makes a cell equal its upper-left neighbour when that neighbour was one
    /// more than its own (`!d0` of the previous column, one row up) and the two
    /// characters match crosswise (this and the previous column's positions).
    fn distances<A: Alphabet>(&self, candidate: &str, checkpoint: usize, stop: usize) -> (usize, usize) {
        let mut column = Column {
            vp: !0,
            vn: 0,
            d0: 0,
            previous: 0,
            distance: self.len,
        };
        let mut chars = A::chars(candidate).take(stop);
        let mut seen = 0;
        for c in chars.by_ref().take(checkpoint) {
            column.step(self.positions(c), self.last);
            seen += 1;
        }
        let at_checkpoint = if seen == checkpoint {
            column.distance
        } else {
            usize::MAX
        };
        for c in chars {
            column.step(self.positions(c), self.last);
        }
        (at_checkpoint, column.distance)
    }
}

/// One column of the table in bit-vector form, and the distance in its last row.
struct Column {
    vp: u64,
    vn: u64,
    d0: u64,
    /// The previous candidate character's query positions.
    previous: u64,
    distance: usize,
}

impl Column {
    /// Moves to the next column, for a candidate character found at query `positions`.
    #[inline(always)]
    fn step(&mut self, positions: u64, last: u64) {
        let Self {
            vp,
            vn,
            d0,
            previous,
            distance,
        } = self;
        let swapped = ((!*d0 & positions) << 1) & *previous;
        // Only matches start the carry chain: a swap's cell never lies on a run of `vp`
        // (its left neighbour one above the cell over it would make that neighbour's
        // column step by two, which no column of the table does).
        *d0 = (((positions & *vp).wrapping_add(*vp)) ^ *vp) | positions | swapped | *vn;
        let hp = *vn | !(*d0 | *vp);
        let hn = *vp & *d0;
        *distance += usize::from(hp & last != 0);
        *distance -= usize::from(hn & last != 0);
        let (hp, hn) = ((hp << 1) | 1, hn << 1);
        *vp = hn | !(*d0 | hp);
        *vn = hp & *d0;
        *previous = positions;
    }
}

/// A prepared typo-tolerant query.
#[derive(Clone, Debug)]
pub struct FuzzyQuery {
    chars: Vec<char>,
    classes: u64,
    max_distance: usize,
    /// The bit-parallel form, for queries of 1 to 64 characters; longer (or empty) ones
    /// use the table.
    pattern: Option<Pattern>,
}

/// The best distance found so far among a user's candidates, and the largest distance a
/// further candidate may have to improve on it.
struct Best {
    found: Option<usize>,
    bound: usize,
}

impl Best {
    fn new(max_distance: usize) -> Self {
        Self {
            found: None,
            bound: max_distance,
        }
    }

    /// Records `distance` when it improves on the best; true once nothing can (zero).
    fn offer(&mut self, distance: usize) -> bool {
        if distance <= self.bound {
            self.found = Some(distance);
            match distance.checked_sub(1) {
                Some(bound) => self.bound = bound,
                None => return true,
            }
        }
        false
    }
}

impl FuzzyQuery {
    /// Lowercases the query once and prepares its bit masks.
    pub fn new(query: &str, max_distance: usize) -> Self {
        let text = query.to_lowercase();
        let chars: Vec<char> = text.chars().collect();
        Self {
            pattern: Pattern::new(&chars),
            classes: char_classes(&text),
            chars,
            max_distance,
        }
    }

    /// The best (smallest) distance from the query to any of the user's candidates, when
    /// it is within the threshold. `scratch` is reused between calls.
    ///
    /// Every candidate is first held against what rules it out cheaply: its length, then
    /// its classes, against the best distance found so far (a candidate that cannot beat
    /// it is skipped). A token and its prefix of the query's length are measured in one
    /// pass, the prefix's distance read on the way.
    pub fn distance_with(&self, keys: &SearchKeys, scratch: &mut Scratch) -> Option<usize> {
        match &self.pattern {
            Some(pattern) if keys.ascii => self.best::<Ascii>(pattern, keys),
            Some(pattern) => self.best::<Unicode>(pattern, keys),
            None => self.best_by_table(keys, scratch),
        }
    }

    /// [`FuzzyQuery::distance_with`] with its own scratch rows.
    pub fn distance(&self, keys: &SearchKeys) -> Option<usize> {
        self.distance_with(keys, &mut Scratch::default())
    }

    fn best<A: Alphabet>(&self, pattern: &Pattern, keys: &SearchKeys) -> Option<usize> {
        let query_len = self.chars.len();
        let mut best = Best::new(self.max_distance);
        let fields = keys.fields();
        for field in &fields {
            if field.chars.abs_diff(query_len) <= best.bound
                && classes_within(self.classes, field.classes, best.bound)
                && best.offer(pattern.distances::<A>(field.text, field.chars, field.chars).1)
            {
                return best.found;
            }
        }
        for field in &fields {
            if !self.tokens_may_match(field, best.bound) {
                continue;
            }
            // One loop for each way of finding tokens, rather than one that asks which way
            // at every token.
            let done = match field.text.len() {
                0..=64 => self.best_token::<A>(pattern, Masked::new::<A>(field.text), &mut best),
                _ => self.best_token::<A>(pattern, Scanned::<A>::new(field.text), &mut best),
            };
            if done {
                break;
            }
        }
        best.found
    }

    /// Offers `best` the distance of each of `tokens` and of its prefix that may improve on
    /// it; true once nothing can.
    fn best_token<'a, A: Alphabet>(
        &self,
        pattern: &Pattern,
        tokens: impl Iterator<Item = Token<'a>>,
        best: &mut Best,
    ) -> bool {
        let query_len = self.chars.len();
        for token in tokens {
            let bound = best.bound;
            // The token is a candidate within `query_len ± bound` characters, its prefix
            // when the token is longer than the query.
            let whole = token.chars.abs_diff(query_len) <= bound;
            let prefix = token.chars > query_len;
            if !(whole || prefix) {
                continue;
            }
            let stop = if whole { token.chars } else { query_len };
            let (prefix_classes, classes) = token_classes::<A>(token.text, query_len, stop);
            let whole = whole && classes_within(self.classes, classes, bound);
            let prefix = prefix && classes_within(self.classes, prefix_classes, bound);
            if !(whole || prefix) {
                continue;
            }
            let stop = if whole { token.chars } else { query_len };
            let (to_prefix, to_whole) = pattern.distances::<A>(token.text, query_len, stop);
            let distance = match (whole, prefix) {
                (true, true) => to_prefix.min(to_whole),
                (true, false) => to_whole,
                _ => to_prefix,
            };
            if best.offer(distance) {
                return true;
            }
        }
        false
    }

    /// Whether a token of `field`, or its prefix, may be within `bound`, from what is
    /// known without reading the field: a token is a candidate within `query_len ± bound`
    /// characters and its prefix one when it is longer than the query, so fields with
    /// only shorter tokens have none; and a token lacks every class its field lacks, and
    /// every separator's, so when the query has more of those than `bound` none is close.
    fn tokens_may_match(&self, field: &Field<'_>, bound: usize) -> bool {
        field.longest_token >= self.chars.len().saturating_sub(bound)
            && at_most_bits(self.classes & (SEPARATOR_CLASSES | !field.classes), bound)
    }

    /// The same rule through the table, for queries the bit vectors cannot hold.
    fn best_by_table(&self, keys: &SearchKeys, scratch: &mut Scratch) -> Option<usize> {
        let query_len = self.chars.len();
        let mut best = Best::new(self.max_distance);
        let mut measure = |candidate: &str, chars: usize, classes: u64, best: &mut Best| {
            if chars.abs_diff(query_len) > best.bound || !classes_within(self.classes, classes, best.bound) {
                return false;
            }
            let mut symbols = std::mem::take(&mut scratch.chars);
            symbols.clear();
            symbols.extend(candidate.chars().take(chars));
            let found = osa_within(&self.chars, &symbols, best.bound, scratch);
            scratch.chars = symbols;
            found.is_some_and(|distance| best.offer(distance))
        };
        let fields = keys.fields();
        for field in &fields {
            if measure(field.text, field.chars, field.classes, &mut best) {
                return best.found;
            }
        }
        for field in &fields {
            if !self.tokens_may_match(field, best.bound) {
                continue;
            }
            for token in Scanned::<Unicode>::new(field.text) {
                let (prefix_classes, classes) = token_classes::<Unicode>(token.text, query_len, token.chars);
                if measure(token.text, token.chars, classes, &mut best)
                    || token.chars > query_len && measure(token.text, query_len, prefix_classes, &mut best)
                {
                    return best.found;
                }
            }
        }
        best.found
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

    /// The fuzzy rule written as plainly as possible, to compare against.
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

    /// A small deterministic generator (xorshift), so the comparisons cover many cases
    /// without a dependency and fail the same way on every run.
    struct Random(u64);

    impl Random {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % n as u64) as usize
        }

        fn chance(&mut self, percent: usize) -> bool {
            self.below(100) < percent
        }

        /// Characters of every kind the rule must count as one: ASCII (upper case too),
        /// Latin-1 accents, others beyond U+00FF, CJK, `İ` (which lowercases to two), and
        /// the separators of names and emails. Few letters, so near matches are common.
        fn string(&mut self, len: usize, ascii_only: bool) -> String {
            const ASCII: [char; 12] = ['a', 'b', 'o', 'x', 'B', 'O', '1', ' ', ' ', '.', '@', '-'];
            const OTHERS: [char; 8] = ['é', 'ü', 'Ö', 'ß', 'ł', 'İ', '日', '本'];
            (0..len)
                .map(|_| match self.below(if ascii_only { 12 } else { 20 }) {
                    at @ 0..12 => ASCII[at],
                    at => OTHERS[at - 12],
                })
                .collect()
        }

        /// A length for a random string: mostly short, as names are, sometimes beyond the
        /// 64 characters the bit vectors hold.
        fn length(&mut self) -> usize {
            if self.chance(20) {
                40 + self.below(41)
            } else {
                self.below(13)
            }
        }

        /// `text` after up to `edits` random insertions, deletions, substitutions and swaps.
        fn edited(&mut self, text: &str, edits: usize, ascii_only: bool) -> String {
            let mut chars: Vec<char> = text.chars().collect();
            for _ in 0..self.below(edits + 1) {
                let at = self.below(chars.len() + 1);
                let other = self.string(1, ascii_only).chars().next().unwrap_or('a');
                match self.below(4) {
                    0 => chars.insert(at, other),
                    1 if at < chars.len() => {
                        chars.remove(at);
                    }
                    2 if at < chars.len() => chars[at] = other,
                    _ if at + 1 < chars.len() => chars.swap(at, at + 1),
                    _ => chars.push(other),
                }
            }
            chars.into_iter().collect()
        }
    }

    #[test]
    fn the_fast_fuzzy_match_agrees_with_the_plain_rule_on_random_users() {
        let mut random = Random(0x2545_F491_4F6C_DD1D);
        let (mut short_found, mut long_found) = (0, 0);
        for _ in 0..12_000 {
            let ascii_only = random.chance(40);
            let (name_len, email_len) = (random.length(), random.length());
            let name = random.string(name_len, ascii_only);
            let email = match random.below(3) {
                0 => random.string(email_len, ascii_only),
                _ => {
                    let lens = [random.below(8), random.below(8), random.below(6)];
                    let [first, last, domain] = lens.map(|len| random.string(len, ascii_only));
                    format!("{first}.{last}@{domain}.example")
                }
            };
            // A query made from one of the user's candidates (whole field, token or
            // prefix) with a few edits, or an unrelated one, of 0 to 70 characters.
            let lowered = format!("{} {}", name.to_lowercase(), email.to_lowercase());
            let tokens: Vec<&str> = lowered
                .split(|c: char| !c.is_alphanumeric())
                .filter(|t| !t.is_empty())
                .collect();
            let source = match random.below(5) {
                0 => name.clone(),
                1 => email.clone(),
                2 if !tokens.is_empty() => {
                    let token = tokens[random.below(tokens.len())];
                    let len = random.below(token.chars().count() + 1);
                    token.chars().take(len).collect()
                }
                3 => {
                    let len = 50 + random.below(21);
                    format!("{name}{email}").chars().take(len).collect()
                }
                _ => {
                    let len = random.below(71);
                    random.string(len, ascii_only)
                }
            };
            let query: String = random.edited(&source, 4, ascii_only).chars().take(70).collect();
            let keys = SearchKeys::new(&name, &email);
            let plain = plain_fuzzy(&query, &name, &email, usize::MAX);
            for max in 0..=10 {
                let expected = plain.filter(|&d| d <= max);
                assert_eq!(
                    FuzzyQuery::new(&query, max).distance(&keys),
                    expected,
                    "{query:?} against {name:?} <{email}> within {max}"
                );
                if max == 10 && expected.is_some() {
                    match query.to_lowercase().chars().count() {
                        0..=64 => short_found += 1,
                        _ => long_found += 1,
                    }
                }
            }
        }
        // Matches on both sides of the 64 characters the bit vectors hold, not only misses.
        assert!(
            short_found > 3000 && long_found > 100,
            "{short_found} and {long_found} found"
        );
    }

    #[test]
    fn the_bit_parallel_distance_agrees_with_the_table_on_random_strings() {
        let mut random = Random(0x9E37_79B9_7F4A_7C15);
        for _ in 0..6_000 {
            let ascii_only = random.chance(30);
            let query_len = 1 + random.below(64);
            let query = random.string(query_len, ascii_only);
            let query: Vec<char> = query.chars().take(64).collect();
            let text: String = random.edited(&query.iter().collect::<String>(), 12, ascii_only);
            let text: String = match random.below(3) {
                0 => {
                    let len = random.below(81);
                    random.string(len, ascii_only)
                }
                _ => text,
            };
            let pattern = Pattern::new(&query).expect("1 to 64 characters");
            let len = text.chars().count();
            let (checkpoint, stop) = (random.below(len + 2), random.below(len + 2));
            let prefix = |n: usize| -> String { text.chars().take(n).collect() };
            let query: String = query.iter().collect();
            let expected_at_checkpoint = if checkpoint <= stop.min(len) {
                typo_distance(&query, &prefix(checkpoint))
            } else {
                usize::MAX
            };
            let expected = (expected_at_checkpoint, typo_distance(&query, &prefix(stop)));
            assert_eq!(
                pattern.distances::<Unicode>(&text, checkpoint, stop),
                expected,
                "{query:?} vs {text:?}"
            );
            if text.is_ascii() {
                assert_eq!(pattern.distances::<Ascii>(&text, checkpoint, stop), expected);
            }
        }
    }

    #[test]
    fn the_latin1_table_agrees_with_unicode_on_what_is_alphanumeric() {
        for c in ('\u{80}'..='\u{ff}').chain(['a', 'Z', '0', ' ', '.', 'ł', '日', '\u{2000}']) {
            assert_eq!(Unicode::in_token(c), c.is_alphanumeric(), "{c:?}");
        }
    }

    #[test]
    fn tokens_found_by_mask_are_those_found_by_reading_the_field() {
        let mut random = Random(0x6A09_E667_F3BC_C908);
        for _ in 0..5_000 {
            let ascii_only = random.chance(40);
            let len = random.below(65);
            let field: String = random.string(len, ascii_only).to_lowercase();
            // Cut to at most 64 bytes on a character boundary, keeping a field of exactly
            // 64 bytes whenever one comes up (tokens that end on the mask's last bit).
            let field: String = field
                .char_indices()
                .take_while(|&(at, c)| at + c.len_utf8() <= 64)
                .map(|(_, c)| c)
                .collect();
            let listed = |tokens: &mut dyn Iterator<Item = Token<'_>>| -> Vec<(String, usize)> {
                tokens.map(|t| (t.text.to_owned(), t.chars)).collect()
            };
            let expected = listed(&mut Scanned::<Unicode>::new(&field));
            assert_eq!(listed(&mut Masked::new::<Unicode>(&field)), expected, "{field:?}");
            if field.is_ascii() {
                assert_eq!(listed(&mut Masked::new::<Ascii>(&field)), expected, "{field:?}");
                assert_eq!(listed(&mut Scanned::<Ascii>::new(&field)), expected, "{field:?}");
            }
        }
        let full = "a".repeat(63) + "b";
        assert_eq!(
            Masked::new::<Ascii>(&full).map(|t| t.chars).collect::<Vec<_>>(),
            [64]
        );
    }

    #[test]
    fn a_bound_beyond_any_distance_keeps_every_user_and_the_best_distance() {
        let keys = SearchKeys::new("Jon Smith", "jsmith@example.com");
        for query in [
            "",
            "bob",
            "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz",
        ] {
            assert_eq!(
                FuzzyQuery::new(query, usize::MAX).distance(&keys),
                plain_fuzzy(query, "Jon Smith", "jsmith@example.com", usize::MAX),
                "{query:?}"
            );
        }
    }

    #[test]
    fn fuzzy_counts_fields_and_tokens_too_long_for_their_stored_lengths() {
        let long = "a".repeat(70_000);
        let name = format!("{long} bob");
        let keys = SearchKeys::new(&name, &format!("{long}@example.com"));
        for (query, max) in [("bob", 0), ("aaab", 1), ("ab", 1), ("zz", 2)] {
            assert_eq!(
                FuzzyQuery::new(query, max).distance(&keys),
                plain_fuzzy(query, &name, &format!("{long}@example.com"), max),
                "{query:?} within {max}"
            );
        }
    }

    #[test]
    fn bounded_distance_agrees_with_the_plain_one_on_random_strings() {
        let mut random = Random(0xD1B5_4A32_D192_ED03);
        for _ in 0..3_000 {
            let (a_len, b_len) = (random.length(), random.length());
            let (a, b) = (random.string(a_len, false), random.string(b_len, false));
            let plain = typo_distance(&a, &b);
            for max in 0..=10 {
                let bounded = typo_distance_within(&chars(&a), &chars(&b), max);
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
    fn keys_and_queries_can_be_shared_by_threads_scanning_in_parallel() {
        fn shared<T: Send + Sync + Clone>() {}
        fn owned<T: Send + Default>() {}
        shared::<SearchKeys>();
        shared::<FuzzyQuery>();
        owned::<Scratch>();
    }

    #[test]
    fn substring_search_ignores_case() {
        let keys = SearchKeys::new("Alice Liddell", "ALICE@wonder.land");
        assert!(keys.contains("liddell"));
        assert!(keys.contains("alice@"));
        assert!(!keys.contains("bob"));
    }
}
