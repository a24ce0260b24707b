//! `clip embed-shards SHARD... --out DIR`: embeds collections shard by shard into
//! clip-retrieval's layout, resumably, for slurm array jobs, Kubernetes jobs or a shell loop:
//!
//! ```text
//! DIR/img_emb/img_emb_{id}.npy          float32 [N, D], normalised; row i <-> metadata row i
//!                                       (a zero row where the image could not be read)
//! DIR/text_emb/text_emb_{id}.npy        float32 [N, D] of the captions (zero rows: no caption);
//!                                       only when the shard has captions
//! DIR/metadata/metadata_{id}.parquet    key, caption, url, image_path, status ("ok" | "error"),
//!                                       error (the reason, or null): every sample of the shard
//! DIR/clip-rs.json                      the model that made them (a re-run must use the same)
//! DIR/.locks/{id}                       flock'ed while a process works on the shard (its pid)
//! ```
//!
//! A shard is done when its metadata file exists: it is renamed into place last, after the
//! other outputs (each written to a temporary name and renamed). A re-run skips done shards
//! and redoes the others from the start, so a killed run loses only the shards in flight and
//! duplicates nothing. Processes sharing a DIR split the shards between them through the
//! locks. Decoding and preprocessing of the next batch (`--decode-threads`) overlap the
//! forward pass of the current one; both are per image, so the rows are bitwise those of
//! embedding each file alone.
//!
//! Not here: reading shards (`shard_read.rs`, `parquet_io.rs`), the model (`crates/clip`).

use crate::model_dir::{self, Loaded, ModelArgs};
use crate::parquet_io::{write_strings, Column};
use crate::shard_read::{Columns, Sample, Shard};
use clap::Args;
use clip::{ImageInput, PixelValues, Truncation};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::mpsc::sync_channel;
use std::time::Instant;

#[derive(Args)]
#[command(
    after_help = "Examples:\n  clip embed-shards shards/{00000..00099}.tar --out embeddings --model DIR\n  clip embed-shards photos/ --out photos.emb --random-weights\n  clip embed-shards part-0.parquet --out emb --image-column jpg --caption-column caption\n\nShards: webdataset tars (.tar, .tar.gz, as img2dataset writes them), folders, parquet files.\nOutputs (clip-retrieval's layout): DIR/img_emb/img_emb_{shard}.npy, DIR/text_emb/text_emb_{shard}.npy,\nDIR/metadata/metadata_{shard}.parquet (every sample; status and error name unreadable images).\nRun it again after an interruption: finished shards are skipped, unfinished ones redone."
)]
pub struct EmbedShardsArgs {
    /// Shards: webdataset .tar / .tar.gz files, folders, or .parquet files.
    #[arg(required = true)]
    shards: Vec<PathBuf>,
    /// The output folder (created if needed).
    #[arg(long)]
    out: PathBuf,
    /// Images per forward pass.
    #[arg(long, default_value_t = 32, value_parser = crate::args::positive)]
    batch: usize,
    /// Threads decoding and preprocessing the next batch during the forward pass.
    #[arg(long, default_value_t = 1, value_parser = crate::args::positive)]
    decode_threads: usize,
    /// Do not embed captions (no text_emb files).
    #[arg(long)]
    no_text: bool,
    /// Parquet shards: the column of encoded images (default: jpg, png, jpeg, webp, image,
    /// image_bytes or img; bytes, or a struct with a `bytes` field).
    #[arg(long)]
    image_column: Option<String>,
    /// Parquet shards: the caption column (default: caption, if present).
    #[arg(long)]
    caption_column: Option<String>,
    /// Parquet shards: the key column (default: key, if present; else the row number).
    #[arg(long)]
    key_column: Option<String>,
    #[command(flatten)]
    model: ModelArgs,
}

const SUBDIRS: [&str; 3] = ["img_emb", "text_emb", "metadata"];

fn out_path(dir: &Path, kind: &str, id: &str, ext: &str) -> PathBuf {
    dir.join(kind).join(format!("{kind}_{id}.{ext}"))
}

fn is_done(dir: &Path, id: &str) -> bool {
    out_path(dir, "metadata", id, "parquet").is_file()
        && out_path(dir, "img_emb", id, "npy").is_file()
}

/// One preprocessed batch: the samples (images dropped) and, per sample, its pixels or why
/// it cannot be embedded.
type Batch = Vec<(Sample, Result<PixelValues, String>)>;

/// What one shard gave: one row per sample, in the shard's order.
#[derive(Default)]
struct Outputs {
    /// `[samples, D]`; zero rows for the samples whose image failed.
    img: Vec<f32>,
    /// `[samples, D]`; zero rows for the samples without a caption.
    text: Vec<f32>,
    has_caption: bool,
    samples: Vec<Sample>,
    /// Per sample, why its image was not embedded (`None`: embedded).
    errors: Vec<Option<String>>,
}

impl Outputs {
    fn failed(&self) -> usize {
        self.errors.iter().filter(|e| e.is_some()).count()
    }
}

/// The reason of a library error without the image name it starts with.
fn reason(e: &impl std::fmt::Display, name: &str) -> String {
    let msg = e.to_string();
    msg.strip_prefix(name)
        .and_then(|m| m.strip_prefix(": "))
        .map_or(msg.clone(), str::to_string)
}

/// Decodes and preprocesses a batch on `pool`, each sample on its own.
fn prepare(loaded: &Loaded, pool: &rayon::ThreadPool, samples: Vec<Sample>) -> Batch {
    use rayon::prelude::*;
    let model = &loaded.model;
    let s = model.config().vision.image_size;
    pool.install(|| {
        samples
            .into_par_iter()
            .map(|mut sample| {
                let r = match (sample.problem.take(), sample.image.take()) {
                    (Some(p), _) => Err(p),
                    (None, None) => Err("no image".to_string()),
                    (None, Some(bytes)) => {
                        let input = ImageInput::Bytes {
                            bytes: &bytes,
                            name: &sample.image_path,
                        };
                        match model.preprocessor().preprocess_input(&input) {
                            Ok(pv) if (pv.shape[2], pv.shape[3]) == (s, s) => Ok(pv),
                            Ok(pv) => Err(format!(
                                "preprocessing gives {}x{}; the model needs {s}x{s}",
                                pv.shape[3], pv.shape[2]
                            )),
                            Err(e) => Err(reason(&e, &sample.image_path)),
                        }
                    }
                };
                (sample, r)
            })
            .collect()
    })
}

/// Embeds one batch into `out`: the images that decoded, and the captions.
fn embed_batch(loaded: &Loaded, batch: Batch, out: &mut Outputs, text: bool) -> Result<(), String> {
    let model = &loaded.model;
    let d = model.config().projection_dim;
    let s = model.config().vision.image_size;
    let n = batch.len();
    let first = out.samples.len();
    let mut pixels = Vec::new();
    let mut ok_rows = Vec::new();
    for (i, (sample, r)) in batch.into_iter().enumerate() {
        match r {
            Ok(pv) => {
                pixels.extend_from_slice(&pv.data);
                ok_rows.push(i);
                out.errors.push(None);
            }
            Err(e) => out.errors.push(Some(e)),
        }
        out.samples.push(sample);
    }
    let mut img = vec![0f32; n * d];
    if !ok_rows.is_empty() {
        let pv = PixelValues {
            data: pixels,
            shape: [ok_rows.len(), 3, s, s],
        };
        let e = model.embed_pixels(&pv).map_err(|e| e.to_string())?;
        for (&i, row) in ok_rows.iter().zip(e.iter()) {
            img[i * d..(i + 1) * d].copy_from_slice(row);
        }
    }
    out.img.extend_from_slice(&img);
    if text {
        let samples = &out.samples[first..];
        let captions: Vec<&str> = samples
            .iter()
            .filter_map(|s| s.caption.as_deref())
            .collect();
        let mut rows = vec![0f32; n * d];
        if !captions.is_empty() {
            out.has_caption = true;
            // clip-retrieval cuts long captions too (clip.tokenize(truncate=True)).
            let t = model
                .embed_texts(&captions, Truncation::Cut)
                .map_err(|e| e.to_string())?;
            let mut next = t.iter();
            for (i, sample) in samples.iter().enumerate() {
                if sample.caption.is_some() {
                    rows[i * d..(i + 1) * d].copy_from_slice(next.next().expect("one per caption"));
                }
            }
        }
        out.text.extend_from_slice(&rows);
    }
    Ok(())
}

/// Reads, preprocesses and embeds a shard, decoding batch k+1 on a second thread while
/// batch k is embedded.
fn embed_shard(
    loaded: &Loaded,
    a: &EmbedShardsArgs,
    shard: &Shard,
    pool: &rayon::ThreadPool,
    progress: &mut Progress,
) -> Result<Outputs, String> {
    let columns = Columns {
        image: a.image_column.clone(),
        caption: a.caption_column.clone(),
        key: a.key_column.clone(),
    };
    let mut out = Outputs::default();
    std::thread::scope(|scope| {
        let (tx, rx) = sync_channel::<Batch>(1);
        let producer = scope.spawn(move || {
            let mut buf = Vec::with_capacity(a.batch);
            let stopped = || "stopped".to_string();
            shard.for_each(&columns, &mut |sample| {
                buf.push(sample);
                if buf.len() == a.batch {
                    let batch = prepare(loaded, pool, std::mem::take(&mut buf));
                    tx.send(batch).map_err(|_| stopped())?;
                }
                Ok(())
            })?;
            if !buf.is_empty() {
                tx.send(prepare(loaded, pool, buf)).map_err(|_| stopped())?;
            }
            Ok::<(), String>(())
        });
        let mut result = Ok(());
        for batch in rx.iter() {
            let n = batch.len();
            if let Err(e) = embed_batch(loaded, batch, &mut out, !a.no_text) {
                result = Err(e);
                break;
            }
            progress.step(&shard.id, n);
        }
        drop(rx);
        let read = producer
            .join()
            .unwrap_or_else(|_| Err(format!("{}: internal error reading it", shard.id)));
        result.and(read)
    })?;
    Ok(out)
}

fn column<'a>(name: &'a str, values: Vec<Option<&'a str>>, nullable: bool) -> Column<'a> {
    Column {
        name,
        values,
        nullable,
    }
}

/// Writes a shard's outputs, the metadata last (the mark of a finished shard).
fn write_outputs(dir: &Path, id: &str, out: &Outputs, dim: usize) -> Result<(), String> {
    let n = out.samples.len();
    let npy = |kind: &str, data: &[f32]| {
        let p = out_path(dir, kind, id, "npy");
        crate::npy::write_f32(&p, &[n, dim], data)
            .map_err(|e| format!("{}: cannot write: {e}", p.display()))
    };
    npy("img_emb", &out.img)?;
    if out.has_caption {
        npy("text_emb", &out.text)?;
    }
    let s = &out.samples;
    let status = |e: &Option<String>| Some(if e.is_some() { "error" } else { "ok" });
    let meta = write_strings(&[
        column(
            "key",
            s.iter().map(|s| Some(s.key.as_str())).collect(),
            false,
        ),
        column(
            "caption",
            s.iter().map(|s| s.caption.as_deref()).collect(),
            true,
        ),
        column("url", s.iter().map(|s| s.url.as_deref()).collect(), true),
        column(
            "image_path",
            s.iter().map(|s| Some(s.image_path.as_str())).collect(),
            false,
        ),
        column("status", out.errors.iter().map(status).collect(), false),
        column(
            "error",
            out.errors.iter().map(|e| e.as_deref()).collect(),
            true,
        ),
    ])?;
    crate::store::write_atomic(&out_path(dir, "metadata", id, "parquet"), &meta)
}

/// Removes what an interrupted run left of shard `id` (called with its lock held).
fn clear_partial(dir: &Path, id: &str) {
    for kind in SUBDIRS {
        let prefix = format!("{kind}_{id}.");
        let Ok(entries) = std::fs::read_dir(dir.join(kind)) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with(&prefix) && (kind != "metadata" || name.contains(".tmp")) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

/// Takes the lock of shard `id`; `None` if another process holds it.
fn lock_shard(dir: &Path, id: &str) -> Result<Option<std::fs::File>, String> {
    let p = dir.join(".locks").join(id);
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&p)
        .map_err(|e| format!("{}: cannot open: {e}", p.display()))?;
    match f.try_lock() {
        Ok(()) => {
            // The holder's pid, for whoever looks for the process working on the shard.
            use std::io::Write;
            let _ = f
                .set_len(0)
                .and_then(|()| writeln!(&f, "{}", std::process::id()));
            Ok(Some(f))
        }
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(e)) => Err(format!("{}: cannot lock: {e}", p.display())),
    }
}

/// Records the model in `DIR/clip-rs.json`, or refuses a model other than the recorded one.
fn check_model(dir: &Path, loaded: &Loaded) -> Result<(), String> {
    let cfg = loaded.model.config();
    let want = serde_json::json!({
        "model": loaded.identity(),
        "dim": cfg.projection_dim,
        "image_size": cfg.vision.image_size,
        "random_weights": loaded.random(),
    });
    let p = dir.join("clip-rs.json");
    match std::fs::read(&p) {
        Ok(bytes) => {
            let had: serde_json::Value = serde_json::from_slice(&bytes)
                .map_err(|e| format!("{}: not readable: {e}", p.display()))?;
            if had != want {
                return Err(format!(
                    "{} holds embeddings of {}, not {}; use that model or another --out",
                    dir.display(),
                    had["model"].as_str().unwrap_or("another model"),
                    loaded.identity()
                ));
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            crate::store::write_atomic(&p, format!("{want}\n").as_bytes())
        }
        Err(e) => Err(format!("{}: cannot read: {e}", p.display())),
    }
}

/// A one-line progress bar on stderr (shards done, images, images per second), redrawn with
/// `\r`; silent when stderr is not a terminal.
struct Progress {
    shards: usize,
    shards_done: usize,
    images: usize,
    start: Instant,
    shown: bool,
    drawn: bool,
}

impl Progress {
    fn step(&mut self, id: &str, n: usize) {
        self.images += n;
        if !self.shown {
            return;
        }
        let width = 20;
        let filled = width * self.shards_done / self.shards.max(1);
        eprint!(
            "\r[{}{}] shard {}/{} ({id})  {} images  {:.1} img/s   ",
            "#".repeat(filled),
            "-".repeat(width - filled),
            self.shards_done + 1,
            self.shards,
            self.images,
            self.rate()
        );
        self.drawn = true;
    }

    fn rate(&self) -> f64 {
        self.images as f64 / self.start.elapsed().as_secs_f64().max(1e-9)
    }

    /// Ends the bar's line before other output.
    fn finish(&mut self) {
        if std::mem::take(&mut self.drawn) {
            eprintln!();
        }
    }
}

pub fn run(a: &EmbedShardsArgs) -> Result<(), String> {
    let mut shards: Vec<Shard> = Vec::new();
    for p in &a.shards {
        let shard = Shard::new(p)?;
        if let Some(other) = shards.iter().find(|s| s.id == shard.id) {
            return Err(format!(
                "{} and {} would both write the outputs of shard {:?}; rename one",
                other.path.display(),
                shard.path.display(),
                shard.id
            ));
        }
        shards.push(shard);
    }
    if a.out.exists() && !a.out.is_dir() {
        return Err(format!("{}: exists and is not a folder", a.out.display()));
    }
    for sub in SUBDIRS.iter().chain(&[".locks"]) {
        let d = a.out.join(sub);
        std::fs::create_dir_all(&d)
            .map_err(|e| format!("{}: cannot create folder: {e}", d.display()))?;
    }
    let todo: Vec<&Shard> = shards.iter().filter(|s| !is_done(&a.out, &s.id)).collect();
    let already = shards.len() - todo.len();
    if todo.is_empty() {
        println!(
            "all {} shards are done in {}",
            shards.len(),
            a.out.display()
        );
        return Ok(());
    }
    let loaded = model_dir::load(&a.model, Some(a.batch))?;
    check_model(&a.out, &loaded)?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(a.decode_threads)
        .thread_name(|i| format!("clip-decode-{i}"))
        .build()
        .map_err(|e| format!("--decode-threads {}: {e}", a.decode_threads))?;
    let mut progress = Progress {
        shards: todo.len(),
        shards_done: 0,
        images: 0,
        start: Instant::now(),
        shown: std::io::stderr().is_terminal(),
        drawn: false,
    };
    let (mut embedded, mut failed, mut busy, mut broken) = (0usize, 0usize, 0usize, Vec::new());
    for shard in todo {
        let Some(_lock) = lock_shard(&a.out, &shard.id)? else {
            busy += 1;
            continue;
        };
        // Another process may have finished it since the check above.
        if is_done(&a.out, &shard.id) {
            continue;
        }
        clear_partial(&a.out, &shard.id);
        let t = Instant::now();
        let result = embed_shard(&loaded, a, shard, &pool, &mut progress).and_then(|out| {
            write_outputs(
                &a.out,
                &shard.id,
                &out,
                loaded.model.config().projection_dim,
            )?;
            Ok(out)
        });
        progress.finish();
        match result {
            Ok(out) => {
                let secs = t.elapsed().as_secs_f64();
                let bad = out.failed();
                let n = out.samples.len() - bad;
                println!(
                    "{}: {n} embedded, {bad} failed, {:.1} s, {:.1} img/s",
                    shard.id,
                    secs,
                    (n + bad) as f64 / secs.max(1e-9)
                );
                embedded += n;
                failed += bad;
                progress.shards_done += 1;
            }
            Err(e) => {
                eprintln!("warning: shard {} not done: {e}", shard.id);
                clear_partial(&a.out, &shard.id);
                broken.push(shard.id.clone());
            }
        }
    }
    let secs = progress.start.elapsed().as_secs_f64();
    println!(
        "{} shards embedded, {already} already done, {busy} taken by another process, {} \
         not done; {embedded} images embedded and {failed} failed in {secs:.1} s ({:.1} img/s)",
        progress.shards_done,
        broken.len(),
        (embedded + failed) as f64 / secs.max(1e-9)
    );
    if !broken.is_empty() {
        return Err(format!(
            "{} shard(s) not done ({}); see the warnings above",
            broken.len(),
            broken.join(", ")
        ));
    }
    Ok(())
}
