//! Hostile input: long words and long lines must take roughly linear time.
//! Also checks that the O(n log n) BPE gives the reference algorithm's
//! result (the naive port of `SimpleTokenizer.bpe`) on long words.

use std::time::{Duration, Instant};

use clip_tokenizer::bpe::{bpe_heap, bpe_naive};
use clip_tokenizer::{vocab::Vocab, Tokenizer};

fn timed(label: &str, tok: &Tokenizer, text: &str) -> Duration {
    let t0 = Instant::now();
    let n = tok.encode(text).len();
    let dt = t0.elapsed();
    eprintln!("{label}: {} bytes -> {n} tokens in {dt:?}", text.len());
    dt
}

#[test]
fn long_inputs_take_linear_time() {
    let tok = Tokenizer::new().expect("embedded vocabulary");
    let limit = Duration::from_secs(20);
    let cases = [
        ("1 MB without spaces", "abcdefghij".repeat(100_000)),
        ("1 MB of one letter", "a".repeat(1_000_000)),
        ("100k emoji", "😀".repeat(100_000)),
        ("100k emoji with skin tones", "👍🏽".repeat(50_000)),
        ("500k e-acute", "é".repeat(500_000)),
        ("300k mojibake pairs", "Ã©".repeat(300_000)),
        ("200k entities", "&amp;".repeat(200_000)),
        ("500k digits", "7".repeat(500_000)),
    ];
    for (label, text) in &cases {
        assert!(timed(label, &tok, text) < limit, "{label} took too long");
    }
    // Doubling the input must not quadruple the time (allow noise).
    let small = timed("250k letters", &tok, &"qwertyuiop".repeat(25_000));
    let large = timed("1M letters", &tok, &"qwertyuiop".repeat(100_000));
    assert!(
        large < small * 12 + Duration::from_millis(200),
        "superlinear: {small:?} -> {large:?}"
    );
}

#[test]
fn heap_bpe_equals_reference_bpe() {
    let vocab = Vocab::openai_default().expect("embedded vocabulary");
    let words = [
        "internationalization".repeat(20),
        "a".repeat(300),
        "ab".repeat(150),
        "photographphotograph".repeat(10),
        "ℍ𝕖𝕝𝕝𝕠".repeat(40),
        "😀👍🏽".repeat(30),
    ];
    for w in &words {
        let bytes = w.as_bytes();
        let mut word: Vec<u32> = bytes[..bytes.len() - 1]
            .iter()
            .map(|&b| vocab.byte_id[b as usize])
            .collect();
        word.push(vocab.byte_end_id[bytes[bytes.len() - 1] as usize]);
        let mut a = word.clone();
        let mut b = word;
        bpe_naive(&vocab.merges, &mut a);
        bpe_heap(&vocab.merges, &mut b);
        assert_eq!(a, b, "word {w:?}");
    }
}

#[test]
fn tokenizer_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Tokenizer>();
}
