//! `clip-fuzz`: the stable-Rust side of fuzzing, without AFL++.
//!
//! - `clip-fuzz seeds`: (re)writes the generated seeds under `fuzz/corpus/`.
//! - `clip-fuzz replay TARGET PATH...`: runs a target on files (or every file of folders),
//!   e.g. on the crashes AFL++ found; prints each file's outcome and the time it took;
//!   exits 1 if any panicked.
//! - `clip-fuzz recipe IN OUT`: writes the JPEG that an image recipe (an input of the image
//!   target's structure-aware mode, starting `JSEG`) describes, to open it with other tools.

use clip_fuzz::{seeds, Target};
use std::path::{Path, PathBuf};
use std::time::Instant;

fn files(path: &Path) -> Vec<PathBuf> {
    if path.is_dir() {
        let mut v: Vec<PathBuf> = std::fs::read_dir(path)
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        v.retain(|p| p.is_file());
        v.sort();
        v
    } else {
        vec![path.to_path_buf()]
    }
}

fn write_seeds() -> Result<(), String> {
    for (target, list) in [
        (Target::Weights, seeds::weights_seeds()),
        (Target::Tokenizer, seeds::tokenizer_seeds()),
        (Target::Image, seeds::image_seeds()),
    ] {
        let dir = target.corpus_dir();
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        for (name, bytes) in list {
            let path = dir.join(name);
            std::fs::write(&path, &bytes).map_err(|e| format!("{}: {e}", path.display()))?;
            println!("{} ({} bytes)", path.display(), bytes.len());
        }
    }
    Ok(())
}

fn replay(target: Target, paths: &[String]) -> Result<(), String> {
    let mut failed = 0;
    for path in paths.iter().flat_map(|p| files(Path::new(p))) {
        let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let t = Instant::now();
        let ok = std::panic::catch_unwind(|| target.run(&bytes)).is_ok();
        let dt = t.elapsed();
        println!(
            "{} {} ({} bytes, {dt:.2?})",
            if ok { "ok   " } else { "PANIC" },
            path.display(),
            bytes.len()
        );
        failed += usize::from(!ok);
    }
    if failed > 0 {
        return Err(format!("{failed} input(s) panicked"));
    }
    Ok(())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("seeds") => write_seeds(),
        Some("recipe") if args.len() == 3 => std::fs::read(&args[1])
            .map_err(|e| format!("{}: {e}", args[1]))
            .and_then(|b| {
                let recipe = b
                    .strip_prefix(&clip_fuzz::jpeg_recipe::MAGIC[..])
                    .ok_or_else(|| format!("{}: not a recipe (no JSEG prefix)", args[1]))?;
                std::fs::write(&args[2], clip_fuzz::jpeg_recipe::serialise(recipe))
                    .map_err(|e| format!("{}: {e}", args[2]))
            }),
        Some("replay") if args.len() >= 3 => match Target::from_name(&args[1]) {
            Some(t) => replay(t, &args[2..]),
            None => Err(format!("unknown target {:?}", args[1])),
        },
        _ => Err(
            "usage: clip-fuzz seeds | clip-fuzz replay weights|image|tokenizer PATH... | \
                 clip-fuzz recipe IN OUT"
                .into(),
        ),
    };
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
