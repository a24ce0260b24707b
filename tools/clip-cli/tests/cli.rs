//! End-to-end tests of the `clip` binary on the tiny fixture models: outputs against the
//! library's results, every error case (one stderr line, non-zero exit), help, and random
//! weights. The index / search / resume flow is in `index.rs`. Test images are drawn at
//! test time.

mod common;

use clip::{ClipModel, Truncation};
use common::*;
use std::path::Path;

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
        library_images(&model, &m, &[&a, &b]).as_slice(),
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
    let want = model
        .embed_texts(&["a cat", "two dogs"], Truncation::Refuse)
        .unwrap();
    assert_close(&data, want.as_slice(), 1e-6, "text");
}

#[test]
fn classify_matches_library_probabilities() {
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
    let prompts: Vec<String> = labels
        .iter()
        .map(|l| format!("a photo of a {l}."))
        .collect();
    // One template: the class embedding is the prompt's (renormalised) embedding.
    let texts = model.embed_texts(&prompts, Truncation::Refuse).unwrap();
    for (row, path) in rows.iter().zip([&a, &b]) {
        assert_eq!(row["image"], s(path));
        assert_eq!(row["random_weights"], false);
        let top = row["top"].as_array().unwrap();
        assert_eq!(top.len(), 3);
        let sum: f64 = top.iter().map(|t| t["prob"].as_f64().unwrap()).sum();
        assert!((sum - 1.0).abs() < 1e-5, "sum {sum}");
        let image = library_images(&model, &m, &[path]);
        let probs = model.similarity(&image, &texts).unwrap().probs();
        let mut want: Vec<(&str, f32)> = labels.iter().copied().zip(probs).collect();
        want.sort_by(|x, y| y.1.total_cmp(&x.1));
        for (t, (label, p)) in top.iter().zip(&want) {
            assert_eq!(t["label"], *label);
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
            let e = model.embed_texts(&prompts, Truncation::Refuse).unwrap();
            let mut mean = vec![0f32; e.dim()];
            for r in 0..e.rows() {
                mean.iter_mut()
                    .zip(e.row(r))
                    .for_each(|(m, v)| *m += v / e.rows() as f32);
            }
            let norm = mean.iter().map(|v| v * v).sum::<f32>().sqrt();
            mean.into_iter().map(move |v| v / norm)
        })
        .collect();
    let classes = clip::Embeddings::from_unnormalized(classes, 2, 32).unwrap();
    let probs = model.similarity(&image, &classes).unwrap().probs();
    for t in row["top"].as_array().unwrap() {
        let i = if t["label"] == "cat" { 0 } else { 1 };
        assert!((t["prob"].as_f64().unwrap() - probs[i] as f64).abs() < 1e-5);
    }
}

/// The 80 templates, read back from the source so the test does not restate them.
fn templates() -> Vec<String> {
    let src = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../crates/clip/src/templates.rs"),
    )
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
    let txt = model.embed_texts(&texts, Truncation::Refuse).unwrap();
    // The reference: dot products in f64 of the library's embeddings, independent of the
    // similarity code the command goes through.
    let cosine: Vec<f32> = img
        .iter()
        .flat_map(|a| {
            txt.iter().map(move |b| {
                a.iter()
                    .zip(b)
                    .map(|(x, y)| f64::from(*x) * f64::from(*y))
                    .sum::<f64>() as f32
            })
        })
        .collect();
    let scale = model.logit_scale().exp();
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
            "logits" => cosine.iter().map(|c| c * scale).collect(),
            _ => cosine.clone(),
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

/// `clip quantize` writes a folder that embeds as the int8 load of its source (bitwise:
/// through the library on both folders), and `--precision int8` is accepted everywhere.
#[test]
fn quantize_writes_a_folder_that_loads_in_int8() {
    let d = scratch("quantize");
    let m = tiny_model(&d, "clip-tiny");
    let q = d.join("q");
    let out = ok(&d, &["quantize", s(&m), "--out", s(&q)]);
    assert!(
        out.contains("quantised") && out.contains("weights to int8"),
        "{out}"
    );
    let int8 = clip::LoadOptions::new().precision(clip::Precision::Int8);
    let want = ClipModel::load_with(&m, &int8)
        .unwrap()
        .embed_texts(&["a cat"], Truncation::Refuse)
        .unwrap();
    let got = ClipModel::load(&q)
        .unwrap()
        .embed_texts(&["a cat"], Truncation::Refuse)
        .unwrap();
    assert_eq!(got, want);
    let npy = d.join("t.npy");
    ok(
        &d,
        &[
            "embed",
            "text",
            "--model",
            s(&m),
            "--precision",
            "int8",
            "--out",
            s(&npy),
            "a cat",
        ],
    );
    assert_eq!(read_npy(&npy).1, want.as_slice());
    // Twice is refused; a missing folder too; one line each.
    let e = fails(&d, &["quantize", s(&q), "--out", s(&d.join("q2"))]);
    assert!(e.contains("already quantised"), "{e}");
    fails(
        &d,
        &["quantize", s(&d.join("nowhere")), "--out", s(&d.join("q3"))],
    );
    let e = fails(&d, &["bench", "--precision", "int4"]);
    assert!(e.contains("int8"), "{e}");
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
        "quantize",
        "embed-shards",
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
    for cmd in [
        "demo",
        "classify",
        "similarity",
        "index",
        "search",
        "embed-shards",
    ] {
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

/// Runs a random-weights command: it succeeds and says so on stderr; returns stdout.
fn random_ok(dir: &Path, args: &[&str]) -> String {
    let out = run(dir, args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "clip {args:?}: {err}");
    assert!(
        err.contains("note: random weights: outputs are meaningless"),
        "clip {args:?}: {err}"
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Random weights (a full-size model, ~2 s a load): the demo's fallback, and every JSON
/// output says `"random_weights": true`.
#[test]
fn random_weights_say_so() {
    let d = scratch("random");
    let out = random_ok(&d, &["demo"]);
    assert!(out.contains("random weights"), "{out}");
    let photos = d.join("photos");
    std::fs::create_dir_all(&photos).unwrap();
    let a = photos.join("a.png");
    write_png(&a, 30, 30, 30);
    let r = "--random-weights";
    let out = random_ok(&d, &["classify", s(&a), "--labels", "cat,dog", r, "--json"]);
    assert_eq!(json_lines(&out)[0]["random_weights"], true);
    let out = random_ok(
        &d,
        &["similarity", "--images", s(&a), "--texts", "a", r, "--json"],
    );
    assert_eq!(json_lines(&out)[0]["random_weights"], true);
    let idx = d.join("idx");
    random_ok(&d, &["index", s(&photos), "--out", s(&idx), r]);
    let out = random_ok(&d, &["search", s(&idx), "a cat", r, "--json"]);
    assert_eq!(json_lines(&out)[0]["random_weights"], true);
    // Without model options, search uses the index's model (here random weights); with
    // another model it is refused before any model is loaded.
    let out = random_ok(&d, &["search", s(&idx), "a cat", "--json"]);
    assert_eq!(json_lines(&out)[0]["random_weights"], true);
    let m = tiny_model(&d, "clip-tiny");
    let e = fails(&d, &["search", s(&idx), "a cat", "--model", s(&m)]);
    assert!(e.contains("--random-weights"), "{e}");
}

/// The model is found through CLIP_MODEL, then HF_HUB_CACHE, then HF_HOME/hub.
#[test]
fn model_discovery_order() {
    let d = scratch("discovery");
    let m = tiny_model(&d, "clip-tiny");
    let a = d.join("a.png");
    write_png(&a, 20, 20, 40);
    let args = ["similarity", "--images", s(&a), "--texts", "a", "--json"];
    let check = |c: &mut std::process::Command| {
        let out = c.args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["random_weights"], false);
    };
    check(clip(&d).env("CLIP_MODEL", &m));
    let snap = d.join("hub/models--openai--clip-vit-base-patch32/snapshots/0123abcd");
    std::fs::create_dir_all(snap.parent().unwrap()).unwrap();
    std::fs::rename(&m, &snap).unwrap();
    check(clip(&d).env("HF_HUB_CACHE", d.join("hub")));
    check(clip(&d).env_remove("HF_HUB_CACHE").env("HF_HOME", &d));
    let out = clip(&d)
        .env("CLIP_MODEL", d.join("missing"))
        .args(args)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("CLIP_MODEL"));
}
