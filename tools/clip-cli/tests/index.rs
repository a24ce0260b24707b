//! End-to-end tests of `clip index` and `clip search` on the tiny fixture model: resuming
//! without recomputing (checked through the summary counts), recovery from a stop in the
//! middle of a save, skipped unreadable files, ranking, and refusing another model's index.

mod common;

use clip::ClipModel;
use common::*;
use std::path::{Path, PathBuf};

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
        library_images(&model, &m, &refs).as_slice(),
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
    let q = model
        .embed_texts(&["a red square"], clip::Truncation::Refuse)
        .unwrap();
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

    // Without --model, search and a resumed index use the index's model.
    let out = ok(&d, &["search", s(&idx), "a red square", "-k", "1"]);
    assert!(out.starts_with(&format!("{:.4}", scores[0])), "{out}");
    let out = ok(&d, &["index", s(&photos), "--out", s(&idx)]);
    assert_eq!(summary(&out), (0, 4, 1), "{out}");

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

/// Every row of the index at `idx` is the library's embedding of its path.
fn assert_rows_match_paths(idx: &Path, model: &ClipModel, m: &Path) -> Vec<PathBuf> {
    let paths: Vec<PathBuf> = std::fs::read_to_string(idx.join("paths.txt"))
        .unwrap()
        .lines()
        .map(PathBuf::from)
        .collect();
    let (shape, data) = read_npy(&idx.join("embeddings.npy"));
    assert_eq!(shape[0], paths.len(), "rows vs paths");
    let refs: Vec<&Path> = paths.iter().map(PathBuf::as_path).collect();
    if !refs.is_empty() {
        assert_close(
            &data,
            library_images(model, m, &refs).as_slice(),
            1e-6,
            "rows",
        );
    }
    paths
}

/// `indexed N new, M already indexed, S skipped, C changed, R removed; ...` as (N, M, S, C, R).
fn summary5(out: &str) -> [usize; 5] {
    let nums: Vec<usize> = out
        .split(|c: char| !c.is_ascii_digit())
        .filter(|t| !t.is_empty())
        .take(5)
        .map(|t| t.parse().unwrap())
        .collect();
    [nums[0], nums[1], nums[2], nums[3], nums[4]]
}

/// A file replaced by another picture under the same name is re-embedded; a deleted file
/// leaves the index; search never returns a file that is gone; a format-1 index (no stamps)
/// is upgraded in place.
#[test]
fn changed_and_deleted_files_are_noticed() {
    let d = scratch("stale");
    let m = tiny_model(&d, "clip-tiny");
    let model = ClipModel::load(&m).unwrap();
    let photos = d.join("photos");
    std::fs::create_dir_all(&photos).unwrap();
    for i in 0..4 {
        write_png(&photos.join(format!("p{i}.png")), 20 + i, 20, i);
    }
    let idx = d.join("photos.index");
    let index = |d: &Path| {
        ok(
            d,
            &["index", s(&photos), "--out", s(&idx), "--model", s(&m)],
        )
    };
    assert_eq!(summary5(&index(&d)), [4, 0, 0, 0, 0]);
    // Replace p1 with another picture (another size, so the stamp differs even if the
    // clock is coarse), delete p3.
    let p1 = std::fs::canonicalize(photos.join("p1.png")).unwrap();
    write_png(&p1, 33, 17, 99);
    std::fs::remove_file(photos.join("p3.png")).unwrap();
    let out = index(&d);
    assert_eq!(summary5(&out), [0, 2, 0, 1, 1], "{out}");
    assert!(out.contains("holds 3 images"), "{out}");
    let paths = assert_rows_match_paths(&idx, &model, &m);
    assert!(!paths.iter().any(|p| p.ends_with("p3.png")));
    // Searching with the new picture finds it, with the same embedding.
    let hit = ok(
        &d,
        &[
            "search",
            s(&idx),
            "--image",
            s(&p1),
            "--model",
            s(&m),
            "-k",
            "1",
            "--json",
        ],
    );
    let hit = &json_lines(&hit)[0];
    assert_eq!(hit["path"], s(&p1));
    assert!((hit["score"].as_f64().unwrap() - 1.0).abs() < 1e-5, "{hit}");
    // A file deleted after indexing is skipped by search, with a note.
    std::fs::remove_file(photos.join("p0.png")).unwrap();
    let out = run(
        &d,
        &[
            "search",
            s(&idx),
            "a cat",
            "--model",
            s(&m),
            "-k",
            "5",
            "--json",
        ],
    );
    assert!(out.status.success());
    let hits = json_lines(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(hits.len(), 2);
    assert!(hits
        .iter()
        .all(|h| !h["path"].as_str().unwrap().ends_with("p0.png")));
    assert!(String::from_utf8_lossy(&out.stderr).contains("skipped 1 indexed file"));
    // A format-1 index: no stamps, manifest format 1. It keeps working and gains stamps.
    let manifest = std::fs::read_to_string(idx.join("manifest.json")).unwrap();
    std::fs::write(
        idx.join("manifest.json"),
        manifest.replace("\"format\":2", "\"format\":1"),
    )
    .unwrap();
    std::fs::remove_file(idx.join("stamps.txt")).unwrap();
    let out = index(&d);
    assert_eq!(summary5(&out), [0, 2, 0, 0, 1], "{out}");
    let stamps = std::fs::read_to_string(idx.join("stamps.txt")).unwrap();
    assert_eq!(stamps.lines().count(), 2);
    assert!(!stamps.contains('?'), "{stamps}");
    assert_eq!(summary5(&index(&d)), [0, 2, 0, 0, 0]);
}

/// A writer holds the index's lock: a second `clip index` on the same --out is refused with
/// one line; two started together never leave mixed rows.
#[test]
fn concurrent_writers_are_refused_and_nothing_is_mixed() {
    let d = scratch("concurrent");
    let m = tiny_model(&d, "clip-tiny");
    let model = ClipModel::load(&m).unwrap();
    let (fa, fb) = (d.join("f2a"), d.join("f2b"));
    for (f, seed) in [(&fa, 0u32), (&fb, 1000)] {
        std::fs::create_dir_all(f).unwrap();
        for i in 0..40 {
            write_png(&f.join(format!("i{i:02}.png")), 24, 24, seed + i);
        }
    }
    let idx = d.join("shared.index");
    ok(
        &d,
        &[
            "index",
            s(&fa),
            "--out",
            s(&idx),
            "--model",
            s(&m),
            "--batch",
            "40",
        ],
    );
    // Held by another process (this one): refused, the index untouched.
    let lock = std::fs::OpenOptions::new()
        .write(true)
        .open(idx.join("lock"))
        .unwrap();
    lock.lock().unwrap();
    let e = fails(&d, &["index", s(&fb), "--out", s(&idx), "--model", s(&m)]);
    assert!(e.contains("another clip index is writing"), "{e}");
    drop(lock);
    // Two real processes at once, on a fresh index.
    let idx2 = d.join("race.index");
    let start = |f: &Path| {
        clip(&d)
            .args([
                "index",
                s(f),
                "--out",
                s(&idx2),
                "--model",
                s(&m),
                "--batch",
                "1",
            ])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (start(&fa), start(&fb));
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    let refused = [&a, &b]
        .iter()
        .filter(|o| !o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stderr).to_string())
        .collect::<Vec<_>>();
    for e in &refused {
        assert!(e.contains("another clip index is writing"), "{e}");
    }
    assert!(refused.len() < 2, "both refused: {refused:?}");
    let paths = assert_rows_match_paths(&idx2, &model, &m);
    let expected = if refused.is_empty() { 80 } else { 40 };
    assert_eq!(paths.len(), expected, "{refused:?}");
}
