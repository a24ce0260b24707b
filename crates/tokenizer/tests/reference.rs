//! Checks the tokenizer against OpenAI's `simple_tokenizer.py` on the committed
//! corpus (`tests/fixtures/tokenizer_reference.jsonl.gz`, made by
//! `tools/reference/make_tokenizer_reference.py`): identical ids and identical
//! 77-long `clip.tokenize` rows for every line, and each cleaning step against
//! the Python function's output. Mismatches are printed, first ones first.

mod common;

use clip_tokenizer::{ftfy, html, text, unicode, Tokenizer};
use common::{ids, jsonl_gz, short};
use serde_json::Value;

fn corpus() -> Vec<Value> {
    jsonl_gz("tokenizer_reference.jsonl.gz")
}

/// Compares `name` on every record that has `field`; returns (checked, failed).
fn check_step(
    records: &[Value],
    name: &str,
    field: &str,
    f: impl Fn(&str) -> Value,
) -> (usize, usize) {
    let (mut n, mut bad) = (0, 0);
    for r in records {
        let Some(want) = r.get(field) else { continue };
        let t = r["t"].as_str().expect("text");
        n += 1;
        let got = f(t);
        if &got != want {
            bad += 1;
            if bad <= 5 {
                eprintln!(
                    "{name} MISMATCH on {}\n  want {want}\n  got  {got}",
                    short(t)
                );
            }
        }
    }
    eprintln!("{name}: {}/{n} identical", n - bad);
    (n, bad)
}

#[test]
fn ids_and_rows_match_openai() {
    let records = corpus();
    assert!(records.len() >= 5000, "corpus has {} lines", records.len());
    let tok = Tokenizer::new().expect("embedded vocabulary");
    let texts: Vec<&str> = records
        .iter()
        .map(|r| r["t"].as_str().expect("t"))
        .collect();
    let batch = tok.encode_batch(&texts);
    let mut bad = 0;
    for (i, r) in records.iter().enumerate() {
        let want = ids(&r["ids"]);
        let got = &batch[i];
        let row = tok
            .tokenize_one(texts[i], i, 77, true)
            .expect("truncate never fails");
        let too_long = tok.tokenize_one(texts[i], i, 77, false).is_err();
        let decoded = tok.decode(got).expect("ids from encode decode");
        if got != &want
            || row != ids(&r["ctx"])
            || too_long != r["long"].as_bool().expect("long")
            || decoded != r["dec"].as_str().expect("dec")
        {
            bad += 1;
            if bad <= 10 {
                let at = got.iter().zip(&want).position(|(a, b)| a != b);
                eprintln!(
                    "line {i} MISMATCH {}: first differing id at {at:?}\n  want {:?}\n  got  {:?}",
                    short(texts[i]),
                    &want[..want.len().min(40)],
                    &got[..got.len().min(40)]
                );
            }
        }
    }
    let n = records.len();
    eprintln!(
        "ids+rows: {}/{n} lines identical ({:.3}%)",
        n - bad,
        100.0 * (n - bad) as f64 / n as f64
    );
    assert_eq!(bad, 0, "{bad} of {n} lines differ from simple_tokenizer.py");
}

#[test]
fn cleaning_steps_match_python() {
    let records = corpus();
    let mut failed = 0;
    failed += check_step(&records, "ftfy.fix_text", "fx", |t| {
        Value::from(ftfy::fix_text(t).into_owned())
    })
    .1;
    failed += check_step(&records, "html.unescape", "un", |t| {
        Value::from(html::unescape(t))
    })
    .1;
    failed += check_step(&records, "str.lower", "lo", |t| {
        Value::from(unicode::py_lower(t))
    })
    .1;
    failed += check_step(&records, "pre-tokens", "pt", |t| {
        let cleaned = text::clean(t);
        Value::from(
            text::pre_tokens(&cleaned)
                .map(Value::from)
                .collect::<Vec<_>>(),
        )
    })
    .1;
    assert_eq!(
        failed, 0,
        "{failed} cleaning-step outputs differ from Python"
    );
}
