//! Fast-forward for nested ampersand escapes (`&amp;amp;amp;...`), so that
//! ftfy's fix-until-unchanged loop stays near-linear on them.
//!
//! ftfy's `unescape_html` turns `&amp;` (or `&AMP;`, `&#38;`, `&#x26;`)
//! into `&` once per pass, and `fix_and_explain` repeats all its fixes until
//! nothing changes: a chain of depth d costs d passes over the whole
//! segment, O(n^2) for a 1 MB chain. Every fix reads only a few characters
//! of context, none of which can see inside a chain's ASCII units, so while
//! every chain still has at least two units, each pass removes exactly one
//! unit from each chain and changes nothing else. [`fast_forward`] checks
//! that the last pass did exactly that, then removes `min depth - 1` more
//! units from every chain at once; the ordinary passes then resolve the
//! chain ends as ftfy does. Segments with chains of many different depths
//! still take one ordinary pass per distinct depth: O(n sqrt n) at worst.

/// A chain: the `&` at `start`, then its units ending at `unit_ends`.
struct Chain {
    start: usize,
    unit_ends: Vec<usize>,
}

/// Length of a unit at the start of `s`: a body `b` such that `&b` is one
/// match of ftfy's `&#?[0-9A-Za-z]{1,24};` that it decodes to `&`.
fn unit_len(s: &[u8]) -> Option<usize> {
    let hash = s.first() == Some(&b'#');
    let body_start = usize::from(hash);
    let run = s[body_start..]
        .iter()
        .take_while(|c| c.is_ascii_alphanumeric())
        .count();
    if run == 0 || run > 24 || s.get(body_start + run) != Some(&b';') {
        return None;
    }
    let body = &s[body_start..body_start + run];
    let is_amp = if hash {
        let (digits, radix) = match body[0] {
            b'x' | b'X' => (&body[1..], 16),
            _ => (body, 10),
        };
        !digits.is_empty()
            && digits
                .iter()
                .all(|c| c.is_ascii_digit() || radix == 16 && c.is_ascii_hexdigit())
            && std::str::from_utf8(digits)
                .ok()
                .and_then(|d| u32::from_str_radix(d.trim_start_matches('0'), radix).ok())
                == Some(0x26)
    } else {
        body == b"amp" || body == b"AMP"
    };
    is_amp.then_some(body_start + run + 1)
}

/// Every `&` followed by at least one unit, with its units.
fn chains(s: &str) -> Vec<Chain> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(off) = b[i..].iter().position(|&c| c == b'&') {
        let start = i + off;
        let mut end = start + 1;
        let mut unit_ends = Vec::new();
        while let Some(n) = unit_len(&b[end..]) {
            end += n;
            unit_ends.push(end);
        }
        if !unit_ends.is_empty() {
            out.push(Chain { start, unit_ends });
        }
        i = end.max(start + 1);
    }
    out
}

/// `s` with the first `k` units of every chain removed.
fn remove_units(s: &str, chains: &[Chain], k: usize) -> String {
    let mut out = String::with_capacity(s.len());
    let mut copied = 0;
    for c in chains {
        out.push_str(&s[copied..=c.start]);
        copied = c.unit_ends[k - 1];
    }
    out.push_str(&s[copied..]);
    out
}

/// After one fix pass `before -> after`: when that pass only removed one
/// unit from each chain, and every chain of `after` still has two or more,
/// returns `after` fast-forwarded to the pass where the shallowest chain has
/// one unit left.
pub fn fast_forward(before: &str, after: &str) -> Option<String> {
    if !after.contains('&') || after.len() >= before.len() {
        return None;
    }
    let old = chains(before);
    if old.is_empty() || old.iter().any(|c| c.unit_ends.len() < 2) {
        return None;
    }
    if remove_units(before, &old, 1) != after {
        return None;
    }
    let new = chains(after);
    let min = new.iter().map(|c| c.unit_ends.len()).min()?;
    (min >= 2).then(|| remove_units(after, &new, min - 1))
}
