//! The examples run, on a small random-weights model folder written here with CLIP's full
//! vocabulary, and the README's library example is `examples/zero_shot.rs` itself.
//!
//! `cargo test` builds the examples (into `target/<profile>/examples/`); this test runs them.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The examples' folder beside this test binary (`target/<profile>/deps/..`).
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile = exe.parent().and_then(Path::parent).unwrap();
    profile.join("examples").join(name)
}

/// A model folder: `config.json` for small towers with CLIP's 49,408-token vocabulary, the
/// seeded weights `ClipModel::random` would make for it, and a preprocessor config.
fn model_folder(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let config = serde_json::json!({
        "projection_dim": 16,
        "vision_config": {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 1,
                          "num_attention_heads": 2, "image_size": 32, "patch_size": 16},
        "text_config": {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 1,
                        "num_attention_heads": 2, "vocab_size": 49408,
                        "max_position_embeddings": 77},
    });
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    let cfg = clip::ClipConfig::from_hf_json(&dir.join("config.json")).unwrap();
    let weights = clip::random_safetensors(&cfg, 1).unwrap();
    std::fs::write(dir.join("model.safetensors"), weights).unwrap();
    let pre = serde_json::json!({
        "crop_size": {"height": 32, "width": 32}, "size": {"shortest_edge": 32},
        "do_center_crop": true, "do_normalize": true, "do_rescale": true, "do_resize": true,
    });
    std::fs::write(dir.join("preprocessor_config.json"), pre.to_string()).unwrap();
}

fn write_png(path: &Path, w: u32, h: u32, seed: u32) {
    let f = std::fs::File::create(path).unwrap();
    let mut enc = png::Encoder::new(std::io::BufWriter::new(f), w, h);
    enc.set_color(png::ColorType::Rgb);
    let data: Vec<u8> = (0..w * h * 3).map(|i| (i * 31 + seed * 77) as u8).collect();
    enc.write_header().unwrap().write_image_data(&data).unwrap();
}

fn run(name: &str, args: &[&Path]) -> String {
    let out = Command::new(example(name)).args(args).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{name}: {err}");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn readme_example_is_the_zero_shot_example() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let file = std::fs::read_to_string(root.join("crates/clip/examples/zero_shot.rs")).unwrap();
    // The file from its first `use` line on, exactly as a ```rust block of the README.
    let body = &file[file.find("use clip").unwrap()..];
    assert!(
        readme.contains(&format!("```rust\n{body}```")),
        "README.md's library example differs from crates/clip/examples/zero_shot.rs"
    );
}

#[test]
fn examples_run_on_a_model_folder() {
    let d = std::env::temp_dir().join(format!("clip-examples-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    let model = d.join("model");
    model_folder(&model);
    let photos = d.join("photos");
    std::fs::create_dir_all(&photos).unwrap();
    for i in 0..3 {
        write_png(&photos.join(format!("p{i}.png")), 40 + i, 30, i);
    }
    std::fs::write(photos.join("notes.txt"), "not an image").unwrap();
    let img = photos.join("p0.png");
    let out = run(
        "zero_shot",
        &[&model, &img, Path::new("cat"), Path::new("dog")],
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    let probs: Vec<f32> = lines[..2]
        .iter()
        .map(|l| l.split_whitespace().next().unwrap().parse().unwrap())
        .collect();
    assert!(
        (probs[0] + probs[1] - 1.0).abs() < 1e-3 && probs[0] >= probs[1],
        "{out}"
    );
    assert!(lines[2].starts_with("cosine ["), "{out}");
    let out = run(
        "search_folder",
        &[&model, &photos, Path::new("a red square")],
    );
    assert_eq!(out.lines().count(), 3, "{out}");
    assert!(
        out.contains("p0.png") && !out.contains("notes.txt"),
        "{out}"
    );
    let _ = std::fs::remove_dir_all(&d);
}
