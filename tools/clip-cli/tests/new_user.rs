//! What a new user hits (issue #16), through the real binary: conflicting or out-of-range
//! arguments refused with one line before any model is built, one wording for a missing or
//! wrong input file, messages that say what to do, `clip preprocess` chaining into
//! `clip embed image`, and help that has examples and honest defaults.

mod common;

use common::{fails, ok, read_npy, run, s, scratch, tiny_model, write_png};
use std::path::Path;
use std::time::{Duration, Instant};

/// Refused by the argument parser or the first checks: one line, exit 2 (usage) or 1, and no
/// model built (the refusal comes long before a full-size random model could be made).
fn refused(d: &Path, args: &[&str], want: &str) {
    let t = Instant::now();
    let err = fails(d, args);
    assert!(err.contains(want), "clip {args:?}: {err}");
    assert!(
        t.elapsed() < Duration::from_millis(900),
        "clip {args:?} took {:?}: arguments are checked after the model is built",
        t.elapsed()
    );
}

#[test]
fn conflicting_and_out_of_range_arguments_are_refused() {
    let d = scratch("args");
    let img = d.join("a.png");
    write_png(&img, 20, 20, 1);
    let img = s(&img);
    let rw = "--random-weights";
    let cases: &[(&[&str], &str)] = &[
        (
            &["embed", "text", rw, "--jsonl", "extra", "--out", "o.npy"],
            "cannot be used with",
        ),
        (&["tokenize", "--jsonl", "extra"], "cannot be used with"),
        (&["tokenize", "--lossy", "extra"], "cannot be used with"),
        (&["tokenize", "--truncate", "a cat"], "--context"),
        (
            &["tokenize", "--context-length", "10", "a cat"],
            "--context",
        ),
        (
            &[
                "tokenize",
                "--context",
                "--context-length",
                "10000000000000",
                "x",
            ],
            "must be 2 to 4096",
        ),
        (
            &["classify", img, "--labels", "a,b", rw, "--batch", "0"],
            "at least 1",
        ),
        (
            &[
                "similarity",
                rw,
                "--images",
                img,
                "--texts",
                "a",
                "--batch",
                "0",
            ],
            "at least 1",
        ),
        (
            &["index", ".", "--out", "i", rw, "--batch", "0"],
            "at least 1",
        ),
        (
            &["embed", "image", rw, img, "--out", "o.npy", "--batch", "0"],
            "at least 1",
        ),
        (
            &["classify", img, "--labels", "cat,dog,cat", rw],
            "names \"cat\" twice",
        ),
        (
            &[
                "classify",
                img,
                "--labels",
                "a,b",
                rw,
                "--threads",
                "100000",
            ],
            "four per core",
        ),
        (&["tokenize", "--threads", "100000", "a"], "four per core"),
        (&["bench", "--threads", "100000", rw], "four per core"),
        (
            &["bench", "gemm", "--m", "0", "--k", "8", "--n", "8"],
            "at least 1",
        ),
        (
            &[
                "bench", "gemm", "--m", "100000", "--k", "100000", "--n", "100000",
            ],
            "more than this machine has free",
        ),
        (
            &[
                "bench",
                "gemm",
                "--m",
                "18446744073709551615",
                "--k",
                "9",
                "--n",
                "9",
            ],
            "more bytes than an address space holds",
        ),
    ];
    for (args, want) in cases {
        refused(&d, args, want);
    }
}

#[test]
fn input_files_are_named_the_same_way_everywhere() {
    let d = scratch("inputs");
    let m = tiny_model(&d, "clip-tiny");
    let folder = d.join("photos");
    std::fs::create_dir_all(&folder).unwrap();
    let missing = d.join("missing.png");
    let out = d.join("o.npy");
    let (mi, fo, ou, mo) = (s(&missing), s(&folder), s(&out), s(&m));
    let runs: &[&[&str]] = &[
        &["classify", "IMG", "--labels", "a,b", "--model", mo],
        &[
            "similarity",
            "--images",
            "IMG",
            "--texts",
            "a",
            "--model",
            mo,
        ],
        &["embed", "image", "IMG", "--model", mo, "--out", ou],
        &["preprocess", "IMG", "--out", ou],
    ];
    for args in runs {
        for (path, want) in [
            (mi, "missing.png: no such file"),
            (fo, "is a folder, not an image file"),
        ] {
            let a: Vec<&str> = args
                .iter()
                .map(|x| if *x == "IMG" { path } else { x })
                .collect();
            refused(&d, &a, want);
        }
    }
    // A device is not read without end.
    refused(
        &d,
        &["preprocess", "/dev/zero", "--out", ou],
        "not a regular file",
    );
}

#[test]
fn messages_say_what_to_do() {
    let d = scratch("messages");
    // `clip search` on a folder of photos: index it, into a new folder beside it.
    let photos = d.join("photos");
    std::fs::create_dir_all(&photos).unwrap();
    write_png(&photos.join("a.png"), 20, 20, 1);
    let err = fails(&d, &["search", s(&photos), "a cat", "--random-weights"]);
    assert!(
        err.contains(&format!(
            "clip index {} --out photos.index",
            photos.display()
        )),
        "{err}"
    );
    // A folder with PyTorch weights only: say that safetensors is read, and how to convert.
    let pt = d.join("pt");
    std::fs::create_dir_all(&pt).unwrap();
    std::fs::write(pt.join("pytorch_model.bin"), b"not read").unwrap();
    let err = fails(
        &d,
        &["embed", "text", "--model", s(&pt), "--out", "o.npy", "a"],
    );
    assert!(
        err.contains("pytorch_model.bin") && err.contains("save_pretrained"),
        "{err}"
    );
    // The same in the Hugging Face cache, found without --model.
    let snap = d.join("no-hf-cache/models--openai--clip-vit-base-patch32/snapshots/abc");
    std::fs::create_dir_all(&snap).unwrap();
    std::fs::write(snap.join("pytorch_model.bin"), b"not read").unwrap();
    let err = fails(&d, &["embed", "text", "--out", "o.npy", "a"]);
    assert!(
        err.contains("snapshots/abc")
            && err.contains("pytorch_model.bin")
            && err.contains("convert"),
        "{err}"
    );
    // With random weights an error is still one line (`fails` checks), the note only on success.
    let err = fails(
        &d,
        &[
            "embed",
            "text",
            "--random-weights",
            "--out",
            "/no/such/dir/o.npy",
            "a",
        ],
    );
    assert!(!err.contains("note:"), "{err}");
}

#[test]
fn preprocess_output_chains_into_embed_image() {
    let d = scratch("chain");
    let m = tiny_model(&d, "clip-tiny");
    let (a, b) = (d.join("a.png"), d.join("b.png"));
    write_png(&a, 30, 20, 3);
    write_png(&b, 20, 30, 4);
    for (img, npy) in [(&a, "a.npy"), (&b, "b.npy")] {
        ok(
            &d,
            &[
                "preprocess",
                s(img),
                "--model",
                s(&m),
                "--out",
                s(&d.join(npy)),
            ],
        );
    }
    let from_npy = d.join("from_npy.npy");
    let from_png = d.join("from_png.npy");
    let (an, bn) = (d.join("a.npy"), d.join("b.npy"));
    ok(
        &d,
        &[
            "embed",
            "image",
            "--model",
            s(&m),
            s(&an),
            s(&bn),
            "--out",
            s(&from_npy),
        ],
    );
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
            s(&from_png),
        ],
    );
    let (shape, x) = read_npy(&from_npy);
    let (shape2, y) = read_npy(&from_png);
    assert_eq!(shape, [2, 32]);
    assert_eq!(shape, shape2);
    assert_eq!(x, y, "preprocess + embed .npy != embed of the images");
    // Mixed kinds are refused with what to do.
    let err = fails(
        &d,
        &[
            "embed",
            "image",
            "--model",
            s(&m),
            s(&an),
            s(&a),
            "--out",
            "o.npy",
        ],
    );
    assert!(err.contains("not both"), "{err}");
}

#[test]
fn help_has_examples_and_honest_defaults() {
    let d = scratch("help");
    for cmd in [
        vec!["bench", "gemm"],
        vec!["bench", "peak"],
        vec!["embed", "image"],
        vec!["embed", "text"],
        vec!["classify"],
        vec!["index"],
    ] {
        let mut args = cmd.clone();
        args.push("--help");
        let out = run(&d, &args);
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{cmd:?}");
        assert!(help.contains("Examples:"), "{cmd:?} --help has no examples");
        assert!(!help.contains("[default: 0]"), "{cmd:?}: {help}");
    }
    let gemm = String::from_utf8_lossy(&run(&d, &["bench", "gemm", "--help"]).stdout).to_string();
    for flag in ["--m <M>", "--k <K>", "--n <N>", "--reps <REPS>"] {
        let line = gemm.lines().find(|l| l.contains(flag)).unwrap();
        let i = gemm.find(line).unwrap();
        let next = gemm[i + line.len()..].lines().nth(1).unwrap_or("");
        assert!(
            line.trim().len() > flag.len() || !next.trim().is_empty(),
            "{flag} has no description"
        );
    }
    let top = String::from_utf8_lossy(&run(&d, &["--help"]).stdout).to_string();
    assert!(
        top.contains("encoders"),
        "the bench summary leaves out the encoders: {top}"
    );
}

#[test]
fn cpu_time_is_finite_or_null_and_reaches_json() {
    let d = scratch("cputime");
    let out = ok(
        &d,
        &[
            "bench",
            "gemm",
            "--m",
            "32",
            "--k",
            "32",
            "--n",
            "32",
            "--threads",
            "1",
            "--reps",
            "5",
            "--cpu-time",
            "--json",
        ],
    );
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let c = &v["gflops_per_cpu_second"];
    assert!(
        c.is_null() || c.as_f64().is_some_and(f64::is_finite),
        "{out}"
    );
    assert!(!out.contains("inf"), "{out}");
}

/// A repository name finds its snapshot in the Hugging Face cache (the one `refs/main`
/// names), with `--model` or with nothing given; a name not in the cache is one line.
#[test]
fn models_are_found_in_the_hugging_face_cache_by_name() {
    let d = scratch("hub");
    let m = tiny_model(&d, "clip-tiny");
    let base = d.join("no-hf-cache/models--openai--clip-vit-base-patch32");
    for snap in ["aaa", "bbb"] {
        let p = base.join("snapshots").join(snap);
        std::fs::create_dir_all(&p).unwrap();
        for f in std::fs::read_dir(&m).unwrap() {
            let f = f.unwrap().path();
            std::fs::copy(&f, p.join(f.file_name().unwrap())).unwrap();
        }
    }
    // "aaa" is the one refs/main names; "bbb" gets a broken config, so using it would fail.
    std::fs::create_dir_all(base.join("refs")).unwrap();
    std::fs::write(base.join("refs/main"), "aaa\n").unwrap();
    std::fs::write(base.join("snapshots/bbb/config.json"), "{broken").unwrap();
    let img = d.join("a.png");
    write_png(&img, 20, 20, 1);
    let out = d.join("o.npy");
    for model in [Some("openai/clip-vit-base-patch32"), None] {
        let mut args = vec!["embed", "image", s(&img), "--out", s(&out)];
        if let Some(name) = model {
            args.extend(["--model", name]);
        }
        ok(&d, &args);
        assert_eq!(read_npy(&out).0, [1, 32]);
    }
    let e = fails(
        &d,
        &[
            "embed",
            "image",
            s(&img),
            "--out",
            s(&out),
            "--model",
            "nobody/nothing",
        ],
    );
    assert!(e.contains("Hugging Face cache"), "{e}");
}
