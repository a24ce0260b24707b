//! The text side of `SimpleTokenizer.encode`: `basic_clean`,
//! `whitespace_clean`, lower-casing, and the pre-tokenizing regex
//!
//! ```text
//! <\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
//! ```
//!
//! with IGNORECASE, as a hand-written scanner over the generated class table
//! (so `'ſ` matches `'s`, and U+0345 is matched by no alternative).

use std::borrow::Cow;

use crate::unicode::{class_of, is_py_space, is_regex_space, py_lower, py_strip, Class};
use crate::{ftfy, html};

/// `basic_clean`: `ftfy.fix_text`, `html.unescape` twice, `str.strip()`.
pub fn basic_clean(text: &str) -> Cow<'_, str> {
    let fixed = ftfy::fix_text(text);
    let unescaped = if fixed.contains('&') {
        Cow::Owned(html::unescape(&html::unescape(&fixed)))
    } else {
        fixed
    };
    match unescaped {
        Cow::Borrowed(s) => Cow::Borrowed(py_strip(s)),
        Cow::Owned(s) => Cow::Owned(py_strip(&s).to_string()),
    }
}

/// `whitespace_clean`: runs of regex `\s` become one space, then `str.strip()`.
pub fn whitespace_clean(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_space = false;
    if text.is_ascii() {
        for &b in text.as_bytes() {
            if matches!(b, b'\t' | b'\n' | 0x0B | 0x0C | b'\r' | b' ') {
                in_space = true;
            } else {
                if in_space {
                    out.push(' ');
                    in_space = false;
                }
                out.push(b as char);
            }
        }
    } else {
        for c in text.chars() {
            if is_regex_space(c) {
                in_space = true;
            } else {
                if in_space {
                    out.push(' ');
                    in_space = false;
                }
                out.push(c);
            }
        }
    }
    if in_space {
        out.push(' ');
    }
    let trimmed = out.trim_matches(is_py_space);
    if trimmed.len() != out.len() {
        out = trimmed.to_string();
    }
    out
}

/// The whole cleaning of `encode`: `whitespace_clean(basic_clean(text)).lower()`.
pub fn clean(text: &str) -> String {
    let basic = basic_clean(text);
    let ws = whitespace_clean(&basic);
    if ws.is_ascii() {
        let mut ws = ws;
        ws.make_ascii_lowercase();
        ws
    } else {
        py_lower(&ws)
    }
}

/// Matches `lit` (lower-case ASCII) at the start of `s` as IGNORECASE does;
/// returns the matched length in bytes.
#[inline]
fn match_ci(s: &str, lit: &str) -> Option<usize> {
    let mut chars = s.char_indices();
    for l in lit.chars() {
        let (_, c) = chars.next()?;
        let ok = c == l || c.to_ascii_lowercase() == l || (l == 's' && c == '\u{17F}');
        if !ok {
            return None;
        }
    }
    Some(chars.next().map_or(s.len(), |(i, _)| i))
}

const SPECIALS: [&str; 2] = ["<|startoftext|>", "<|endoftext|>"];
const CONTRACTIONS: [&str; 7] = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d"];

/// Iterator over the pre-tokens of a cleaned text, as `re.findall(pat, text)`.
pub struct PreTokens<'a> {
    text: &'a str,
    pos: usize,
}

/// The pre-tokens of `text` (already cleaned and lower-cased).
pub fn pre_tokens(text: &str) -> PreTokens<'_> {
    PreTokens { text, pos: 0 }
}

impl<'a> Iterator for PreTokens<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let t = self.text;
        let b = t.as_bytes();
        while self.pos < b.len() {
            let start = self.pos;
            let rest = &t[start..];
            let first = b[start];
            if first == b'<' {
                if let Some(n) = SPECIALS.iter().find_map(|s| match_ci(rest, s)) {
                    self.pos += n;
                    return Some(&rest[..n]);
                }
            } else if first == b'\'' {
                if let Some(n) = CONTRACTIONS.iter().find_map(|s| match_ci(rest, s)) {
                    self.pos += n;
                    return Some(&rest[..n]);
                }
            }
            let (c, len) = if first < 0x80 {
                (first as char, 1)
            } else {
                let c = rest.chars().next().unwrap_or('\u{FFFD}');
                (c, c.len_utf8())
            };
            let class = class_of(c);
            match class {
                Class::Space | Class::Skip => {
                    self.pos += len;
                    continue;
                }
                Class::Number => {
                    self.pos += len;
                    return Some(&rest[..len]);
                }
                Class::Letter | Class::Other => {
                    let mut end = len;
                    for c in rest[len..].chars() {
                        let k = if c.is_ascii() {
                            crate::unicode::ASCII_CLASS[c as usize]
                        } else {
                            class_of(c)
                        };
                        if k != class {
                            break;
                        }
                        end += c.len_utf8();
                    }
                    self.pos += end;
                    return Some(&rest[..end]);
                }
            }
        }
        None
    }
}
