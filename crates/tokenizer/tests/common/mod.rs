//! Fixture reading shared by the integration tests.

#![allow(dead_code)]

use std::io::Read;

use serde_json::Value;

/// Path of a file under `tests/fixtures/`.
pub fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// The records of a gzipped JSONL fixture.
pub fn jsonl_gz(name: &str) -> Vec<Value> {
    let raw = std::fs::read(fixture(name)).expect("fixture present");
    let mut s = String::new();
    flate2::read::GzDecoder::new(&raw[..])
        .read_to_string(&mut s)
        .expect("fixture is gzip");
    s.lines()
        .map(|l| serde_json::from_str(l).expect("fixture line is JSON"))
        .collect()
}

/// A JSON array of ids.
pub fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_u64().expect("id") as u32)
        .collect()
}

/// A short, escaped preview of a text for mismatch reports.
pub fn short(s: &str) -> String {
    let c: String = s.chars().take(120).collect();
    format!("{c:?}")
}
