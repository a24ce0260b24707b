//! A short run of every fuzz target in CI: each over its committed seed corpus, then over
//! a few thousand deterministic mutations of it (byte flips, truncations, length-field
//! edits). The campaigns themselves run with AFL++ (`tools/fuzz.sh`), not here.
//!
//! Decoders run under `catch_unwind` in the library, so a panic hook counts panics to
//! prove none happens at all, caught or not.

use clip_fuzz::{seeds, split_config, Target};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

static PANICS: AtomicUsize = AtomicUsize::new(0);
/// Tests share the process-wide panic hook; they take turns.
static HOOK: Mutex<()> = Mutex::new(());

fn corpus(target: Target) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(target.corpus_dir())
        .expect("the corpus folder is committed")
        .map(|e| {
            let p = e.expect("a directory entry").path();
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            (name, std::fs::read(&p).expect("a seed file"))
        })
        .collect();
    v.sort();
    v
}

/// Deterministic mutations of `seed`: `n` of them, seeded by `salt`.
fn mutations(seed: &[u8], n: usize, salt: u64) -> Vec<Vec<u8>> {
    let mut state = salt.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let interesting: [u64; 8] = [0, 1, 0x7f, 0xff, 0xffff, 1 << 31, u64::MAX, u64::MAX / 2];
    (0..n)
        .map(|_| {
            let mut m = seed.to_vec();
            if m.is_empty() {
                return vec![(next() & 0xff) as u8];
            }
            for _ in 0..1 + next() % 3 {
                let i = (next() as usize) % m.len();
                match next() % 5 {
                    0 => m[i] ^= 1 << (next() % 8),
                    1 => m[i] = interesting[(next() % 8) as usize] as u8,
                    2 => m.truncate(i.max(1)),
                    3 => {
                        let v = interesting[(next() % 8) as usize].to_le_bytes();
                        let end = (i + 8).min(m.len());
                        m[i..end].copy_from_slice(&v[..end - i]);
                    }
                    _ => {
                        let j = (next() as usize) % m.len();
                        let (a, b) = (i.min(j), i.max(j));
                        let chunk = m[a..b].to_vec();
                        m.splice(b..b, chunk);
                    }
                }
                if m.is_empty() {
                    break;
                }
            }
            m
        })
        .collect()
}

fn run_all(target: Target, per_seed: usize) -> usize {
    let _turn = HOOK.lock().unwrap_or_else(|e| e.into_inner());
    PANICS.store(0, Ordering::SeqCst);
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(|info| {
        PANICS.fetch_add(1, Ordering::SeqCst);
        eprintln!("panic: {info}");
    }));
    let seeds = corpus(target);
    let mut runs = 0;
    for (k, (name, seed)) in seeds.iter().enumerate() {
        let mut inputs = vec![seed.clone()];
        inputs.extend(mutations(seed, per_seed, k as u64 + 1));
        for input in &inputs {
            if std::panic::catch_unwind(|| target.run(input)).is_err() {
                eprintln!("{}: a mutation of seed {name} failed", target.name());
            }
            runs += 1;
        }
    }
    std::panic::set_hook(previous);
    assert_eq!(
        PANICS.load(Ordering::SeqCst),
        0,
        "{}: panics on seeds or their mutations",
        target.name()
    );
    assert!(runs > seeds.len(), "no mutations ran");
    runs
}

#[test]
fn weights_target_over_its_corpus() {
    eprintln!("weights: {} runs", run_all(Target::Weights, 300));
}

#[test]
fn image_target_over_its_corpus() {
    eprintln!("image: {} runs", run_all(Target::Image, 200));
}

#[test]
fn tokenizer_target_over_its_corpus() {
    eprintln!("tokenizer: {} runs", run_all(Target::Tokenizer, 500));
}

/// The committed seeds are the generated ones, and every weights seed with a config loads a
/// model (so the fuzzer starts from inputs that reach the forward passes); those without are
/// refused (their shapes are no OpenAI release).
#[test]
fn committed_seeds_are_current_and_load() {
    let committed = corpus(Target::Weights);
    let mut generated = seeds::weights_seeds();
    generated.sort();
    assert_eq!(
        committed, generated,
        "run `cargo run -p clip-fuzz -- seeds`"
    );
    let mut texts = seeds::tokenizer_seeds();
    texts.sort();
    assert_eq!(corpus(Target::Tokenizer), texts);
    for (name, bytes) in &generated {
        let (config, st) = split_config(bytes);
        let opts = clip::LoadOptions::new().threads(1);
        let loaded = clip::ClipModel::from_safetensors_bytes(st.to_vec(), config, &opts);
        if name.ends_with("_no_config") {
            let e = loaded.err().map(|e| e.to_string()).unwrap_or_default();
            assert!(e.contains("none of OpenAI's releases"), "{name}: {e}");
            continue;
        }
        let model = loaded.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(model.config().projection_dim, 4, "{name}");
    }
    let images = corpus(Target::Image);
    assert!(images.len() >= 10);
    for seed in seeds::image_seeds() {
        assert!(
            images.contains(&seed),
            "{} missing or stale: run `cargo run -p clip-fuzz -- seeds`",
            seed.0
        );
    }
}

/// The generated image seeds reach what they were built for (with the fuzz pixel limit).
#[test]
fn image_seeds_reach_their_construction() {
    use clip::image::{decode_bytes, DecodeOptions, Error};
    let opts = DecodeOptions {
        max_pixels: clip_fuzz::FUZZ_MAX_PIXELS,
        ..Default::default()
    };
    for (name, bytes) in seeds::image_seeds() {
        let jpeg = match bytes.strip_prefix(&clip_fuzz::jpeg_recipe::MAGIC[..]) {
            Some(recipe) => clip_fuzz::jpeg_recipe::serialise(recipe),
            None => bytes,
        };
        let r = decode_bytes(&jpeg, std::path::Path::new(&name), &opts);
        let stem = name.split('.').next().unwrap();
        let kind = stem.split_once('_').unwrap().1;
        let ok = match (kind, &r) {
            ("multi_sof", Err(Error::CorruptImage { reason, .. })) => {
                reason.contains("more than one frame header")
            }
            ("desync", Err(Error::TooManyPixels { width, height, .. })) => {
                (*width, *height) == (4000, 300)
            }
            ("scans_400", Ok(img)) => (img.width, img.height) == (256, 256),
            ("scans_600", Err(Error::LimitExceeded { what, .. })) => *what == "scans",
            ("dnl", Err(Error::ZeroSizedImage { .. })) => true,
            ("marker_in_data", Err(Error::TruncatedImage { .. })) => true,
            ("progressive_cmyk", Ok(img)) => (img.width, img.height) == (64, 48),
            ("stray_ff00", Ok(img)) => (img.width, img.height) == (1, 1),
            _ => false,
        };
        assert!(ok, "{name}: {:?}", r.map(|i| (i.width, i.height)));
    }
}
