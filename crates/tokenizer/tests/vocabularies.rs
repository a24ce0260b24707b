//! Other vocabularies, decoding and invalid UTF-8, against Python's outputs:
//! a 3,000-merge OpenAI-format file (gzipped and plain) and the same
//! vocabulary as Hugging Face `vocab.json` + `merges.txt`, each checked
//! against `SimpleTokenizer(bpe_path=...)`; `decode` on random id sequences;
//! bytes decoded as `errors="replace"`. Fixtures come from
//! `tools/reference/make_tokenizer_reference.py`.

mod common;

use clip_tokenizer::{vocab, Error, Tokenizer, Utf8Policy};
use common::{fixture, ids, jsonl_gz, short};

fn assert_same_ids(tok: &Tokenizer, label: &str) {
    let records = jsonl_gz("small_reference.jsonl.gz");
    let mut bad = 0;
    for r in &records {
        let t = r["t"].as_str().expect("t");
        let got = tok.encode(t);
        if got != ids(&r["ids"]) {
            bad += 1;
            if bad <= 5 {
                eprintln!(
                    "{label} MISMATCH on {}\n  want {}\n  got  {got:?}",
                    short(t),
                    r["ids"]
                );
            }
        }
    }
    eprintln!(
        "{label}: {}/{} identical",
        records.len() - bad,
        records.len()
    );
    assert_eq!(bad, 0, "{label}: {bad} lines differ");
}

#[test]
fn openai_format_gz_and_plain() {
    let gz = fixture("small_merges.txt.gz");
    let tok = Tokenizer::from_openai_merges_file(&gz).expect("gz merges load");
    assert_same_ids(&tok, "small merges (gz)");

    let raw = std::fs::read(&gz).expect("fixture");
    let plain = vocab::gunzip(&raw).expect("gunzip");
    let path = std::env::temp_dir().join(format!("clip-tok-merges-{}.txt", std::process::id()));
    std::fs::write(&path, plain).expect("write temp file");
    let tok = Tokenizer::from_openai_merges_file(&path).expect("plain merges load");
    let _ = std::fs::remove_file(&path);
    assert_same_ids(&tok, "small merges (plain)");
}

#[test]
fn hugging_face_folder() {
    let tok = Tokenizer::from_hf_dir(fixture("small_vocab")).expect("HF folder loads");
    assert_same_ids(&tok, "small vocab (HF)");
}

#[test]
fn missing_files_are_errors() {
    let err = Tokenizer::from_hf_dir(fixture("no_such_dir")).expect_err("no folder");
    assert!(matches!(err, Error::Io { .. }), "{err}");
}

#[test]
fn decode_matches_python() {
    let tok = Tokenizer::new().expect("embedded vocabulary");
    let records = jsonl_gz("decode_reference.jsonl.gz");
    for r in &records {
        let got = tok.decode(&ids(&r["ids"])).expect("ids in range");
        assert_eq!(got, r["dec"].as_str().expect("dec"), "ids {}", r["ids"]);
    }
    let past_end = tok.eot() + 1;
    assert!(matches!(
        tok.decode(&[past_end]),
        Err(Error::UnknownId { .. })
    ));
}

#[test]
fn invalid_utf8_replace_or_error() {
    let tok = Tokenizer::new().expect("embedded vocabulary");
    for r in &jsonl_gz("utf8_reference.jsonl.gz") {
        let hex = r["hex"].as_str().expect("hex");
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
            .collect();
        let got = tok
            .encode_bytes(&bytes, Utf8Policy::Replace)
            .expect("replace never fails");
        assert_eq!(got, ids(&r["ids"]), "bytes {hex}");
        let strict = tok.encode_bytes(&bytes, Utf8Policy::Strict);
        assert_eq!(
            strict.is_ok(),
            std::str::from_utf8(&bytes).is_ok(),
            "bytes {hex}"
        );
    }
}
