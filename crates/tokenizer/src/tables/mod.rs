//! Generated Unicode and HTML tables, and the look-ups over them.
//!
//! The data files beside this one are written by
//! `tools/reference/gen_tokenizer_tables.py` from CPython 3.11 (Unicode 14.0.0),
//! the `regex` module and `ftfy`; this file only searches them.

#![allow(clippy::unreadable_literal)]

mod case;
mod classes;
mod ftfy;
mod html;
pub mod mojibake;

pub use case::{CASED, CASE_IGNORABLE, LOWER, PY_SPACE};
pub use classes::CLASS_RANGES;
pub use ftfy::{C1_TO_1252, CONTROL_CHARS, FTFY_ENTITIES, LIGATURES, PY_DECIMAL, WIDTH_MAP};
pub use html::{HTML5, INVALID_CHARREFS, INVALID_CODEPOINTS};

/// Is `cp` inside one of the sorted, disjoint inclusive `ranges`?
pub fn in_ranges(ranges: &[(u32, u32)], cp: u32) -> bool {
    let i = ranges.partition_point(|&(_, end)| end < cp);
    i < ranges.len() && ranges[i].0 <= cp
}

/// Binary search of a table sorted by its `u32` key.
pub fn lookup<T: Copy>(table: &[(u32, T)], cp: u32) -> Option<T> {
    table
        .binary_search_by_key(&cp, |&(k, _)| k)
        .ok()
        .map(|i| table[i].1)
}

/// Binary search of a table sorted by its string key (byte order).
pub fn lookup_str(
    table: &'static [(&'static str, &'static str)],
    key: &str,
) -> Option<&'static str> {
    table
        .binary_search_by(|&(k, _)| k.cmp(key))
        .ok()
        .map(|i| table[i].1)
}
