//! Weight folders whose configuration is inferred from hostile shapes (issue #21), made by
//! `tools/make_hostile_weights.py`: `clip embed image` and `clip embed text` refuse each with
//! one line and exit 1, at once, without a panic, and without allocating anything large
//! first (each command's peak RSS is read with `wait4`).

mod common;

use common::{clip, s, scratch, write_png};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Generous bounds that a refusal is far inside (measured: under 0.25 s and 40 MB each); they
/// catch a hang or an allocation sized by a declared dimension, not a slow machine.
const WALL: Duration = Duration::from_secs(10);
const PEAK_RSS_KB: i64 = 100 * 1024;

/// Runs `cmd` and waits for it with `wait4`, which reports that child's own peak resident
/// set: (exit code, stderr, peak RSS in KB, wall time).
// The child is reaped by wait4 below, which std's Child cannot see.
#[allow(clippy::zombie_processes)]
fn run_measured(mut cmd: Command) -> (Option<i32>, String, i64, Duration) {
    use std::io::Read;
    let t = Instant::now();
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: wait4 writes only the status and the rusage struct it is given, both valid
    // for the call; `pid` is our own child, not yet waited for (std's Child is dropped
    // without waiting, which is allowed).
    let usage = unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        assert_eq!(libc::wait4(pid, &mut status, 0, &mut u), pid);
        u
    };
    let code = libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
    (code, err, usage.ru_maxrss, t.elapsed())
}

#[test]
fn inferred_configurations_are_validated_before_anything_is_sized_by_them() {
    let d = scratch("hostile-weights");
    let status = Command::new("python3")
        .args([
            s(&common::root().join("tools/make_hostile_weights.py")),
            s(&d),
        ])
        .status()
        .expect("python3 runs the generator");
    assert!(status.success(), "tools/make_hostile_weights.py failed");
    let img = d.join("a.png");
    write_png(&img, 32, 32, 1);
    let releases = "none of OpenAI's releases";
    let cases = [
        ("all_widths_zero", releases),
        ("huge_patch_zero_width", releases),
        ("patch_2_20_zero_width", releases),
        ("many_layer_keys", releases),
        ("intermediate_zero", releases),
        ("projection_zero", releases),
        ("vocab_zero", releases),
        ("too_many_layers", releases),
        ("huge_header", "more than the 16777216-byte limit"),
        ("many_tensors", "more than the limit of 100000"),
        (
            "config_patch_larger_than_image",
            "patch_size 448 is larger than image_size 224",
        ),
        (
            "config_eps_zero_in_f32",
            "layer_norm_eps = 0e0 (as f32) is not in (0, 1)",
        ),
        (
            "config_width_zero",
            "hidden_size = 0 is not a positive integer",
        ),
        (
            "config_huge_vocab",
            "vocab_size = 1073741824 is larger than 16777216",
        ),
    ];
    for (case, reason) in cases {
        let m = d.join(case);
        for args in [
            vec!["embed", "image", s(&img)],
            vec!["embed", "text", "a photo"],
        ] {
            let mut full = args.clone();
            let out_file = d.join("out.npy");
            full.extend(["--model", s(&m), "--out", s(&out_file)]);
            let mut cmd = clip(&d);
            cmd.args(&full);
            let (code, err, peak, took) = run_measured(cmd);
            let what = format!("{case} ({})", args[1]);
            assert_eq!(code, Some(1), "{what}: {err}");
            assert_eq!(err.lines().count(), 1, "{what}: {err}");
            assert!(err.starts_with("error: "), "{what}: {err}");
            assert!(!err.contains("internal error"), "{what}: {err}");
            assert!(err.contains(reason), "{what}: expected {reason:?} in {err}");
            assert!(took < WALL, "{what}: took {took:?}");
            assert!(peak < PEAK_RSS_KB, "{what}: peak RSS {peak} KB");
            eprintln!(
                "{what}: {:.0} ms, {peak} KB: {}",
                took.as_secs_f64() * 1e3,
                err.trim()
            );
        }
    }
    // 20,000 layer-like keys beside a valid model (with its config.json): the model loads,
    // and the extra tensors are accepted.
    let m = d.join("many_layer_keys_valid_model");
    let out_file = d.join("valid.npy");
    let mut cmd = clip(&d);
    cmd.args([
        "embed",
        "image",
        s(&img),
        "--model",
        s(&m),
        "--out",
        s(&out_file),
    ]);
    let (code, err, peak, took) = run_measured(cmd);
    assert_eq!(code, Some(0), "{err}");
    assert!(took < WALL && peak < PEAK_RSS_KB, "{took:?}, {peak} KB");
}
