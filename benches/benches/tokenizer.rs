//! Tokenizer throughput, tokens/s, side by side with `instant-clip-tokenizer`
//! and the Hugging Face `tokenizers` crate loaded with the same vocabulary
//! and CLIP's normalizer/pre-tokenizer (as in HF's CLIP tokenizer.json).
//!
//! Data: the reference corpus of `crates/tokenizer/tests/fixtures` — its
//! plain-ASCII lines ("English prose": docstrings, man pages, READMEs) and
//! all of it ("mixed": accents, CJK, emoji, entities, mojibake, ...).
//! Throughput counts our tokens for every contender (theirs differ slightly:
//! neither does ftfy, the HF one skips the double `html.unescape` too).
//!
//! `cargo bench -p clip-benches --bench tokenizer` runs criterion groups;
//! `cargo bench -p clip-benches --bench tokenizer -- --table [--rounds R]`
//! prints interleaved medians (A B C A B C ... so machine noise hits all).

use std::io::Read;
use std::time::Instant;

use clip_tokenizer::vocab::{bytes_to_unicode, gunzip, DEFAULT_MERGES_GZ, MAX_MERGES};
use criterion::{black_box, Criterion, Throughput};
use rayon::prelude::*;

type Hf = tokenizers::Tokenizer;

fn corpus() -> Vec<String> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../crates/tokenizer/tests/fixtures/tokenizer_reference.jsonl.gz"
    );
    let raw = std::fs::read(path).expect("tokenizer fixture");
    let mut s = String::new();
    flate2_free_gunzip(&raw, &mut s);
    s.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["t"].as_str().map(str::to_string))
        .collect()
}

fn flate2_free_gunzip(raw: &[u8], out: &mut String) {
    let bytes = gunzip(raw).expect("gzip fixture");
    std::io::Cursor::new(bytes)
        .read_to_string(out)
        .expect("UTF-8 fixture");
}

/// OpenAI's vocabulary as strings, built as `SimpleTokenizer.__init__` does.
fn openai_vocab() -> (Vec<String>, Vec<(String, String)>) {
    let text = String::from_utf8(gunzip(DEFAULT_MERGES_GZ).expect("embedded gz")).expect("UTF-8");
    let b2u = bytes_to_unicode();
    let mut vocab: Vec<String> = b2u.iter().map(|&(_, c)| c.to_string()).collect();
    vocab.extend(b2u.iter().map(|&(_, c)| format!("{c}</w>")));
    let mut merges = Vec::new();
    for line in text.split('\n').skip(1).take(MAX_MERGES) {
        if let Some((a, b)) = line.split_once(' ') {
            vocab.push(format!("{a}{b}"));
            merges.push((a.to_string(), b.to_string()));
        }
    }
    vocab.push("<|startoftext|>".into());
    vocab.push("<|endoftext|>".into());
    (vocab, merges)
}

fn hf_tokenizer() -> Hf {
    use tokenizers::models::bpe::BPE;
    use tokenizers::normalizers::{
        replace::Replace, unicode::NFC, utils::Lowercase, utils::Sequence,
    };
    use tokenizers::pre_tokenizers::byte_level::ByteLevel;
    use tokenizers::pre_tokenizers::sequence::Sequence as PreSequence;
    use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
    use tokenizers::SplitDelimiterBehavior;
    let (vocab, merges) = openai_vocab();
    let map: tokenizers::models::bpe::Vocab = vocab
        .into_iter()
        .enumerate()
        .map(|(i, s)| (s, i as u32))
        .collect();
    let bpe = BPE::builder()
        .vocab_and_merges(map, merges)
        .end_of_word_suffix("</w>".into())
        .build()
        .expect("BPE builds");
    let mut tk = Hf::new(bpe);
    let ws = Replace::new(
        tokenizers::normalizers::replace::ReplacePattern::Regex(r"\s+".into()),
        " ",
    )
    .expect("regex");
    tk.with_normalizer(Some(Sequence::new(vec![
        NFC.into(),
        ws.into(),
        Lowercase.into(),
    ])));
    let pat = r"<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+";
    let split = Split::new(
        SplitPattern::Regex(pat.into()),
        SplitDelimiterBehavior::Removed,
        true,
    )
    .expect("regex");
    tk.with_pre_tokenizer(Some(PreSequence::new(vec![
        split.into(),
        ByteLevel::new(false, true, false).into(),
    ])));
    tk
}

struct Contenders {
    ours: clip_tokenizer::Tokenizer,
    instant: instant_clip_tokenizer::Tokenizer,
    hf: Hf,
}

impl Contenders {
    fn new() -> Self {
        Contenders {
            ours: clip_tokenizer::Tokenizer::new().expect("vocabulary"),
            instant: instant_clip_tokenizer::Tokenizer::new(),
            hf: hf_tokenizer(),
        }
    }

    /// Runs contender `which` over `texts`; `batch` uses all rayon threads.
    fn run(&self, which: &str, texts: &[String], batch: bool) -> usize {
        match (which, batch) {
            ("clip-tokenizer", false) => texts.iter().map(|t| self.ours.encode(t).len()).sum(),
            ("clip-tokenizer", true) => self.ours.encode_batch(texts).iter().map(Vec::len).sum(),
            ("instant-clip-tokenizer", false) => {
                let mut out = Vec::new();
                texts
                    .iter()
                    .map(|t| {
                        out.clear();
                        self.instant.encode(t, &mut out);
                        out.len()
                    })
                    .sum()
            }
            ("instant-clip-tokenizer", true) => texts
                .par_iter()
                .map(|t| {
                    let mut out = Vec::new();
                    self.instant.encode(t, &mut out);
                    out.len()
                })
                .sum(),
            ("tokenizers", false) => texts
                .iter()
                .map(|t| self.hf.encode(t.as_str(), false).map_or(0, |e| e.len()))
                .sum(),
            (_, _) => {
                let v: Vec<&str> = texts.iter().map(String::as_str).collect();
                self.hf
                    .encode_batch(v, false)
                    .map_or(0, |e| e.iter().map(|x| x.len()).sum())
            }
        }
    }
}

const NAMES: [&str; 3] = ["clip-tokenizer", "instant-clip-tokenizer", "tokenizers"];

fn datasets() -> Vec<(&'static str, Vec<String>)> {
    let all = corpus();
    let prose: Vec<String> = all.iter().filter(|t| t.is_ascii()).cloned().collect();
    vec![("english_prose", prose), ("mixed_corpus", all)]
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn table(rounds: usize) {
    let c = Contenders::new();
    println!("interleaved medians of {rounds} rounds; tokens = clip-tokenizer's count\n");
    println!("| data | mode | contender | M tokens/s | MB/s |\n|---|---|---|---|---|");
    for (name, texts) in datasets() {
        let tokens = c.run(NAMES[0], &texts, false) as f64;
        let bytes: f64 = texts.iter().map(|t| t.len() as f64).sum();
        for batch in [false, true] {
            let mut times = vec![Vec::new(); NAMES.len()];
            for _ in 0..rounds {
                for (i, who) in NAMES.iter().enumerate() {
                    let t0 = Instant::now();
                    black_box(c.run(who, &texts, batch));
                    times[i].push(t0.elapsed().as_secs_f64());
                }
            }
            for (i, who) in NAMES.iter().enumerate() {
                let t = median(std::mem::take(&mut times[i]));
                let mode = if batch { "batch" } else { "single" };
                println!(
                    "| {name} | {mode} | {who} | {:.2} | {:.1} |",
                    tokens / t / 1e6,
                    bytes / t / 1e6
                );
            }
        }
    }
}

fn bench(cr: &mut Criterion) {
    let c = Contenders::new();
    for (name, texts) in datasets() {
        let tokens = c.run(NAMES[0], &texts, false) as u64;
        for batch in [false, true] {
            let mode = if batch { "batch" } else { "single" };
            let mut g = cr.benchmark_group(format!("tokenizer/{name}/{mode}"));
            g.throughput(Throughput::Elements(tokens)).sample_size(10);
            for who in NAMES {
                g.bench_function(who, |b| b.iter(|| black_box(c.run(who, &texts, batch))));
            }
            g.finish();
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--table") {
        let rounds = args
            .iter()
            .position(|a| a == "--rounds")
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(11);
        table(rounds);
        return;
    }
    let mut cr = Criterion::default().configure_from_args();
    bench(&mut cr);
    cr.final_summary();
}
