//! Python's string primitives used by simple_tokenizer.py, on Unicode 14.0.0:
//! `str.lower()` (with the final-sigma rule), `str.isspace()`/`str.strip()`,
//! and the character classes of the pre-tokenizing regex.
//!
//! All tables come from CPython 3.11 and the `regex` module (see `tables`);
//! nothing here is derived from Rust's own (newer) Unicode tables.

use crate::tables;

/// Which alternative of the pre-tokenizing regex a character can start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// `[^\s\p{L}\p{N}]`: punctuation, symbols, emoji, marks.
    Other = 0,
    /// `[\p{L}]`.
    Letter = 1,
    /// `[\p{N}]`.
    Number = 2,
    /// `\s`: matched by nothing, skipped.
    Space = 3,
    /// Matched by no alternative under IGNORECASE (U+0345): skipped too.
    Skip = 4,
}

const fn ascii_classes() -> [Class; 128] {
    let mut t = [Class::Other; 128];
    let mut i = 0;
    while i < 128 {
        let b = i as u8;
        t[i] = if b.is_ascii_alphabetic() {
            Class::Letter
        } else if b.is_ascii_digit() {
            Class::Number
        } else if (b >= 0x09 && b <= 0x0D) || b == b' ' {
            Class::Space
        } else {
            Class::Other
        };
        i += 1;
    }
    t
}

/// Classes of the ASCII characters.
pub static ASCII_CLASS: [Class; 128] = ascii_classes();

/// The pre-tokenizer class of `c`.
#[inline]
pub fn class_of(c: char) -> Class {
    let cp = c as u32;
    if cp < 128 {
        return ASCII_CLASS[cp as usize];
    }
    let r = &tables::CLASS_RANGES;
    let i = r.partition_point(|&(_, end, _)| end < cp);
    if i < r.len() && r[i].0 <= cp {
        match r[i].2 {
            1 => Class::Letter,
            2 => Class::Number,
            3 => Class::Space,
            4 => Class::Skip,
            _ => Class::Other,
        }
    } else {
        Class::Other
    }
}

/// Regex-module `\s` (used by `whitespace_clean`).
#[inline]
pub fn is_regex_space(c: char) -> bool {
    class_of(c) == Class::Space
}

/// Python's `str.isspace()` for one character (used by `str.strip()`).
#[inline]
pub fn is_py_space(c: char) -> bool {
    let cp = c as u32;
    if cp < 128 {
        return matches!(cp, 0x09..=0x0D | 0x1C..=0x20);
    }
    tables::in_ranges(&tables::PY_SPACE, cp)
}

/// Python's `str.strip()` with no argument.
pub fn py_strip(s: &str) -> &str {
    s.trim_matches(is_py_space)
}

fn is_cased(c: char) -> bool {
    tables::in_ranges(&tables::CASED, c as u32)
}

fn is_case_ignorable(c: char) -> bool {
    tables::in_ranges(&tables::CASE_IGNORABLE, c as u32)
}

/// CPython's `handle_capital_sigma`: is the sigma at `chars[i]` word-final?
fn final_sigma(chars: &[char], i: usize) -> bool {
    let before = chars[..i].iter().rev().find(|&&c| !is_case_ignorable(c));
    if !before.is_some_and(|&c| is_cased(c)) {
        return false;
    }
    match chars[i + 1..].iter().find(|&&c| !is_case_ignorable(c)) {
        None => true,
        Some(&c) => !is_cased(c),
    }
}

/// Appends Python's lower-case of `c` (one or two characters) to `out`.
#[inline]
fn push_lower(c: char, out: &mut String) {
    if c.is_ascii() {
        out.push(c.to_ascii_lowercase());
        return;
    }
    match tables::lookup(&tables::LOWER, c as u32) {
        None => out.push(c),
        Some((a, b)) => {
            out.extend(char::from_u32(a));
            if b != 0 {
                out.extend(char::from_u32(b));
            }
        }
    }
}

/// Python's `str.lower()`, final sigma included.
pub fn py_lower(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    if s.is_ascii() {
        out.push_str(s);
        out.make_ascii_lowercase();
        return out;
    }
    if !s.contains('\u{3A3}') {
        for c in s.chars() {
            push_lower(c, &mut out);
        }
        return out;
    }
    let chars: Vec<char> = s.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if c == '\u{3A3}' {
            out.push(if final_sigma(&chars, i) { 'ς' } else { 'σ' });
        } else {
            push_lower(c, &mut out);
        }
    }
    out
}
