//! End-to-end tests of `clip embed-shards` on the tiny fixture model: webdataset tars, a
//! folder and a parquet file in, clip-retrieval's layout out, every row bitwise equal to the
//! library embedding the extracted files one list at a time; an unreadable image listed in
//! the metadata; a run stopped with SIGINT after its first shard finishing, on re-run, with
//! outputs byte-identical to a clean run.

mod common;

use clip::{ClipModel, Truncation};
use common::*;
use parquet::file::reader::{FileReader, SerializedFileReader};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;

/// One sample as written into a shard.
struct Spec {
    key: String,
    ext: &'static str,
    bytes: Vec<u8>,
    caption: Option<String>,
    corrupt: bool,
}

/// JPEG fixtures of the image crate (baseline, progressive, grey, CMYK, restart markers...).
fn jpegs() -> Vec<Vec<u8>> {
    let dir = root().join("crates/image/tests/fixtures/image");
    let mut names: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "jpg") && !p.ends_with("photo_2000x1500.jpg")
        })
        .collect();
    names.sort();
    assert!(names.len() >= 10);
    names.iter().map(|p| std::fs::read(p).unwrap()).collect()
}

/// `n` samples of shard `shard`: JPEGs and PNGs, captions on two in three, and, if asked,
/// a truncated JPEG as sample 5.
fn specs(dir: &Path, shard: usize, n: usize, corrupt: bool) -> Vec<Spec> {
    let jpegs = jpegs();
    (0..n)
        .map(|i| {
            let key = format!("{shard:05}{i:04}");
            let (ext, mut bytes) = if i % 3 == 1 {
                let p = dir.join(format!("{key}.png"));
                write_png(&p, 20 + (i as u32 % 40), 30, (shard * 100 + i) as u32);
                ("png", std::fs::read(&p).unwrap())
            } else {
                ("jpg", jpegs[(shard * 7 + i) % jpegs.len()].clone())
            };
            let bad = corrupt && i == 5;
            if bad {
                bytes.truncate(bytes.len() / 3);
            }
            Spec {
                key,
                ext,
                bytes,
                caption: (i % 3 != 2).then(|| format!("a photo number {i} of shard {shard}")),
                corrupt: bad,
            }
        })
        .collect()
}

fn write_tar(path: &Path, specs: &[Spec]) {
    let mut b = tar::Builder::new(std::fs::File::create(path).unwrap());
    let mut add = |name: String, data: &[u8]| {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, data).unwrap();
    };
    for s in specs {
        add(format!("{}.{}", s.key, s.ext), &s.bytes);
        if let Some(c) = &s.caption {
            add(format!("{}.txt", s.key), c.as_bytes());
        }
        let json = format!(
            "{{\"url\": \"http://x/{}\", \"key\": \"{}\"}}",
            s.key, s.key
        );
        add(format!("{}.json", s.key), json.as_bytes());
    }
    b.finish().unwrap();
}

/// A parquet file with img2dataset's columns: `key`, `caption` and the image bytes in `jpg`.
fn write_parquet(path: &Path, specs: &[Spec]) {
    use parquet::data_type::{ByteArray, ByteArrayType};
    use parquet::file::writer::SerializedFileWriter;
    let schema = parquet::schema::parser::parse_message_type(
        "message m { REQUIRED BYTE_ARRAY key (UTF8); OPTIONAL BYTE_ARRAY caption (UTF8); \
         REQUIRED BYTE_ARRAY jpg; }",
    )
    .unwrap();
    let f = std::fs::File::create(path).unwrap();
    let mut w = SerializedFileWriter::new(f, schema.into(), Default::default()).unwrap();
    let mut rg = w.next_row_group().unwrap();
    let cols: [(Vec<Option<&[u8]>>, bool); 3] = [
        (
            specs.iter().map(|s| Some(s.key.as_bytes())).collect(),
            false,
        ),
        (
            specs
                .iter()
                .map(|s| s.caption.as_deref().map(str::as_bytes))
                .collect(),
            true,
        ),
        (
            specs.iter().map(|s| Some(s.bytes.as_slice())).collect(),
            false,
        ),
    ];
    for (values, nullable) in cols {
        let mut col = rg.next_column().unwrap().unwrap();
        let data: Vec<ByteArray> = values.iter().flatten().map(|v| v.to_vec().into()).collect();
        let defs: Vec<i16> = values.iter().map(|v| i16::from(v.is_some())).collect();
        col.typed::<ByteArrayType>()
            .write_batch(&data, nullable.then_some(&defs[..]), None)
            .unwrap();
        col.close().unwrap();
    }
    rg.close().unwrap();
    w.close().unwrap();
}

/// The metadata table as rows of (column name -> value).
fn read_metadata(path: &Path) -> Vec<Vec<(String, Option<String>)>> {
    let r = SerializedFileReader::new(std::fs::File::open(path).unwrap()).unwrap();
    r.get_row_iter(None)
        .unwrap()
        .map(|row| {
            row.unwrap()
                .get_column_iter()
                .map(|(name, f)| {
                    let v = match f {
                        parquet::record::Field::Str(s) => Some(s.clone()),
                        parquet::record::Field::Null => None,
                        other => panic!("{name}: {other:?}"),
                    };
                    (name.clone(), v)
                })
                .collect()
        })
        .collect()
}

fn field<'a>(row: &'a [(String, Option<String>)], name: &str) -> Option<&'a str> {
    row.iter().find(|(n, _)| n == name).unwrap().1.as_deref()
}

/// Checks one shard's outputs against the library on the extracted files.
fn check_shard(out: &Path, id: &str, specs: &[Spec], model: &ClipModel, files: &Path) {
    let d = model.config().projection_dim;
    let meta = read_metadata(&out.join(format!("metadata/metadata_{id}.parquet")));
    let (shape, img) = read_npy(&out.join(format!("img_emb/img_emb_{id}.npy")));
    assert_eq!(shape, [specs.len(), d], "{id}");
    assert_eq!(meta.len(), specs.len(), "{id}");
    let names: Vec<&str> = meta[0].iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["key", "caption", "url", "image_path", "status", "error"]
    );
    // The reference: every readable image as a file, embedded by the library in one call.
    let good: Vec<PathBuf> = specs
        .iter()
        .filter(|s| !s.corrupt)
        .map(|s| {
            let p = files.join(format!("{}.{}", s.key, s.ext));
            std::fs::write(&p, &s.bytes).unwrap();
            p
        })
        .collect();
    let want = model.embed_image_files(&good).unwrap();
    let mut want_rows = want.iter();
    let captions: Vec<&str> = specs.iter().filter_map(|s| s.caption.as_deref()).collect();
    let want_text = model.embed_texts(&captions, Truncation::Cut).unwrap();
    let mut want_text_rows = want_text.iter();
    let (tshape, text) = read_npy(&out.join(format!("text_emb/text_emb_{id}.npy")));
    assert_eq!(tshape, [specs.len(), d]);
    for (i, (s, row)) in specs.iter().zip(&meta).enumerate() {
        assert_eq!(field(row, "key"), Some(s.key.as_str()), "{id} row {i}");
        assert_eq!(field(row, "caption"), s.caption.as_deref(), "{id} row {i}");
        let got = &img[i * d..(i + 1) * d];
        if s.corrupt {
            assert_eq!(field(row, "status"), Some("error"));
            let e = field(row, "error").expect("a reason");
            assert!(e.to_lowercase().contains("jpeg"), "{e}");
            assert!(
                got.iter().all(|&v| v == 0.0),
                "a failed image has a zero row"
            );
        } else {
            assert_eq!(field(row, "status"), Some("ok"), "{id} row {i}: {row:?}");
            assert_eq!(field(row, "error"), None);
            let w = want_rows.next().unwrap();
            assert_eq!(
                got, w,
                "{id} row {i}: image embedding differs from the library's"
            );
        }
        let t = &text[i * d..(i + 1) * d];
        match &s.caption {
            Some(_) => assert_eq!(t, want_text_rows.next().unwrap(), "{id} caption {i}"),
            None => assert!(t.iter().all(|&v| v == 0.0)),
        }
    }
    assert!(want_rows.next().is_none());
}

#[test]
fn shards_give_clip_retrievals_layout_bitwise() {
    let d = scratch("shards");
    let m = tiny_model(&d, "clip-tiny");
    let model = ClipModel::load(&m).unwrap();
    let src = d.join("src");
    let shards = d.join("shards");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::create_dir_all(&shards).unwrap();
    let all: Vec<Vec<Spec>> = (0..4).map(|s| specs(&src, s, 64, s == 1)).collect();
    for (s, sp) in all.iter().enumerate() {
        write_tar(&shards.join(format!("{s:05}.tar")), sp);
    }
    // A folder and a parquet file holding shard 2's samples.
    let folder = d.join("folder-2");
    std::fs::create_dir_all(&folder).unwrap();
    for s in &all[2] {
        std::fs::write(folder.join(format!("{}.{}", s.key, s.ext)), &s.bytes).unwrap();
        if let Some(c) = &s.caption {
            std::fs::write(folder.join(format!("{}.txt", s.key)), c).unwrap();
        }
    }
    write_parquet(&d.join("table-2.parquet"), &all[2]);

    let out = d.join("out");
    let mut args: Vec<String> = (0..4)
        .map(|s| shards.join(format!("{s:05}.tar")).display().to_string())
        .collect();
    args.push(s(&folder).into());
    args.push(s(&d.join("table-2.parquet")).into());
    let mut cmd = vec!["embed-shards", "--model", s(&m), "--out", s(&out)];
    // An odd batch and two decode threads: rows must not depend on either.
    cmd.extend(["--batch", "7", "--decode-threads", "2", "--threads", "2"]);
    cmd.extend(args.iter().map(String::as_str));
    let stdout = ok(&d, &cmd);
    assert!(stdout.contains("00001: 63 embedded, 1 failed"), "{stdout}");

    let files = d.join("extracted");
    std::fs::create_dir_all(&files).unwrap();
    for (s, sp) in all.iter().enumerate() {
        check_shard(&out, &format!("{s:05}"), sp, &model, &files);
    }
    check_shard(&out, "folder-2", &all[2], &model, &files);
    check_shard(&out, "table-2", &all[2], &model, &files);
    let meta = read_metadata(&out.join("metadata/metadata_00001.parquet"));
    assert_eq!(field(&meta[3], "url"), Some("http://x/000010003"));
    let path = field(&meta[3], "image_path").unwrap();
    assert!(path.ends_with("shards/00001.tar/000010003.jpg"), "{path}");

    // A re-run finds every shard done and loads no model.
    let again = ok(&d, &cmd);
    assert!(again.contains("all 6 shards are done"), "{again}");
}

/// Every file under the outputs' folders, with its bytes.
fn outputs(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v = Vec::new();
    for sub in ["img_emb", "text_emb", "metadata"] {
        for e in std::fs::read_dir(dir.join(sub)).unwrap() {
            let p = e.unwrap().path();
            v.push((
                format!("{sub}/{}", p.file_name().unwrap().to_string_lossy()),
                std::fs::read(&p).unwrap(),
            ));
        }
    }
    v.sort();
    v
}

#[test]
fn sigint_after_first_shard_then_rerun_equals_clean_run() {
    let d = scratch("shards-resume");
    let m = tiny_model(&d, "clip-tiny");
    let src = d.join("src");
    std::fs::create_dir_all(&src).unwrap();
    let mut shards = Vec::new();
    for s in 0..4 {
        let p = d.join(format!("{s:05}.tar"));
        write_tar(&p, &specs(&src, s, 64, s == 1));
        shards.push(p.display().to_string());
    }
    let run_args = |out: &Path| -> Vec<String> {
        let mut a: Vec<String> = ["embed-shards", "--model", s(&m), "--out", s(out)]
            .map(String::from)
            .to_vec();
        a.extend(shards.iter().cloned());
        a
    };
    let clean = d.join("clean");
    let a = run_args(&clean);
    ok(&d, &a.iter().map(String::as_str).collect::<Vec<_>>());

    let resumed = d.join("resumed");
    let a = run_args(&resumed);
    let mut child = clip(&d)
        .args(&a)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    assert!(first.starts_with("00000: 64 embedded"), "{first}");
    // SAFETY: kill(2) on the pid of a child we own and have not reaped.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    let status = child.wait().unwrap();
    assert!(
        !status.success(),
        "the run finished before SIGINT reached it"
    );
    let done: Vec<_> = outputs(&resumed)
        .into_iter()
        .filter(|(n, _)| n.starts_with("metadata/") && !n.contains(".tmp"))
        .collect();
    assert!(done.len() < 4, "all shards were done before SIGINT");
    assert!(done
        .iter()
        .any(|(n, _)| n == "metadata/metadata_00000.parquet"));

    let again = ok(&d, &a.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(again.contains("already done"), "{again}");
    let (got, want) = (outputs(&resumed), outputs(&clean));
    let names = |v: &[(String, Vec<u8>)]| v.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    assert_eq!(
        names(&got),
        names(&want),
        "the same files, no temporary ones left"
    );
    for ((n, g), (_, w)) in got.iter().zip(&want) {
        assert!(g == w, "{n} differs from the clean run's");
    }
}

#[test]
fn broken_shards_fail_alone_without_panics() {
    let d = scratch("shards-broken");
    let m = tiny_model(&d, "clip-tiny");
    let src = d.join("src");
    std::fs::create_dir_all(&src).unwrap();
    let good = d.join("good.tar");
    write_tar(&good, &specs(&src, 0, 5, false));
    let full = std::fs::read(&good).unwrap();
    // Garbage, a tar cut in the middle of a member, a gzip stream that is not a tar, and a
    // parquet file that is not one.
    let garbage = d.join("garbage.tar");
    std::fs::write(&garbage, vec![0x5a; 3000]).unwrap();
    let cut = d.join("cut.tar");
    std::fs::write(&cut, &full[..full.len() / 2 + 100]).unwrap();
    let gz = d.join("gz.tar.gz");
    std::fs::write(&gz, [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 1, 2, 3]).unwrap();
    let pq = d.join("bad.parquet");
    std::fs::write(&pq, b"PAR1 not really PAR1").unwrap();
    let out = d.join("out");
    let args = [
        "embed-shards",
        "--model",
        s(&m),
        "--out",
        s(&out),
        s(&garbage),
        s(&good),
        s(&cut),
        s(&gz),
        s(&pq),
    ];
    let r = run(&d, &args);
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(!r.status.success());
    assert!(!err.contains("panicked"), "{err}");
    for id in ["garbage", "cut", "gz", "bad"] {
        assert!(err.contains(&format!("shard {id} not done")), "{id}: {err}");
        assert!(!out.join(format!("metadata/metadata_{id}.parquet")).exists());
        assert!(
            !out.join(format!("img_emb/img_emb_{id}.npy")).exists(),
            "{id}"
        );
    }
    assert!(
        err.lines()
            .last()
            .unwrap()
            .starts_with("error: 4 shard(s) not done"),
        "{err}"
    );
    assert!(out.join("metadata/metadata_good.parquet").exists());
    // Two shards with one name, a missing shard: refused before any model is loaded.
    let e = fails(
        &d,
        &[
            "embed-shards",
            "--random-weights",
            "--out",
            s(&out),
            s(&good),
            s(&good),
        ],
    );
    assert!(e.contains("would both write"), "{e}");
    let e = fails(
        &d,
        &[
            "embed-shards",
            "--random-weights",
            "--out",
            s(&out),
            "nope.tar",
        ],
    );
    assert!(e.contains("no such shard"), "{e}");
}
