//! ftfy's `fix_encoding`: repair of mojibake, text that was UTF-8 but was
//! decoded with a one-byte code page (Latin-1, Windows-125x, MacRoman, ...).
//!
//! Same decisions as ftfy 6.3: a step runs only on non-ASCII text that ftfy's
//! "badness" regex flags; it re-encodes the text with the first code page
//! that can represent it and whose bytes decode as UTF-8 (after restoring
//! lost U+00A0 bytes and marking lossy sequences), else fixes UTF-8-looking
//! runs in isolation, else reads Latin-1 as Windows-1252, else fixes C1
//! controls; steps repeat until the text stops changing. ftfy's regexes are
//! translated from Python's own parse trees by
//! `tools/reference/gen_tokenizer_tables.py`, and run on the `regex` crate.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::OnceLock;

use regex::bytes::Regex as BytesRegex;
use regex::Regex;

use crate::tables::{self, mojibake as mt};

struct Encoding {
    name: &'static str,
    encode: HashMap<char, u8>,
}

struct State {
    badness: Regex,
    utf8_detector: Regex,
    not_after: Regex,
    altered: BytesRegex,
    lossy: BytesRegex,
    encodings: Vec<Encoding>,
}

fn state() -> &'static State {
    static STATE: OnceLock<State> = OnceLock::new();
    STATE.get_or_init(|| {
        // The patterns are generated and tested; failing to compile them is
        // a build defect, not an input error.
        let rx = |p: &str| Regex::new(p).expect("generated ftfy regex compiles");
        let brx = |p: &str| BytesRegex::new(p).expect("generated ftfy regex compiles");
        let encodings = mt::ENCODING_NAMES
            .iter()
            .zip(mt::ENCODING_HIGH.iter())
            .map(|(&name, high)| {
                let mut encode: HashMap<char, u8> = (0u8..0x80)
                    .filter(|&b| b != 0x1A)
                    .map(|b| (char::from(b), b))
                    .collect();
                for (i, &c) in high.iter().enumerate() {
                    encode.insert(c, if i == 128 { 0x1A } else { 0x80 + i as u8 });
                }
                Encoding { name, encode }
            })
            .collect();
        State {
            badness: rx(mt::BADNESS_RE),
            utf8_detector: rx(mt::UTF8_DETECTOR_RE),
            not_after: rx(&format!(r"\A{}", mt::UTF8_DETECTOR_RE_NOT_AFTER)),
            altered: brx(mt::ALTERED_UTF8_RE),
            lossy: brx(mt::LOSSY_UTF8_RE),
            encodings,
        }
    })
}

/// ftfy's `is_bad`: does the text hold likely mojibake?
pub fn is_bad(s: &str) -> bool {
    state().badness.is_match(s)
}

/// `ftfy.fix_encoding(s)`.
pub fn fix_encoding(s: &str) -> Cow<'_, str> {
    if s.is_ascii() {
        return Cow::Borrowed(s);
    }
    let mut text = Cow::Borrowed(s);
    loop {
        match fix_one_step(&text) {
            Some(fixed) if fixed != *text => text = Cow::Owned(fixed),
            _ => return text,
        }
    }
}

fn encode(text: &str, enc: &Encoding) -> Option<Vec<u8>> {
    text.chars().map(|c| enc.encode.get(&c).copied()).collect()
}

/// One step of `_fix_encoding_one_step_and_explain`; `None` = unchanged.
fn fix_one_step(text: &str) -> Option<String> {
    if text.is_ascii() || !is_bad(text) {
        return None;
    }
    let st = state();
    let mut possible = Vec::new();
    for enc in &st.encodings {
        let Some(mut bytes) = encode(text, enc) else {
            continue;
        };
        possible.push(enc.name);
        if enc.name != "macroman" && st.altered.is_match(&bytes) {
            bytes = restore_byte_a0(&bytes, &st.altered);
        }
        if enc.name.starts_with("sloppy") {
            bytes = st
                .lossy
                .replace_all(&bytes, &b"\xEF\xBF\xBD"[..])
                .into_owned();
        }
        let decoded = if bytes.contains(&0xED) || bytes.contains(&0xC0) {
            decode_utf8_variants(&bytes)
        } else {
            String::from_utf8(bytes).ok()
        };
        if let Some(fixed) = decoded {
            return Some(fixed);
        }
    }
    if st.utf8_detector.is_match(text) {
        let fixed = decode_inconsistent_utf8(text);
        if fixed != text {
            return Some(fixed);
        }
    }
    // ftfy then asks for "windows-1252" among the possible encodings, which
    // only lists "sloppy-windows-1252": so Latin-1 text is always re-read
    // as strict Windows-1252 here.
    if possible.contains(&"latin-1") {
        if let Some(fixed) = latin1_as_windows1252(text) {
            if fixed != text {
                return Some(fixed);
            }
        }
    }
    if text.chars().any(|c| ('\u{80}'..='\u{9F}').contains(&c)) {
        return Some(crate::ftfy::fix_c1_controls(text).into_owned());
    }
    None
}

/// `text.encode("latin-1").decode("windows-1252")`; `None` on a byte that
/// strict Windows-1252 leaves undefined.
fn latin1_as_windows1252(text: &str) -> Option<String> {
    text.chars()
        .map(|c| match c as u32 {
            0x81 | 0x8D | 0x8F | 0x90 | 0x9D => None,
            cp @ 0x80..=0x9F => Some(tables::C1_TO_1252[(cp - 0x80) as usize]),
            _ => Some(c),
        })
        .collect()
}

/// ftfy's `restore_byte_a0`.
fn restore_byte_a0(bytes: &[u8], altered: &BytesRegex) -> Vec<u8> {
    // `\xc3 (?! |quele|quela|quilo|s )` -> `\xc3\xa0 `.
    let mut out = Vec::with_capacity(bytes.len() + 8);
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == 0xC3 && bytes.get(i + 1) == Some(&b' ') {
            let rest = &bytes[i + 2..];
            let blocked = [&b" "[..], b"quele", b"quela", b"quilo", b"s "]
                .iter()
                .any(|p| rest.starts_with(p));
            if !blocked {
                out.extend_from_slice(b"\xC3\xA0 ");
                i += 2;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    altered
        .replace_all(&out, |m: &regex::bytes::Captures<'_>| {
            m[0].iter()
                .map(|&b| if b == b' ' { 0xA0 } else { b })
                .collect::<Vec<u8>>()
        })
        .into_owned()
}

/// ftfy's `utf-8-variants` codec: strict UTF-8 plus CESU-8 surrogate pairs
/// and Java's `C0 80` for U+0000. `None` where Python raises.
fn decode_utf8_variants(bytes: &[u8]) -> Option<String> {
    let mut out = String::with_capacity(bytes.len());
    let mut pos = 0;
    loop {
        let special = bytes[pos..].iter().enumerate().position(|(i, &b)| {
            let next = bytes.get(pos + i + 1);
            (b == 0xC0 && next.is_none_or(|&n| n == 0x80))
                || (b == 0xED && next.is_none_or(|n| (0xA0..=0xBF).contains(n)))
        });
        let Some(off) = special else {
            out.push_str(std::str::from_utf8(&bytes[pos..]).ok()?);
            return Some(out);
        };
        out.push_str(std::str::from_utf8(&bytes[pos..pos + off]).ok()?);
        let at = &bytes[pos + off..];
        if at[0] == 0xC0 {
            if at.len() < 2 {
                return None;
            }
            out.push('\0');
            pos += off + 2;
            continue;
        }
        let cesu = at.len() >= 6
            && (0xA0..=0xAF).contains(&at[1])
            && (0x80..=0xBF).contains(&at[2])
            && at[3] == 0xED
            && (0xB0..=0xBF).contains(&at[4])
            && (0x80..=0xBF).contains(&at[5]);
        if !cesu {
            return None;
        }
        let cp = ((u32::from(at[1]) & 0x0F) << 16)
            + ((u32::from(at[2]) & 0x3F) << 10)
            + ((u32::from(at[4]) & 0x0F) << 6)
            + (u32::from(at[5]) & 0x3F)
            + 0x10000;
        out.push(char::from_u32(cp)?);
        pos += off + 6;
    }
}

/// ftfy's `decode_inconsistent_utf8`: UTF-8-looking runs (not right after
/// another continuation-like character) fixed on their own when bad.
fn decode_inconsistent_utf8(text: &str) -> String {
    let st = state();
    let mut out = String::with_capacity(text.len());
    let (mut copied, mut pos) = (0, 0);
    while let Some(m) = st.utf8_detector.find_at(text, pos) {
        let start = m.start();
        let prev = text[..start].chars().next_back();
        let blocked = prev.is_some_and(|c| st.not_after.is_match(c.encode_utf8(&mut [0; 4])));
        if blocked {
            pos = start + text[start..].chars().next().map_or(1, char::len_utf8);
            continue;
        }
        let sub = m.as_str();
        out.push_str(&text[copied..start]);
        if sub.len() < text.len() && is_bad(sub) {
            out.push_str(&fix_encoding(sub));
        } else {
            out.push_str(sub);
        }
        copied = m.end();
        pos = m.end();
    }
    out.push_str(&text[copied..]);
    out
}
