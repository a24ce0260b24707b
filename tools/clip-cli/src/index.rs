//! `clip index FOLDER --out INDEX` embeds every .jpg/.jpeg/.png under FOLDER (recursively) in
//! batches, resumably; `clip search INDEX "query"` ranks the indexed images by cosine
//! similarity to a text or to an example image. The index format is in `store.rs`.

use crate::model_dir::{self, Loaded, ModelArgs};
use crate::store::{Manifest, Stamp, Store};
use clap::Args;
use clip::{ImageInput, PixelValues, Truncation};
use std::collections::{HashMap, HashSet};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Args)]
#[command(
    after_help = "Examples:\n  clip index ~/Pictures --out pictures.index\n  clip index ~/Pictures --out pictures.index --batch 32 --threads 4\n  clip index photos --out photos.index --random-weights\n\nRun it again after an interruption (or after adding images): finished images are kept.\nWhen resuming, the model defaults to the one that made the index."
)]
pub struct IndexArgs {
    /// Folder of images (searched recursively for .jpg, .jpeg, .png).
    folder: PathBuf,
    /// The index folder to create or resume.
    #[arg(long)]
    out: PathBuf,
    /// Images per forward pass (and per saved step).
    #[arg(long, default_value_t = 16, value_parser = crate::args::positive)]
    batch: usize,
    #[command(flatten)]
    model: ModelArgs,
}

#[derive(Args)]
#[command(
    after_help = "Examples:\n  clip search pictures.index \"a dog on a beach\"\n  clip search pictures.index \"sunset\" -k 3 --json\n  clip search pictures.index --image example.jpg\n\nThe model defaults to the one that made the index (its folder, or random weights)."
)]
pub struct SearchArgs {
    /// The index folder made by `clip index`.
    index: PathBuf,
    /// The text to search for.
    query: Option<String>,
    /// Search by an example image instead of a text.
    #[arg(long, conflicts_with = "query")]
    image: Option<PathBuf>,
    /// How many results.
    #[arg(short = 'k', long, default_value_t = 10)]
    top_k: usize,
    /// One JSON object per result: {"rank", "score", "path", "random_weights"}.
    #[arg(long)]
    json: bool,
    /// Cut a query longer than the context (77 tokens) instead of refusing it.
    #[arg(long, conflicts_with = "image")]
    truncate: bool,
    #[command(flatten)]
    model: ModelArgs,
}

fn is_image(p: &Path) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "jpg" | "jpeg" | "png"))
}

/// Image files under `dir`, recursively (symbolic links to folders are not followed), sorted.
fn find_images(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), String> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("{}: cannot list: {e}", dir.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("{}: cannot list: {e}", dir.display()))?;
        let path = entry.path();
        let ft = entry
            .file_type()
            .map_err(|e| format!("{}: {e}", path.display()))?;
        if ft.is_dir() {
            find_images(&path, out)?;
        } else if is_image(&path) && path.is_file() {
            out.push(path);
        }
    }
    Ok(())
}

/// A one-line progress bar on stderr, redrawn with `\r`; silent when stderr is not a terminal.
struct Progress {
    total: usize,
    done: usize,
    start: Instant,
    shown: bool,
    /// The bar is on the current line (so a message must start a new one).
    drawn: std::cell::Cell<bool>,
}

fn duration(secs: f64) -> String {
    let s = secs.round() as u64;
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, s % 3600 / 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

impl Progress {
    fn new(total: usize) -> Progress {
        Progress {
            total,
            done: 0,
            start: Instant::now(),
            shown: std::io::stderr().is_terminal(),
            drawn: std::cell::Cell::new(false),
        }
    }

    fn step(&mut self, n: usize) {
        self.done += n;
        if !self.shown {
            return;
        }
        let secs = self.start.elapsed().as_secs_f64();
        let rate = self.done as f64 / secs.max(1e-9);
        let eta = (self.total - self.done) as f64 / rate.max(1e-9);
        let width = 30;
        let filled = width * self.done / self.total.max(1);
        self.drawn.set(true);
        eprint!(
            "\r[{}{}] {}/{}  {:.1} img/s  ETA {}   ",
            "#".repeat(filled),
            "-".repeat(width - filled),
            self.done,
            self.total,
            rate,
            duration(eta)
        );
    }

    /// Ends the bar's line (before a warning, an error or the summary).
    fn finish(&self) {
        if self.drawn.replace(false) {
            eprintln!();
        }
    }
}

fn manifest_of(loaded: &Loaded) -> Manifest {
    Manifest {
        model: loaded.identity(),
        dim: loaded.model.config().projection_dim,
        image_size: loaded.model.config().vision.image_size,
        random_weights: loaded.random(),
    }
}

/// The model options with the index's own model filled in when none is given (`--model` and
/// `--random-weights` both absent): its folder, if it still exists, or random weights.
fn default_to_manifest(store: &Store, args: &ModelArgs) -> ModelArgs {
    let mut args = args.clone();
    if args.model.is_none() && !args.random_weights {
        let m = &store.manifest;
        if m.random_weights {
            args.random_weights = true;
        } else if Path::new(&m.model).is_dir() {
            args.model = Some(PathBuf::from(&m.model));
        }
    }
    args
}

/// Before loading: refuses an index made with random weights when a folder is asked for, and
/// the other way round (the full check is [`check_same_model`]).
fn check_kind(store: &Store, args: &ModelArgs) -> Result<(), String> {
    let m = &store.manifest;
    if m.random_weights && !args.random_weights {
        return Err(format!(
            "{} was made with random weights; pass --random-weights",
            store.dir.display()
        ));
    }
    if !m.random_weights && args.random_weights {
        return Err(format!(
            "{} was made with {}; pass --model {}",
            store.dir.display(),
            m.describe(),
            m.model
        ));
    }
    Ok(())
}

/// Refuses an index made by another model.
fn check_same_model(store: &Store, loaded: &Loaded) -> Result<(), String> {
    let want = manifest_of(loaded);
    if store.manifest != want {
        return Err(format!(
            "{} was made with {}, not {}; use the same model (--model or --random-weights)",
            store.dir.display(),
            store.manifest.describe(),
            want.describe()
        ));
    }
    Ok(())
}

/// A file to embed.
struct Todo {
    path: PathBuf,
    /// The string stored for it.
    name: String,
    /// Its stamp when planned (taken before it is read).
    stamp: Option<Stamp>,
    /// Already indexed under another stamp.
    changed: bool,
}

/// What an index run does to the store.
#[derive(Default)]
struct Plan {
    /// Files to embed: new ones and changed ones.
    todo: Vec<Todo>,
    /// Of `todo`, those already indexed under another stamp.
    changed: usize,
    /// Entries to drop: their file changed (re-embedded) or is gone.
    remove: Vec<usize>,
    /// Entries whose file is gone.
    gone: usize,
    /// Entries kept as they are.
    unchanged: usize,
    /// Entries of a format-1 index, kept, taking their file's current stamp.
    adopt: Vec<(usize, Stamp)>,
    /// Files that cannot be stored (path not UTF-8 or with a newline).
    skipped: usize,
}

/// Compares the files found with the store: new, changed (another size or modification
/// time), unchanged, and entries whose file no longer exists.
fn plan(files: &[PathBuf], store: &Store) -> Plan {
    let index: HashMap<&str, usize> = store
        .paths
        .iter()
        .enumerate()
        .map(|(i, p)| (p.as_str(), i))
        .collect();
    let mut plan = Plan::default();
    let mut seen = HashSet::new();
    for f in files {
        let s = match f.to_str() {
            Some(s) if s.contains('\n') => {
                eprintln!("warning: skipping {}: a newline in the path", f.display());
                plan.skipped += 1;
                continue;
            }
            Some(s) => s,
            None => {
                eprintln!("warning: skipping {}: the path is not UTF-8", f.display());
                plan.skipped += 1;
                continue;
            }
        };
        let stamp = Stamp::of(f);
        match index.get(s) {
            None => plan.todo.push(Todo {
                path: f.clone(),
                name: s.to_string(),
                stamp,
                changed: false,
            }),
            Some(&i) => {
                seen.insert(i);
                match (store.stamps[i], stamp) {
                    (Some(old), Some(now)) if old == now => plan.unchanged += 1,
                    (None, Some(now)) => {
                        plan.adopt.push((i, now));
                        plan.unchanged += 1;
                    }
                    _ => {
                        plan.remove.push(i);
                        plan.changed += 1;
                        plan.todo.push(Todo {
                            path: f.clone(),
                            name: s.to_string(),
                            stamp,
                            changed: true,
                        });
                    }
                }
            }
        }
    }
    // Entries outside the folder indexed now stay, unless their file is gone.
    for (i, p) in store.paths.iter().enumerate() {
        if !seen.contains(&i) && std::fs::symlink_metadata(p).is_err() {
            plan.remove.push(i);
            plan.gone += 1;
        }
    }
    plan.remove.sort_unstable();
    plan
}

/// Preprocesses one batch (in parallel), warns about and skips unreadable files, encodes the
/// rest and appends them to the store. Returns (new added, changed added, skipped).
fn index_batch(
    loaded: &Loaded,
    store: &mut Store,
    chunk: &[Todo],
    progress: &Progress,
) -> Result<(usize, usize, usize), String> {
    let model = &loaded.model;
    let inputs: Vec<ImageInput<'_>> = chunk.iter().map(|t| ImageInput::Path(&t.path)).collect();
    let mut pixels = Vec::new();
    let mut names = Vec::new();
    let mut stamps = Vec::new();
    let (mut changed, mut skipped) = (0, 0);
    for (t, r) in chunk.iter().zip(model.preprocess_each(&inputs)) {
        let path = &t.path;
        match r {
            Ok(pv) => {
                pixels.extend_from_slice(&pv.data);
                names.push(t.name.clone());
                stamps.push(t.stamp);
                changed += usize::from(t.changed);
            }
            Err(e @ clip::Error::InvalidInput { .. }) => {
                progress.finish();
                return Err(e.to_string());
            }
            Err(e) => {
                progress.finish();
                let msg = e.to_string();
                if msg.contains(&path.display().to_string()) {
                    eprintln!("warning: skipping {msg}");
                } else {
                    eprintln!("warning: skipping {}: {msg}", path.display());
                }
                skipped += 1;
            }
        }
    }
    if !names.is_empty() {
        let s = model.config().vision.image_size;
        let pv = PixelValues {
            data: pixels,
            shape: [names.len(), 3, s, s],
        };
        let e = model.embed_pixels(&pv).map_err(|e| e.to_string())?;
        store.append(&names, &stamps, e.as_slice())?;
    }
    Ok((names.len() - changed, changed, skipped))
}

pub fn run_index(a: &IndexArgs) -> Result<(), String> {
    if !a.folder.is_dir() {
        return Err(format!("{}: not a folder", a.folder.display()));
    }
    let root =
        std::fs::canonicalize(&a.folder).map_err(|e| format!("{}: {e}", a.folder.display()))?;
    let mut files = Vec::new();
    find_images(&root, &mut files)?;
    files.sort();
    if files.is_empty() {
        return Err(format!(
            "{}: no .jpg, .jpeg or .png files",
            a.folder.display()
        ));
    }
    if a.out.exists() && !a.out.is_dir() {
        return Err(format!("{}: exists and is not a folder", a.out.display()));
    }
    // The writer lock first: a second `clip index` on the same --out stops here.
    let (lock, existing) = Store::acquire(&a.out)?;
    let margs = match &existing {
        Some(s) => {
            let margs = default_to_manifest(s, &a.model);
            check_kind(s, &margs)?;
            margs
        }
        None => a.model.clone(),
    };
    let loaded = model_dir::load(&margs, Some(a.batch))?;
    let mut store = match existing {
        Some(mut s) => {
            check_same_model(&s, &loaded)?;
            s.hold(lock);
            s.consolidate()?;
            s
        }
        None => Store::create_locked(&a.out, manifest_of(&loaded), lock)?,
    };
    let plan = plan(&files, &store);
    for &(i, stamp) in &plan.adopt {
        store.stamps[i] = Some(stamp);
    }
    // Changed and vanished entries leave before anything is embedded (made durable now: a
    // stop later finds the changed files missing and embeds them as new).
    store.remove(&plan.remove);
    if !plan.remove.is_empty() || !plan.adopt.is_empty() {
        store.consolidate()?;
    }
    let mut progress = Progress::new(plan.todo.len());
    let (mut new, mut changed, mut skipped) = (0usize, 0usize, plan.skipped);
    for chunk in plan.todo.chunks(a.batch) {
        let (n, c, bad) = index_batch(&loaded, &mut store, chunk, &progress)?;
        new += n;
        changed += c;
        skipped += bad;
        progress.step(chunk.len());
    }
    progress.finish();
    store.consolidate()?;
    println!(
        "indexed {new} new, {} already indexed, {skipped} skipped, {changed} changed, {} removed; {} holds {} images",
        plan.unchanged,
        plan.gone,
        a.out.display(),
        store.len()
    );
    Ok(())
}

/// Why a folder cannot be searched, and how to make an index of it without writing into it.
fn not_an_index(p: &Path) -> String {
    let mut files = Vec::new();
    let holds_images = p.is_dir() && find_images(p, &mut files).is_ok() && !files.is_empty();
    let name = p
        .file_name()
        .map_or("photos".into(), |n| n.to_string_lossy());
    if holds_images {
        format!(
            "{}: a folder of images, not an index; make an index of it first: clip index {} --out {}.index",
            p.display(),
            p.display(),
            name
        )
    } else {
        format!(
            "{}: not an index (make one with clip index FOLDER --out {})",
            p.display(),
            p.display()
        )
    }
}

pub fn run_search(a: &SearchArgs) -> Result<(), String> {
    if a.query.is_none() && a.image.is_none() {
        return Err("give a text query or --image EXAMPLE".into());
    }
    if a.top_k == 0 {
        return Err("-k must be at least 1".into());
    }
    if let Some(p) = &a.image {
        crate::args::input_file(p)?;
    }
    let store = Store::open(&a.index)?.ok_or_else(|| not_an_index(&a.index))?;
    if store.len() == 0 {
        return Err(format!("{}: the index holds no images", a.index.display()));
    }
    let margs = default_to_manifest(&store, &a.model);
    check_kind(&store, &margs)?;
    let loaded = model_dir::load(&margs, None)?;
    check_same_model(&store, &loaded)?;
    let truncation = match a.truncate {
        true => Truncation::Cut,
        false => Truncation::Refuse,
    };
    let q = match (&a.query, &a.image) {
        (Some(text), _) => loaded.model.embed_texts(&[text.as_str()], truncation),
        (None, img) => loaded.model.embed_image_files(img.as_slice()),
    }
    .map_err(|e| e.to_string())?;
    let mut scored: Vec<(f32, usize)> = (0..store.len())
        .map(|i| {
            let s: f32 = store.row(i).iter().zip(q.row(0)).map(|(a, b)| a * b).sum();
            (s, i)
        })
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    // Files deleted since they were indexed are left out (and counted), not shown as hits.
    let mut gone = 0usize;
    let hits: Vec<(f32, usize)> = scored
        .iter()
        .copied()
        // A row with NaN (an index made from NaN weights) has no meaningful rank.
        .filter(|&(score, _)| score.is_finite())
        .filter(|&(_, i)| {
            let exists = std::fs::symlink_metadata(&store.paths[i]).is_ok();
            gone += usize::from(!exists);
            exists
        })
        .take(a.top_k)
        .collect();
    for (rank, &(score, i)) in hits.iter().enumerate() {
        if a.json {
            let obj = serde_json::json!({
                "rank": rank + 1,
                "score": score,
                "path": store.paths[i],
                "random_weights": loaded.random(),
            });
            println!("{obj}");
        } else {
            println!("{score:.4}  {}", store.paths[i]);
        }
    }
    if gone > 0 {
        eprintln!(
            "note: skipped {gone} indexed file(s) that no longer exist; run clip index again to \
             drop them"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{duration, is_image};
    use std::path::Path;

    #[test]
    fn eta_reads_well() {
        assert_eq!(duration(4.4), "4s");
        assert_eq!(duration(75.0), "1m15s");
        assert_eq!(duration(3725.0), "1h02m");
    }

    #[test]
    fn image_extensions_ignore_case() {
        assert!(is_image(Path::new("a/b.JPG")) && is_image(Path::new("x.jpeg")));
        assert!(is_image(Path::new("x.Png")) && !is_image(Path::new("x.gif")));
        assert!(!is_image(Path::new("png")));
    }
}
