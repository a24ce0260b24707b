//! Nothing lost, nothing overwritten, nothing unbounded (issue #22), through the real
//! binary: `--out` on links, devices and folders; empty batches; memory flat in the number of
//! inputs; bounded vocabulary files; non-finite weights and results refused with one line.
//! (Concurrent index writers are in `index.rs`.)

mod common;

use common::{clip, fails, ok, read_npy, s, scratch, tiny_model, write_png};
use std::io::Write;
use std::path::Path;
use std::process::Stdio;

/// Splits a safetensors file into its JSON header and data, and joins them back.
fn split(bytes: &[u8]) -> (serde_json::Map<String, serde_json::Value>, Vec<u8>) {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    (header.as_object().unwrap().clone(), bytes[8 + n..].to_vec())
}

/// `model.safetensors` of `m` with the f32 `key` overwritten by `f(old)` at every element.
fn poke(m: &Path, key: &str, f: impl Fn(f32) -> f32) {
    let path = m.join("model.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    let (h, _) = split(&bytes);
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let off = h[key]["data_offsets"].as_array().unwrap();
    let (a, b) = (
        off[0].as_u64().unwrap() as usize,
        off[1].as_u64().unwrap() as usize,
    );
    let mut out = bytes.clone();
    for at in (8 + n + a..8 + n + b).step_by(4) {
        let v = f32::from_le_bytes(out[at..at + 4].try_into().unwrap());
        out[at..at + 4].copy_from_slice(&f(v).to_le_bytes());
    }
    std::fs::write(&path, out).unwrap();
}

#[test]
fn out_writes_through_links_and_into_devices_and_refuses_folders() {
    let d = scratch("out");
    let m = tiny_model(&d, "clip-tiny");
    let img = d.join("a.png");
    write_png(&img, 20, 20, 1);
    let target = d.join("real.npy");
    std::fs::write(&target, b"old").unwrap();
    let link = d.join("link.npy");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    ok(
        &d,
        &["preprocess", s(&img), "--model", s(&m), "--out", s(&link)],
    );
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink(),
        "link replaced"
    );
    let (shape, _) = read_npy(&target);
    assert_eq!(shape, [3, 16, 16], "the link's target holds the output");
    // A dangling link: its target is created.
    let dangling = d.join("dangling.npy");
    std::os::unix::fs::symlink(d.join("made.npy"), &dangling).unwrap();
    ok(
        &d,
        &[
            "preprocess",
            s(&img),
            "--model",
            s(&m),
            "--out",
            s(&dangling),
        ],
    );
    assert!(d.join("made.npy").is_file());
    // A device is written, never renamed over: /dev/null stays a device.
    ok(&d, &["preprocess", s(&img), "--out", "/dev/null"]);
    assert!(!std::fs::metadata("/dev/null").unwrap().is_file());
    // A FIFO is written directly: a reader gets the whole .npy.
    let fifo = d.join("pipe.npy");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let reader = std::thread::spawn({
        let fifo = fifo.clone();
        move || std::fs::read(fifo).unwrap()
    });
    ok(&d, &["preprocess", s(&img), "--out", s(&fifo)]);
    let got = reader.join().unwrap();
    assert!(got.starts_with(b"\x93NUMPY") && got.len() > 3 * 224 * 224 * 4);
    assert!(
        !std::fs::metadata(&fifo).unwrap().is_file(),
        "the FIFO was replaced"
    );
    // A folder is refused, one line.
    let e = fails(&d, &["preprocess", s(&img), "--out", s(&d)]);
    assert!(e.contains("is a folder"), "{e}");
}

#[test]
fn empty_pixel_batch_gives_an_empty_matrix() {
    let d = scratch("empty");
    let m = tiny_model(&d, "clip-tiny");
    let npy = d.join("none.npy");
    // float32 [0, 3, 16, 16]
    let dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 3, 16, 16), }";
    let mut h = dict.to_string();
    while !(10 + h.len() + 1).is_multiple_of(64) {
        h.push(' ');
    }
    h.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend_from_slice(&(h.len() as u16).to_le_bytes());
    bytes.extend_from_slice(h.as_bytes());
    std::fs::write(&npy, bytes).unwrap();
    let out = d.join("out.npy");
    ok(
        &d,
        &[
            "embed",
            "image",
            "--model",
            s(&m),
            s(&npy),
            "--out",
            s(&out),
        ],
    );
    let (shape, data) = read_npy(&out);
    assert_eq!(shape, [0, 32]);
    assert!(data.is_empty());
}

/// Peak RSS of a child in KB, from /proc while it runs (polled) — a lower bound, enough to
/// show the growth of one big batch.
fn run_with_stdin_peak(d: &Path, args: &[&str], input: &[u8]) -> (bool, u64) {
    let mut child = clip(d)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let status_path = format!("/proc/{}/status", child.id());
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let mut peak = 0u64;
    loop {
        if let Ok(st) = std::fs::read_to_string(&status_path) {
            if let Some(l) = st.lines().find(|l| l.starts_with("VmHWM:")) {
                let kb: u64 = l.split_whitespace().nth(1).unwrap().parse().unwrap();
                peak = peak.max(kb);
            }
        }
        if let Some(st) = child.try_wait().unwrap() {
            writer.join().unwrap();
            return (st.success(), peak);
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

#[test]
fn embed_memory_stays_flat_in_the_number_of_texts() {
    let d = scratch("flat");
    let m = tiny_model(&d, "clip-tiny");
    let out = d.join("t.npy");
    let lines = |n: usize| -> Vec<u8> {
        (0..n)
            .map(|i| format!("\"text number {i} with a few more words to make it longer\"\n"))
            .collect::<String>()
            .into_bytes()
    };
    let args = [
        "embed",
        "text",
        "--model",
        s(&m),
        "--jsonl",
        "--out",
        s(&out),
    ];
    let (ok_small, small) = run_with_stdin_peak(&d, &args, &lines(500));
    let (ok_big, big) = run_with_stdin_peak(&d, &args, &lines(20_000));
    assert!(ok_small && ok_big);
    let (shape, _) = read_npy(&out);
    assert_eq!(shape, [20_000, 32]);
    eprintln!("peak RSS: 500 texts {small} KB, 20,000 texts {big} KB");
    // 40x the inputs: the texts and the output grow (about 6 MB here); the activations of
    // one pass over all of them would be hundreds of MB.
    assert!(
        big < small + 60 * 1024,
        "500 texts {small} KB, 20,000 texts {big} KB"
    );
}

#[test]
fn vocabulary_gzip_bomb_is_refused() {
    let d = scratch("bomb");
    // 200 MB of zeros, gzipped by python's gzip module (~200 KB).
    let bomb = d.join("merges.txt.gz");
    let status = std::process::Command::new("python3")
        .args([
            "-c",
            "import gzip,sys; f=gzip.open(sys.argv[1],'wb'); [f.write(b'\\0'*(1<<20)) for _ in range(200)]; f.close()",
            s(&bomb),
        ])
        .status()
        .unwrap();
    assert!(status.success());
    let e = fails(&d, &["tokenize", "--vocab", s(&bomb), "a cat"]);
    assert!(e.contains("more than 64 MB"), "{e}");
}

#[test]
fn non_finite_weights_and_scales_are_errors_not_answers() {
    let d = scratch("nan");
    let img = d.join("a.png");
    write_png(&img, 20, 20, 1);
    // NaN in the first layer's MLP: classify and embed refuse, naming where.
    let m = tiny_model(&d, "clip-tiny");
    poke(&m, "vision_model.encoder.layers.0.mlp.fc1.weight", |_| {
        f32::NAN
    });
    let e = fails(
        &d,
        &["classify", s(&img), "--labels", "a,b", "--model", s(&m)],
    );
    assert!(e.contains("NaN or Inf, first in layer 1 of 1"), "{e}");
    let e = fails(
        &d,
        &[
            "embed",
            "image",
            "--model",
            s(&m),
            s(&img),
            "--out",
            "o.npy",
        ],
    );
    assert!(e.contains("image 0") && e.contains("layer 1"), "{e}");
    // --validate names the tensor at load.
    let e = fails(
        &d,
        &[
            "embed",
            "image",
            "--model",
            s(&m),
            s(&img),
            "--out",
            "o.npy",
            "--validate",
        ],
    );
    assert!(
        e.contains("vision_model.encoder.layers.0.mlp.fc1.weight"),
        "{e}"
    );
    // A logit scale whose exp overflows: refused at load.
    let m2 = d.join("scale");
    std::fs::create_dir_all(&m2).unwrap();
    let m2 = tiny_model(&m2, "clip-tiny");
    poke(&m2, "logit_scale", |_| 100.0);
    let e = fails(
        &d,
        &["classify", s(&img), "--labels", "a,b", "--model", s(&m2)],
    );
    assert!(e.contains("logit_scale = 100"), "{e}");
}
