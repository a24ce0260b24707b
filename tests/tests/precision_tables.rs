//! The accuracy cost of the low-precision paths, as the tables of `docs/numerics.md`: for
//! each model folder named by `CLIP_PRECISION_TABLE` (comma-separated, made by
//! `tools/reference/make_reference.py` and `inject_outliers.py`), the cosine of every hidden
//! state (per row: one token of one input), of the pooled outputs and of the embeddings to
//! PyTorch's f32 reference, for the f32 path, bf16 with the dot kernel (where the CPU has
//! one), bf16 with the conversion kernel, and int8. Prints a markdown table per folder and
//! asserts the bounds at the embeddings: bf16-dot >= 0.999, int8 >= 0.995.
//!
//! `CLIP_PRECISION_TABLE=models/clip-vit-b32-random,models/clip-vit-b32-random-outliers
//! cargo test --release -p clip-tests --test precision_tables -- --include-ignored --nocapture`
//!
//! Not here: the f32 bounds against PyTorch (`model_reference.rs`).

use clip::{Bf16Kernel, ClipModel, ForwardOptions, Isa, LoadOptions, PixelValues, Precision};
use clip_tests::{cosine, Reference};
use std::path::Path;

/// (label, precision, bf16 kernel).
fn variants() -> Vec<(&'static str, Precision, Option<Bf16Kernel>)> {
    let mut v = vec![("f32", Precision::F32, None)];
    if Bf16Kernel::Dot.is_available(Isa::active()) && Isa::active() != Isa::Scalar {
        v.push(("bf16 dot", Precision::Bf16, Some(Bf16Kernel::Dot)));
    } else {
        eprintln!("!!! precision tables: no bf16 dot kernel on this CPU: column SKIPPED !!!");
    }
    v.push(("bf16 convert", Precision::Bf16, Some(Bf16Kernel::Convert)));
    v.push(("int8", Precision::Int8, None));
    v
}

/// The smallest and the mean cosine between corresponding `width`-long rows.
fn row_cosines(got: &[f32], want: &[f32], width: usize) -> (f64, f64) {
    assert_eq!(got.len(), want.len());
    let (mut min, mut sum, mut n) = (f64::INFINITY, 0.0, 0usize);
    for (g, w) in got.chunks(width).zip(want.chunks(width)) {
        let c = cosine(g, w);
        min = min.min(c);
        sum += c;
        n += 1;
    }
    (min, sum / n.max(1) as f64)
}

/// One column of the table: (row label, min cosine, mean cosine) for one variant.
fn column(
    dir: &Path,
    r: &Reference,
    p: Precision,
    k: Option<Bf16Kernel>,
) -> Vec<(String, f64, f64)> {
    let mut opts = LoadOptions::new().threads(2).precision(p);
    if let Some(k) = k {
        opts = opts.bf16_kernel(k);
    }
    let model = ClipModel::load_with(dir, &opts).unwrap();
    let cfg = model.config().clone();
    let (shape, data) = r.get("pixel_values");
    let px = PixelValues {
        data: data.to_vec(),
        shape: [shape[0], shape[1], shape[2], shape[3]],
    };
    let hidden = ForwardOptions::new().with_hidden_states();
    let vis = model.vision_forward(&px, hidden).unwrap();
    let seqs: Vec<&[u32]> = r.input_ids.iter().map(Vec::as_slice).collect();
    let txt = model
        .text_forward(&seqs, hidden.with_full_context())
        .unwrap();
    let mut out = Vec::new();
    let mut row = |label: String, got: &[f32], key: &str, width: usize| {
        let (min, mean) = row_cosines(got, &r.get(key).1, width);
        out.push((label, min, mean));
    };
    let (cv, ct) = (cfg.vision.hidden_size, cfg.text.hidden_size);
    for (i, h) in vis.hidden_states.iter().enumerate().skip(1) {
        row(
            format!("vision layer {i}"),
            h,
            &format!("vision.hidden_states.{i}"),
            cv,
        );
    }
    row("vision pooled".into(), &vis.pooled, "vision.pooled", cv);
    for (i, h) in txt.hidden_states.iter().enumerate().skip(1) {
        row(
            format!("text layer {i}"),
            h,
            &format!("text.hidden_states.{i}"),
            ct,
        );
    }
    row("text pooled".into(), &txt.pooled, "text.pooled", ct);
    let img = model.embed_pixels(&px).unwrap();
    let te = model.embed_token_ids(&seqs).unwrap();
    let d = cfg.projection_dim;
    row("image embeddings".into(), img.as_slice(), "image_embeds", d);
    row("text embeddings".into(), te.as_slice(), "text_embeds", d);
    out
}

#[test]
#[ignore = "accuracy tables of the low-precision paths: set CLIP_PRECISION_TABLE and pass --include-ignored"]
fn precision_tables() {
    let Ok(dirs) = std::env::var("CLIP_PRECISION_TABLE") else {
        panic!("set CLIP_PRECISION_TABLE=<folder(s), comma-separated> (see this file's doc)");
    };
    let mut bad = Vec::new();
    for d in dirs.split(',').filter(|d| !d.is_empty()) {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(d);
        let r = Reference::load(&dir.join("reference.safetensors"));
        let vars = variants();
        let cols: Vec<_> = vars
            .iter()
            .map(|&(_, p, k)| column(&dir, &r, p, k))
            .collect();
        println!("\n{d}: min (mean) cosine to PyTorch f32, per row\n");
        let head: Vec<&str> = vars.iter().map(|v| v.0).collect();
        println!("| output | {} |", head.join(" | "));
        println!("|---|{}", "---|".repeat(vars.len()));
        for i in 0..cols[0].len() {
            let cells: Vec<String> = cols
                .iter()
                .map(|c| format!("{:.6} ({:.6})", c[i].1, c[i].2))
                .collect();
            println!("| {} | {} |", cols[0][i].0, cells.join(" | "));
        }
        for (v, col) in vars.iter().zip(&cols) {
            let bound = match v.1 {
                Precision::Int8 => 0.995,
                Precision::Bf16 => 0.999,
                Precision::F32 => 0.9999,
            };
            for (label, min, _) in col.iter().filter(|c| c.0.ends_with("embeddings")) {
                if *min < bound {
                    bad.push(format!("{d} {} {label}: {min:.6} < {bound}", v.0));
                }
            }
        }
    }
    assert!(bad.is_empty(), "below the bounds: {bad:#?}");
}
