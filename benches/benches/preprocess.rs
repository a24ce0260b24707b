//! criterion: decode + CLIP preprocessing of a 640x480 and a 4000x3000 JPEG
//! (`Preprocessor::preprocess_bytes`, file bytes already in memory), on one
//! thread, plus a batch of 8 640x480 files on the whole pool.
//!
//! `cargo bench -p clip-benches --bench preprocess`. The images are not
//! committed: they are written by `tools/reference/bench_pil_preprocess.py
//! --make-only` into `target/bench-images/` (this bench runs it if they are
//! missing). That script also times PIL + CLIPImageProcessor on the same files,
//! interleaved with the Rust side, and prints the ratio.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clip::image::Preprocessor;
use clip_benches::pool;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const FILES: [&str; 2] = ["photo_640x480.jpg", "photo_4000x3000.jpg"];

fn image_dir() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let dir = root.join("target/bench-images");
    if FILES.iter().any(|f| !dir.join(f).exists()) {
        let script = root.join("tools/reference/bench_pil_preprocess.py");
        let status = std::process::Command::new("python3")
            .arg(&script)
            .arg("--make-only")
            .arg("--dir")
            .arg(&dir)
            .status();
        if !matches!(status, Ok(s) if s.success()) {
            eprintln!("could not run {} (needs Pillow + numpy)", script.display());
        }
    }
    dir
}

fn preprocess(c: &mut Criterion) {
    let dir = image_dir();
    let pre = Preprocessor::default();
    let one = pool(1);
    for name in FILES {
        let path = dir.join(name);
        let Ok(bytes) = std::fs::read(&path) else {
            eprintln!("skipping {}: missing", path.display());
            continue;
        };
        let mut group = c.benchmark_group("preprocess");
        group.throughput(Throughput::Elements(1));
        let big = name.contains("4000");
        group
            .sample_size(if big { 10 } else { 30 })
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(if big { 8 } else { 3 }));
        group.bench_function(format!("{name}/t1"), |b| {
            b.iter(|| one.install(|| pre.preprocess_bytes(&bytes, &path)))
        });
        group.finish();
    }
    let small = dir.join(FILES[0]);
    if small.exists() {
        let batch = vec![small; 8];
        let mut group = c.benchmark_group("preprocess_batch");
        group.throughput(Throughput::Elements(8));
        group.sample_size(10);
        group.bench_function("8x640x480/all-threads", |b| {
            b.iter(|| pre.preprocess_batch(&batch))
        });
        group.finish();
    }
}

criterion_group!(benches, preprocess);
criterion_main!(benches);
