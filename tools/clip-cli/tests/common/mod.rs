//! Helpers of the `clip` binary's tests: scratch folders, a tiny model with a test
//! vocabulary, PNGs drawn at test time, running the binary, reading .npy files.
//!
//! The tiny models have a 96-token vocabulary, so texts are tokenized with a test vocabulary
//! written beside a copy of the model: every byte is one token (ids below 94), no merges.
#![allow(dead_code)]

use clip::image::Preprocessor;
use clip::ClipModel;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A fresh empty folder for one test.
pub fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("clip-cli-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A copy of a tiny fixture with a byte-level vocabulary that fits its 96 token ids.
pub fn tiny_model(dir: &Path, fixture: &str) -> PathBuf {
    let src = root().join("tests/fixtures").join(fixture);
    let m = dir.join(fixture);
    std::fs::create_dir_all(&m).unwrap();
    for f in [
        "config.json",
        "model.safetensors",
        "preprocessor_config.json",
    ] {
        std::fs::copy(src.join(f), m.join(f)).unwrap();
    }
    let chars: Vec<char> = clip_tokenizer::vocab::bytes_to_unicode()
        .into_iter()
        .map(|(_, c)| c)
        .collect();
    let mut vocab = serde_json::Map::new();
    for (i, c) in chars.iter().enumerate() {
        vocab.insert(c.to_string(), (i % 94).into());
        vocab.insert(format!("{c}</w>"), ((i + 47) % 94).into());
    }
    vocab.insert("<|startoftext|>".into(), 94.into());
    vocab.insert("<|endoftext|>".into(), 95.into());
    std::fs::write(
        m.join("vocab.json"),
        serde_json::Value::Object(vocab).to_string(),
    )
    .unwrap();
    std::fs::write(m.join("merges.txt"), "#version: 0.2\n").unwrap();
    m
}

/// Writes a `w x h` RGB PNG of a seeded pattern.
pub fn write_png(path: &Path, w: u32, h: u32, seed: u32) {
    let f = std::fs::File::create(path).unwrap();
    let mut enc = png::Encoder::new(std::io::BufWriter::new(f), w, h);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    let mut data = Vec::with_capacity((w * h * 3) as usize);
    for y in 0..h {
        for x in 0..w {
            let v = (x * 7 + y * 13 + seed * 101) ^ (seed * 37);
            data.extend([
                (v % 256) as u8,
                ((v / 3 + x) % 256) as u8,
                ((seed * 50 + y) % 256) as u8,
            ]);
        }
    }
    enc.write_header().unwrap().write_image_data(&data).unwrap();
}

/// The binary with no model discovery from the environment.
pub fn clip(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_clip"));
    c.env_remove("CLIP_MODEL")
        .env("HF_HUB_CACHE", dir.join("no-hf-cache"))
        .env_remove("HF_HOME")
        .env("HOME", dir.join("no-home"))
        .env("RUST_BACKTRACE", "1");
    c
}

pub fn run(dir: &Path, args: &[&str]) -> Output {
    clip(dir).args(args).output().unwrap()
}

pub fn ok(dir: &Path, args: &[&str]) -> String {
    let out = run(dir, args);
    assert!(
        out.status.success(),
        "clip {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs a command that must fail with exactly one line on stderr; returns that line.
pub fn fails(dir: &Path, args: &[&str]) -> String {
    let out = run(dir, args);
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success(), "clip {args:?} succeeded");
    assert_eq!(err.lines().count(), 1, "clip {args:?}: stderr {err:?}");
    assert!(err.starts_with("error: "), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    err
}

/// A float32 `.npy` as (shape, data).
pub fn read_npy(path: &Path) -> (Vec<usize>, Vec<f32>) {
    let b = std::fs::read(path).unwrap();
    let hlen = u16::from_le_bytes([b[8], b[9]]) as usize;
    let header = std::str::from_utf8(&b[10..10 + hlen]).unwrap();
    assert!(header.contains("'<f4'"));
    let shape_txt = header
        .split("'shape': (")
        .nth(1)
        .unwrap()
        .split(')')
        .next()
        .unwrap();
    let shape = shape_txt
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.trim().parse().unwrap())
        .collect();
    let data = b[10 + hlen..]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    (shape, data)
}

pub fn assert_close(a: &[f32], b: &[f32], tol: f32, what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!((x - y).abs() <= tol, "{what}[{i}]: {x} vs {y}");
    }
}

pub fn json_lines(s: &str) -> Vec<serde_json::Value> {
    s.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Library embeddings of image files with the model folder's preprocessing.
pub fn library_images(model: &ClipModel, dir: &Path, files: &[&Path]) -> clip::Embeddings {
    let pre = Preprocessor::from_model_dir(dir).unwrap();
    let pv = pre.preprocess_batch(files).unwrap();
    model.embed_pixels(&pv).unwrap()
}
