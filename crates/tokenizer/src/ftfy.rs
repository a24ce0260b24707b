//! `ftfy.fix_text` in its default configuration (ftfy 6.3), as CLIP calls it.
//!
//! Per segment (a line, or at most 1,000,000 characters), repeated until
//! nothing changes: ftfy's own HTML unescaping (off for good once a segment
//! contains `<`), mojibake repair ([`crate::mojibake`]), C1 controls read as
//! Windows-1252, Latin ligatures, full-width characters, curly quotes, line
//! breaks, terminal escapes, control characters, then NFC (Unicode 14.0.0).
//! Surrogates cannot occur in a Rust `str`, so `fix_surrogates` is a no-op.
//!
//! Fast path: text of printable ASCII (with tab, newline, form feed) and no
//! `&` is returned borrowed after one byte scan, since no step can change it.

use std::borrow::Cow;

use unicode_normalization::{is_nfc_quick, IsNormalized, UnicodeNormalization};

use crate::{html, mojibake, tables};

/// ftfy's `max_decode_length`, in characters.
const MAX_SEGMENT_CHARS: usize = 1_000_000;

/// True when no ftfy step can change `s`.
#[inline]
pub fn is_trivially_clean(s: &str) -> bool {
    s.bytes()
        .all(|b| (0x20..0x7F).contains(&b) && b != b'&' || matches!(b, b'\t' | b'\n' | 0x0C))
}

/// `ftfy.fix_text(s)` with the default configuration.
pub fn fix_text(s: &str) -> Cow<'_, str> {
    if is_trivially_clean(s) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut unescape = true;
    let mut rest = s;
    while !rest.is_empty() {
        let mut end = rest.find('\n').map_or(rest.len(), |i| i + 1);
        if end > MAX_SEGMENT_CHARS {
            if let Some((i, _)) = rest[..end].char_indices().nth(MAX_SEGMENT_CHARS) {
                end = i;
            }
        }
        let segment = &rest[..end];
        if segment.contains('<') {
            unescape = false;
        }
        out.push_str(&fix_segment(segment, unescape));
        rest = &rest[end..];
    }
    Cow::Owned(out)
}

/// `ftfy.fix_and_explain` on one segment: all fixes, until a fixed point.
pub fn fix_segment(segment: &str, unescape: bool) -> Cow<'_, str> {
    if is_trivially_clean(segment) {
        return Cow::Borrowed(segment);
    }
    let mut text = segment.to_string();
    loop {
        let orig = text.clone();
        if unescape {
            text = unescape_html(&text).into_owned();
        }
        text = mojibake::fix_encoding(&text).into_owned();
        text = fix_c1_controls(&text).into_owned();
        text = translate(&text, |c| tables::lookup(&tables::LIGATURES, c as u32)).into_owned();
        text = translate(&text, |c| tables::lookup(&tables::WIDTH_MAP, c as u32)).into_owned();
        text = uncurl_quotes(&text).into_owned();
        text = fix_line_breaks(&text).into_owned();
        text = remove_terminal_escapes(&text).into_owned();
        text = remove_control_chars(&text).into_owned();
        text = nfc(&text).into_owned();
        if text == orig {
            return Cow::Owned(text);
        }
    }
}

/// Applies a per-character replacement, like `str.translate`.
pub fn translate<'a>(s: &'a str, f: impl Fn(char) -> Option<&'static str>) -> Cow<'a, str> {
    let Some(first) = s
        .char_indices()
        .find(|&(_, c)| !c.is_ascii() && f(c).is_some())
    else {
        return Cow::Borrowed(s);
    };
    let mut out = String::with_capacity(s.len());
    out.push_str(&s[..first.0]);
    for c in s[first.0..].chars() {
        match f(c) {
            Some(r) => out.push_str(r),
            None => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// ftfy's `unescape_html`: `&#?[0-9A-Za-z]{1,24};` through ftfy's own table;
/// numeric references through `html.unescape` unless that leaves a `;`.
pub fn unescape_html(s: &str) -> Cow<'_, str> {
    if !s.contains('&') {
        return Cow::Borrowed(s);
    }
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let (mut copied, mut pos) = (0, 0);
    while let Some(off) = s[pos..].find('&') {
        let amp = pos + off;
        let mut i = amp + 1;
        let numeric = b.get(i) == Some(&b'#');
        if numeric {
            i += 1;
        }
        let run = b[i..]
            .iter()
            .take_while(|c| c.is_ascii_alphanumeric())
            .count();
        if (1..=24).contains(&run) && b.get(i + run) == Some(&b';') {
            let end = i + run + 1;
            let whole = &s[amp..end];
            out.push_str(&s[copied..amp]);
            if let Some(v) = tables::lookup_str(&tables::FTFY_ENTITIES, whole) {
                out.push_str(v);
            } else if numeric {
                let u = html::unescape(whole);
                out.push_str(if u.contains(';') { whole } else { &u });
            } else {
                out.push_str(whole);
            }
            copied = end;
            pos = end;
        } else {
            pos = amp + 1;
        }
    }
    out.push_str(&s[copied..]);
    Cow::Owned(out)
}

/// ftfy's `fix_c1_controls`: U+0080..U+009F read as sloppy Windows-1252.
pub fn fix_c1_controls(s: &str) -> Cow<'_, str> {
    translate_char(s, |c| {
        let cp = c as u32;
        (0x80..0xA0)
            .contains(&cp)
            .then(|| tables::C1_TO_1252[(cp - 0x80) as usize])
    })
}

/// ftfy's `uncurl_quotes`: `[ʼ‘-‛]` to `'`, `[“-‟]` to `"`.
pub fn uncurl_quotes(s: &str) -> Cow<'_, str> {
    translate_char(s, |c| match c {
        '\u{2BC}' | '\u{2018}'..='\u{201B}' => Some('\''),
        '\u{201C}'..='\u{201F}' => Some('"'),
        _ => None,
    })
}

fn translate_char(s: &str, f: impl Fn(char) -> Option<char>) -> Cow<'_, str> {
    let Some(first) = s
        .char_indices()
        .find(|&(_, c)| !c.is_ascii() && f(c).is_some())
    else {
        return Cow::Borrowed(s);
    };
    let mut out = String::with_capacity(s.len());
    out.push_str(&s[..first.0]);
    out.extend(s[first.0..].chars().map(|c| f(c).unwrap_or(c)));
    Cow::Owned(out)
}

/// ftfy's `fix_line_breaks`: CRLF, CR, U+2028, U+2029 and U+0085 to `\n`.
pub fn fix_line_breaks(s: &str) -> Cow<'_, str> {
    if !s.contains(['\r', '\u{2028}', '\u{2029}', '\u{85}']) {
        return Cow::Borrowed(s);
    }
    let s = s.replace("\r\n", "\n");
    Cow::Owned(s.replace(['\r', '\u{2028}', '\u{2029}', '\u{85}'], "\n"))
}

/// ftfy's `remove_terminal_escapes`: `\x1b\[(\d|;)*[a-zA-Z]` removed, with
/// `\d` as Python's Unicode decimal digits.
pub fn remove_terminal_escapes(s: &str) -> Cow<'_, str> {
    if !s.contains("\x1b[") {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let (mut copied, mut pos) = (0, 0);
    while let Some(off) = s[pos..].find("\x1b[") {
        let start = pos + off;
        let mut end = start + 2;
        for c in s[end..].chars() {
            if c == ';' || tables::in_ranges(&tables::PY_DECIMAL, c as u32) {
                end += c.len_utf8();
            } else {
                break;
            }
        }
        if s[end..].starts_with(|c: char| c.is_ascii_alphabetic()) {
            out.push_str(&s[copied..start]);
            copied = end + 1;
            pos = end + 1;
        } else {
            pos = start + 1;
        }
    }
    out.push_str(&s[copied..]);
    Cow::Owned(out)
}

/// ftfy's `remove_control_chars`.
pub fn remove_control_chars(s: &str) -> Cow<'_, str> {
    let bad = |c: char| tables::CONTROL_CHARS.binary_search(&(c as u32)).is_ok();
    if !s.contains(bad) {
        return Cow::Borrowed(s);
    }
    Cow::Owned(s.chars().filter(|&c| !bad(c)).collect())
}

/// `unicodedata.normalize("NFC", s)`, Unicode 14.0.0.
pub fn nfc(s: &str) -> Cow<'_, str> {
    if s.is_ascii() || is_nfc_quick(s.chars()) == IsNormalized::Yes {
        return Cow::Borrowed(s);
    }
    let n: String = s.nfc().collect();
    if n == s {
        Cow::Borrowed(s)
    } else {
        Cow::Owned(n)
    }
}
