//! End-to-end tests of the `clip` binary on the tiny fixture models: outputs against the
//! library's results, the index / search / resume flow, and every error case (one stderr
//! line, non-zero exit). Test images are drawn at test time.
//!
//! The tiny models have a 96-token vocabulary, so texts are tokenized with a test vocabulary
//! written beside a copy of the model: every byte is one token (ids below 94), no merges.

use clip::image::Preprocessor;
use clip::ClipModel;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A fresh empty folder for one test.
fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("clip-cli-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A copy of a tiny fixture with a byte-level vocabulary that fits its 96 token ids.
fn tiny_model(dir: &Path, fixture: &str) -> PathBuf {
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
fn write_png(path: &Path, w: u32, h: u32, seed: u32) {
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
fn clip(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_clip"));
    c.env_remove("CLIP_MODEL")
        .env("HF_HUB_CACHE", dir.join("no-hf-cache"))
        .env_remove("HF_HOME")
        .env("HOME", dir.join("no-home"))
        .env("RUST_BACKTRACE", "1");
    c
}

fn run(dir: &Path, args: &[&str]) -> Output {
    clip(dir).args(args).output().unwrap()
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let out = run(dir, args);
    assert!(
        out.status.success(),
        "clip {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs a command that must fail with exactly one line on stderr; returns that line.
fn fails(dir: &Path, args: &[&str]) -> String {
    let out = run(dir, args);
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success(), "clip {args:?} succeeded");
    assert_eq!(err.lines().count(), 1, "clip {args:?}: stderr {err:?}");
    assert!(err.starts_with("error: "), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    err
}

/// A float32 `.npy` as (shape, data).
fn read_npy(path: &Path) -> (Vec<usize>, Vec<f32>) {
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

fn assert_close(a: &[f32], b: &[f32], tol: f32, what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!((x - y).abs() <= tol, "{what}[{i}]: {x} vs {y}");
    }
}

fn json_lines(s: &str) -> Vec<serde_json::Value> {
    s.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Library embeddings of image files with the model folder's preprocessing.
fn library_images(model: &ClipModel, dir: &Path, files: &[&Path]) -> clip::Embeddings {
    let pre = Preprocessor::from_model_dir(dir).unwrap();
    let pv = pre.preprocess_batch(files).unwrap();
    model.encode_pixels(&pv.data, files.len()).unwrap()
}

#[test]
fn embed_outputs_equal_the_library() {
    let d = scratch("embed");
    let m = tiny_model(&d, "clip-tiny");
    let (a, b) = (d.join("a.png"), d.join("b.png"));
    write_png(&a, 40, 30, 1);
    write_png(&b, 20, 28, 2);
    let model = ClipModel::load(&m).unwrap();
    let out = d.join("img.npy");
    ok(
        &d,
        &[
            "embed",
            "image",
            "--model",
            s(&m),
            s(&a),
            s(&b),
            "--out",
            s(&out),
        ],
    );
    let (shape, data) = read_npy(&out);
    assert_eq!(shape, [2, 32]);
    assert_close(
        &data,
        &library_images(&model, &m, &[&a, &b]).data,
        1e-6,
        "image",
    );

    let out = d.join("txt.npy");
    ok(
        &d,
        &[
            "embed",
            "text",
            "--model",
            s(&m),
            "--out",
            s(&out),
            "a cat",
            "two dogs",
        ],
    );
    let (shape, data) = read_npy(&out);
    assert_eq!(shape, [2, 32]);
    let want = model.encode_texts(&["a cat", "two dogs"]).unwrap();
    assert_close(&data, &want.data, 1e-6, "text");
}

#[test]
fn classify_matches_classify_pixels() {
    let d = scratch("classify");
    let m = tiny_model(&d, "clip-tiny");
    let (a, b) = (d.join("a.png"), d.join("b.png"));
    write_png(&a, 33, 21, 3);
    write_png(&b, 16, 16, 4);
    let labels = ["cat", "dog", "bird"];
    let out = ok(
        &d,
        &[
            "classify",
            s(&a),
            s(&b),
            "--labels",
            "cat, dog,bird",
            "--model",
            s(&m),
            "--json",
            "-k",
            "3",
        ],
    );
    let rows = json_lines(&out);
    assert_eq!(rows.len(), 2);
    let model = ClipModel::load(&m).unwrap();
    let pre = Preprocessor::from_model_dir(&m).unwrap();
    for (row, path) in rows.iter().zip([&a, &b]) {
        assert_eq!(row["image"], s(path));
        assert_eq!(row["random_weights"], false);
        let top = row["top"].as_array().unwrap();
        assert_eq!(top.len(), 3);
        let sum: f64 = top.iter().map(|t| t["prob"].as_f64().unwrap()).sum();
        assert!((sum - 1.0).abs() < 1e-5, "sum {sum}");
        let pv = pre.preprocess_file(path).unwrap();
        let want = model
            .classify_pixels(&pv.data, &labels, "a photo of a {}.")
            .unwrap();
        for (t, (label, p)) in top.iter().zip(&want) {
            assert_eq!(t["label"], label.as_str());
            assert!((t["prob"].as_f64().unwrap() - *p as f64).abs() < 1e-5);
        }
    }
    // The table and -k.
    let table = ok(
        &d,
        &[
            "classify",
            s(&a),
            "--labels",
            "cat,dog,bird",
            "--model",
            s(&m),
            "-k",
            "1",
        ],
    );
    assert_eq!(table.lines().count(), 2, "{table}");
    assert!(table.contains('%'));
}

#[test]
fn classify_imagenet_ensemble_averages_normalised_templates() {
    let d = scratch("ensemble");
    let m = tiny_model(&d, "clip-tiny");
    let a = d.join("a.png");
    write_png(&a, 24, 24, 5);
    let out = ok(
        &d,
        &[
            "classify",
            s(&a),
            "--labels",
            "cat,dog",
            "--templates",
            "imagenet",
            "--model",
            s(&m),
            "--json",
        ],
    );
    let row = &json_lines(&out)[0];
    let model = ClipModel::load(&m).unwrap();
    let image = library_images(&model, &m, &[&a]);
    let classes: Vec<f32> = ["cat", "dog"]
        .iter()
        .flat_map(|label| {
            let prompts: Vec<String> = templates()
                .iter()
                .map(|t| t.replacen("{}", label, 1))
                .collect();
            let e = model.encode_texts(&prompts).unwrap();
            let mut mean = vec![0f32; e.dim];
            for r in 0..e.rows {
                mean.iter_mut()
                    .zip(e.row(r))
                    .for_each(|(m, v)| *m += v / e.rows as f32);
            }
            let norm = mean.iter().map(|v| v * v).sum::<f32>().sqrt();
            mean.into_iter().map(move |v| v / norm)
        })
        .collect();
    let classes = clip::Embeddings {
        data: classes,
        rows: 2,
        dim: 32,
    };
    let probs = model.logits(&image, &classes).unwrap().probs_per_image();
    for t in row["top"].as_array().unwrap() {
        let i = if t["label"] == "cat" { 0 } else { 1 };
        assert!((t["prob"].as_f64().unwrap() - probs[i] as f64).abs() < 1e-5);
    }
}

/// The 80 templates, read back from the source so the test does not restate them.
fn templates() -> Vec<String> {
    let src =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/templates.rs"))
            .unwrap();
    let t: Vec<String> = src
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with('"') && l.ends_with("\","))
        .map(|l| l[1..l.len() - 2].to_string())
        .collect();
    assert_eq!(t.len(), 80);
    t
}

#[test]
fn similarity_is_the_cosine_or_logit_matrix() {
    let d = scratch("similarity");
    let m = tiny_model(&d, "clip-tiny");
    let (a, b) = (d.join("a.png"), d.join("b.png"));
    write_png(&a, 30, 20, 6);
    write_png(&b, 20, 30, 7);
    let texts = ["a cat", "a dog", "a bird"];
    let model = ClipModel::load(&m).unwrap();
    let img = library_images(&model, &m, &[&a, &b]);
    let txt = model.encode_texts(&texts).unwrap();
    let logits = model.logits(&img, &txt).unwrap();
    let scale = model.logit_scale.exp();
    for (flag, kind) in [(None, "cosine"), (Some("--logits"), "logits")] {
        let mut args = vec![
            "similarity",
            "--model",
            s(&m),
            "--images",
            s(&a),
            s(&b),
            "--texts",
        ];
        args.extend(texts);
        args.push("--json");
        args.extend(flag);
        let v: serde_json::Value = serde_json::from_str(&ok(&d, &args)).unwrap();
        assert_eq!(v["kind"], kind);
        let got: Vec<f32> = v["matrix"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|r| {
                r.as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_f64().unwrap() as f32)
            })
            .collect();
        assert_eq!(got.len(), 6);
        let want: Vec<f32> = match kind {
            "logits" => logits.per_image.clone(),
            _ => logits.per_image.iter().map(|l| l / scale).collect(),
        };
        assert_close(&got, &want, 1e-4, kind);
    }
    let table = ok(
        &d,
        &[
            "similarity",
            "--model",
            s(&m),
            "--images",
            s(&a),
            "--texts",
            "a cat",
            "a dog",
        ],
    );
    assert_eq!(table.lines().count(), 3, "{table}");
}

/// `indexed N new, M already indexed, S skipped; ...` as (N, M, S).
fn summary(out: &str) -> (usize, usize, usize) {
    let nums: Vec<usize> = out
        .split(|c: char| !c.is_ascii_digit())
        .filter(|t| !t.is_empty())
        .take(3)
        .map(|t| t.parse().unwrap())
        .collect();
    (nums[0], nums[1], nums[2])
}

#[test]
fn index_resumes_and_search_ranks() {
    let d = scratch("index");
    let m = tiny_model(&d, "clip-tiny");
    let photos = d.join("photos");
    std::fs::create_dir_all(photos.join("sub/deeper")).unwrap();
    let files = [
        photos.join("a.png"),
        photos.join("sub/b.png"),
        photos.join("sub/deeper/c.PNG"),
        photos.join("d.png"),
    ];
    // An interrupted first run: only half the images were there.
    write_png(&files[0], 20, 20, 10);
    write_png(&files[1], 30, 20, 11);
    let idx = d.join("photos.index");
    let out = ok(
        &d,
        &[
            "index",
            s(&photos),
            "--out",
            s(&idx),
            "--model",
            s(&m),
            "--batch",
            "1",
        ],
    );
    assert_eq!(summary(&out), (2, 0, 0), "{out}");
    // The rest, and an unreadable file.
    write_png(&files[2], 17, 25, 12);
    write_png(&files[3], 25, 17, 13);
    std::fs::write(photos.join("broken.jpg"), b"not a jpeg").unwrap();
    std::fs::write(photos.join("notes.txt"), b"ignored").unwrap();
    let run2 = run(
        &d,
        &[
            "index",
            s(&photos),
            "--out",
            s(&idx),
            "--model",
            s(&m),
            "--batch",
            "3",
        ],
    );
    assert!(run2.status.success());
    let err = String::from_utf8_lossy(&run2.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("warning: skipping") && err.contains("broken.jpg"),
        "{err}"
    );
    let out = String::from_utf8(run2.stdout).unwrap();
    assert_eq!(summary(&out), (2, 2, 1), "{out}");
    assert!(out.contains("holds 4 images"), "{out}");

    // The stored rows are the library's embeddings of the stored paths.
    let paths: Vec<PathBuf> = std::fs::read_to_string(idx.join("paths.txt"))
        .unwrap()
        .lines()
        .map(PathBuf::from)
        .collect();
    assert_eq!(paths.len(), 4);
    let (shape, data) = read_npy(&idx.join("embeddings.npy"));
    assert_eq!(shape, [4, 32]);
    let model = ClipModel::load(&m).unwrap();
    let refs: Vec<&Path> = paths.iter().map(PathBuf::as_path).collect();
    assert_close(
        &data,
        &library_images(&model, &m, &refs).data,
        1e-6,
        "index rows",
    );

    // Nothing is redone; a stop between the two renames of a save, or with rows in the
    // journal, loses nothing but unfinished work.
    let out = ok(
        &d,
        &["index", s(&photos), "--out", s(&idx), "--model", s(&m)],
    );
    assert_eq!(summary(&out), (0, 4, 1), "{out}");
    let lines: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    std::fs::write(
        idx.join("paths.txt"),
        format!("{}\n", lines[..3].join("\n")),
    )
    .unwrap();
    let npy = std::fs::read(idx.join("embeddings.npy")).unwrap();
    let row3 = &npy[npy.len() - 32 * 4..];
    std::fs::write(idx.join("pending.f32"), row3).unwrap();
    std::fs::write(
        idx.join("pending.txt"),
        format!("{}\n{}", lines[3], lines[0]),
    )
    .unwrap();
    let out = ok(
        &d,
        &["index", s(&photos), "--out", s(&idx), "--model", s(&m)],
    );
    assert_eq!(summary(&out), (0, 4, 1), "{out}");
    assert!(!idx.join("pending.txt").exists());
    let (shape, data2) = read_npy(&idx.join("embeddings.npy"));
    assert_eq!(shape, [4, 32]);
    assert_eq!(data, data2);

    // Search by an example image finds it first; by text, k results in descending order.
    let out = ok(
        &d,
        &[
            "search",
            s(&idx),
            "--image",
            s(&files[2]),
            "--model",
            s(&m),
            "--json",
            "-k",
            "2",
        ],
    );
    let hits = json_lines(&out);
    assert_eq!(hits.len(), 2);
    assert_eq!(
        hits[0]["path"],
        s(&std::fs::canonicalize(&files[2]).unwrap())
    );
    assert!((hits[0]["score"].as_f64().unwrap() - 1.0).abs() < 1e-5);
    let out = ok(
        &d,
        &[
            "search",
            s(&idx),
            "a red square",
            "--model",
            s(&m),
            "-k",
            "3",
        ],
    );
    let scores: Vec<f32> = out
        .lines()
        .map(|l| l.split_whitespace().next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(scores.len(), 3);
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{out}");
    let q = model.encode_texts(&["a red square"]).unwrap();
    let best = (0..4)
        .map(|i| {
            data[i * 32..(i + 1) * 32]
                .iter()
                .zip(q.row(0))
                .map(|(a, b)| a * b)
                .sum::<f32>()
        })
        .fold(f32::MIN, f32::max);
    assert!((scores[0] - best).abs() < 1e-3);

    // Another model may not use this index.
    let m2 = tiny_model(&d, "clip-tiny2");
    let e = fails(
        &d,
        &["index", s(&photos), "--out", s(&idx), "--model", s(&m2)],
    );
    assert!(e.contains("was made with"), "{e}");
    let e = fails(&d, &["search", s(&idx), "a cat", "--model", s(&m2)]);
    assert!(e.contains("was made with"), "{e}");
}

#[test]
fn bad_input_is_one_line_and_a_failure() {
    let d = scratch("errors");
    let m = tiny_model(&d, "clip-tiny");
    let a = d.join("a.png");
    write_png(&a, 20, 20, 20);
    let junk = d.join("junk.png");
    std::fs::write(&junk, b"not a png").unwrap();
    let e = fails(&d, &["classify", s(&a), "--labels", "", "--model", s(&m)]);
    assert!(e.contains("--labels"), "{e}");
    fails(
        &d,
        &["classify", s(&a), "--labels", " , ", "--model", s(&m)],
    );
    let e = fails(
        &d,
        &[
            "classify",
            s(&a),
            "--labels",
            "cat",
            "--template",
            "a photo",
            "--model",
            s(&m),
        ],
    );
    assert!(e.contains("{}"), "{e}");
    let e = fails(
        &d,
        &[
            "classify",
            s(&junk),
            "--labels",
            "cat,dog",
            "--model",
            s(&m),
        ],
    );
    assert!(e.contains("junk.png"), "{e}");
    let e = fails(
        &d,
        &[
            "classify",
            s(&d.join("missing.png")),
            "--labels",
            "cat",
            "--model",
            s(&m),
        ],
    );
    assert!(e.contains("missing.png"), "{e}");
    for args in [
        vec!["classify", s(&a), "--labels", "cat,dog"],
        vec!["similarity", "--images", s(&a), "--texts", "a cat"],
        vec!["embed", "text", "--out", "x.npy", "a cat"],
        vec!["search", s(&d), "a cat"],
    ] {
        let e = fails(&d, &args);
        assert!(
            e.contains("no CLIP model found") || e.contains("not an index"),
            "{args:?}: {e}"
        );
    }
    let e = fails(&d, &["classify", s(&a), "--labels", "cat,dog"]);
    assert!(
        e.contains("--random-weights") && e.contains("huggingface.co"),
        "{e}"
    );
    let e = fails(
        &d,
        &[
            "similarity",
            "--images",
            s(&junk),
            "--texts",
            "a",
            "--model",
            s(&m),
        ],
    );
    assert!(e.contains("junk.png"), "{e}");
    let e = fails(
        &d,
        &[
            "index",
            s(&d.join("nowhere")),
            "--out",
            s(&d.join("i")),
            "--model",
            s(&m),
        ],
    );
    assert!(e.contains("nowhere"), "{e}");
    let e = fails(
        &d,
        &["search", s(&d.join("nowhere")), "a cat", "--model", s(&m)],
    );
    assert!(e.contains("not an index"), "{e}");
    fails(
        &d,
        &[
            "classify",
            s(&a),
            "--labels",
            "cat",
            "--model",
            s(&d.join("no-model")),
        ],
    );
}

#[test]
fn every_command_has_help_with_examples() {
    let d = scratch("help");
    let all = [
        "demo",
        "classify",
        "similarity",
        "index",
        "search",
        "embed",
        "bench",
        "preprocess",
        "tokenize",
    ];
    assert!(ok(&d, &["--help"]).contains("Examples:"));
    for cmd in all {
        let out = ok(&d, &[cmd, "--help"]);
        assert!(out.contains("Examples:"), "{cmd}: {out}");
    }
    for cmd in [
        "demo",
        "classify",
        "similarity",
        "index",
        "search",
        "preprocess",
        "tokenize",
    ] {
        let out = ok(&d, &[cmd, "--help"]);
        assert!(out.contains("--threads"), "{cmd}");
    }
    for cmd in ["demo", "classify", "similarity", "index", "search"] {
        let out = ok(&d, &[cmd, "--help"]);
        assert!(out.contains("--random-weights"), "{cmd}");
    }
    for cmd in [["embed", "image"], ["embed", "text"]] {
        let out = ok(&d, &[cmd[0], cmd[1], "--help"]);
        assert!(
            out.contains("--threads") && out.contains("--random-weights"),
            "{cmd:?}"
        );
    }
    // Usage errors are one line too.
    let e = fails(&d, &["classify", "a.png"]);
    assert!(e.contains("--labels"), "{e}");
    fails(&d, &["search", "idx", "q", "-k", "many"]);
    fails(&d, &["similarity", "--images"]);
}

#[test]
fn demo_runs_on_a_model_folder() {
    let d = scratch("demo");
    let m = tiny_model(&d, "clip-tiny");
    let out = ok(&d, &["demo", "--model", s(&m), "--threads", "1"]);
    for want in [
        "cosine",
        "probability",
        "a red ball on green grass",
        "image encode",
        "text encode",
        "load model",
        "preprocess",
    ] {
        assert!(out.contains(want), "{want}: {out}");
    }
    assert!(!out.contains("random weights"));
}

/// Random weights: slow-ish (a full-size model), so one test covers the demo fallback and
/// the JSON flag of a command.
#[test]
fn random_weights_say_so() {
    let d = scratch("random");
    let out = run(&d, &["demo"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("note: random weights: outputs are meaningless"),
        "{err}"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("random weights"));
    let a = d.join("a.png");
    write_png(&a, 30, 30, 30);
    let out = run(
        &d,
        &[
            "classify",
            s(&a),
            "--labels",
            "cat,dog",
            "--random-weights",
            "--json",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("note: random weights"));
    let row = &json_lines(&String::from_utf8(out.stdout).unwrap())[0];
    assert_eq!(row["random_weights"], true);
}
