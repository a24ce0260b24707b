//! Python's `html.unescape`, exactly: the same reference grammar, the complete
//! HTML5 entity table (`html.entities.html5`), the longest-prefix rule for
//! names without `;`, and the invalid-charref fix-ups.
//!
//! Grammar (Python's `re`): `&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)`.

use crate::tables;

/// Python's `html.unescape(s)`.
pub fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    unescape_into(s, &mut out);
    out
}

/// Appends `html.unescape(s)` to `out`.
pub fn unescape_into(s: &str, out: &mut String) {
    let b = s.as_bytes();
    let mut copied = 0;
    let mut pos = 0;
    while let Some(off) = memchr_amp(&b[pos..]) {
        let amp = pos + off;
        match reference_at(s, amp + 1) {
            Some((end, replacement)) => {
                out.push_str(&s[copied..amp]);
                replacement.push_to(out);
                copied = end;
                pos = end;
            }
            None => pos = amp + 1,
        }
    }
    out.push_str(&s[copied..]);
}

fn memchr_amp(b: &[u8]) -> Option<usize> {
    b.iter().position(|&c| c == b'&')
}

/// What a matched reference becomes.
enum Replacement<'a> {
    Char(char),
    Nothing,
    Text(&'static str, &'a str),
}

impl Replacement<'_> {
    fn push_to(&self, out: &mut String) {
        match self {
            Replacement::Char(c) => out.push(*c),
            Replacement::Nothing => {}
            Replacement::Text(a, b) => {
                out.push_str(a);
                out.push_str(b);
            }
        }
    }
}

/// Matches the reference grammar at byte `start` (just after `&`); returns
/// the end of the match and its replacement.
fn reference_at(s: &str, start: usize) -> Option<(usize, Replacement<'_>)> {
    let b = s.as_bytes();
    if b.get(start) == Some(&b'#') {
        let (digits_start, radix) = match b.get(start + 1) {
            Some(b'x' | b'X') if b.get(start + 2).is_some_and(u8::is_ascii_hexdigit) => {
                (start + 2, 16)
            }
            Some(c) if c.is_ascii_digit() => (start + 1, 10),
            _ => return None,
        };
        let mut end = digits_start;
        let mut num: u32 = 0;
        while let Some(&c) = b.get(end) {
            let d = match (radix, c) {
                (10, b'0'..=b'9') => c - b'0',
                (16, _) if c.is_ascii_hexdigit() => (c as char).to_digit(16).unwrap_or(0) as u8,
                _ => break,
            };
            num = num.saturating_mul(radix).saturating_add(u32::from(d));
            end += 1;
        }
        if b.get(end) == Some(&b';') {
            end += 1;
        }
        return Some((end, numeric(num)));
    }
    // Named: 1..=32 characters outside [\t\n\f <&#;], then an optional ';'.
    let mut end = start;
    for (n, c) in s[start..].chars().enumerate() {
        if n == 32 || matches!(c, '\t' | '\n' | '\x0c' | ' ' | '<' | '&' | '#' | ';') {
            break;
        }
        end += c.len_utf8();
    }
    if end == start {
        return None;
    }
    if b.get(end) == Some(&b';') {
        end += 1;
    }
    Some((end, named(&s[start..end])))
}

fn numeric(num: u32) -> Replacement<'static> {
    if let Some(c) = tables::lookup(&tables::INVALID_CHARREFS, num) {
        return Replacement::Char(c);
    }
    if (0xD800..=0xDFFF).contains(&num) || num > 0x10FFFF {
        return Replacement::Char('\u{FFFD}');
    }
    if tables::INVALID_CODEPOINTS.binary_search(&num).is_ok() {
        return Replacement::Nothing;
    }
    Replacement::Char(char::from_u32(num).unwrap_or('\u{FFFD}'))
}

fn named(name: &str) -> Replacement<'_> {
    if let Some(v) = tables::lookup_str(&tables::HTML5, name) {
        return Replacement::Text(v, "");
    }
    // Longest prefix of at least 2 characters that is an entity (Python
    // tries x = len-1 down to 2, in characters).
    let bounds: Vec<usize> = name.char_indices().map(|(i, _)| i).skip(2).collect();
    for &cut in bounds.iter().rev() {
        if let Some(v) = tables::lookup_str(&tables::HTML5, &name[..cut]) {
            return Replacement::Text(v, &name[cut..]);
        }
    }
    Replacement::Text("&", name)
}
