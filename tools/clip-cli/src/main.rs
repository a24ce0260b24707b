//! The `clip` command-line program: demo, classify, similarity, index, search, embed,
//! embed-shards, preprocess, tokenize, bench, check, serve and quantize.
//!
//! Errors print one line on stderr and exit non-zero; nothing panics on bad input, and a
//! panic hook turns any bug that does panic into one line too (no backtrace).

mod args;
mod bench;
mod check;
mod classify;
mod demo;
mod embed;
mod index;
mod model_dir;
mod npy;
mod out;
mod parquet_io;
mod preprocess;
mod quantize;
mod serve;
mod shard_read;
mod shards;
mod similarity;
mod store;
mod tokenize;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "clip",
    version,
    about = "CPU inference for OpenAI's CLIP",
    long_about = None,
    after_help = "Examples:\n  clip demo\n  clip classify cat.jpg --labels \"cat,dog\"\n  clip similarity --images a.jpg b.png --texts \"a cat\" \"a dog\"\n  clip index ~/Pictures --out pictures.index && clip search pictures.index \"a dog\"\n  clip embed-shards shards/*.tar --out embeddings\n\nThe model: --model DIR, else CLIP_MODEL, else the Hugging Face cache \
                  (openai/clip-vit-base-patch32); --random-weights runs without files."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The whole pipeline on a bundled sample image: tokens, similarities, timings.
    Demo(demo::DemoArgs),
    /// Zero-shot classification of images against comma-separated labels.
    Classify(classify::ClassifyArgs),
    /// The cosine (or logit) matrix between images and texts.
    Similarity(similarity::SimilarityArgs),
    /// Embed every image under a folder into a resumable search index.
    Index(index::IndexArgs),
    /// Rank the images of an index by a text query or an example image.
    Search(index::SearchArgs),
    /// Measure speed: the encoders (latency, throughput), GEMM kernels, FMA and bf16 peaks.
    Bench(bench::BenchArgs),
    /// Embed images or texts into a float32 [N, D] .npy (L2-normalised unless --raw).
    Embed(embed::EmbedArgs),
    /// Embed webdataset tar shards, folders or parquet files into clip-retrieval's layout
    /// (img_emb/, text_emb/, metadata/), resumably.
    EmbedShards(shards::EmbedShardsArgs),
    /// Decode an image and write CLIP's preprocessed float32 [3, H, W] tensor as .npy.
    Preprocess(preprocess::PreprocessArgs),
    /// Token ids of texts, exactly as OpenAI's CLIP tokenizer gives them.
    Tokenize(tokenize::TokenizeArgs),
    /// An HTTP embedding service: OpenAI's /v1/embeddings, /v1/classify, /health, /metrics.
    Serve(serve::ServeArgs),
    /// What a checkpoint was understood as, a probe's fingerprint, and a per-layer
    /// comparison with a reference.
    Check(check::CheckArgs),
    /// Write a model folder with int8 weights (loads in int8 without quantising again).
    Quantize(quantize::QuantizeArgs),
}

/// Turns a panic into one line on stderr (the message and where), with no backtrace.
fn one_line_panics() {
    std::panic::set_hook(Box::new(|info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        // `clip search ... | head`: the reader left; stop quietly as a SIGPIPE would.
        if msg.starts_with("failed printing to stdout") && msg.contains("Broken pipe") {
            std::process::exit(141);
        }
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!("error: internal error: {}{at}", msg.replace('\n', " "));
    }));
}

/// A clap error (bad flags or values) in one line; help and version print as usual.
fn parse_args() -> Cli {
    use clap::error::ErrorKind;
    match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            if matches!(
                e.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) {
                e.exit();
            }
            let text = e.render().to_string();
            let parts: Vec<&str> = text
                .lines()
                .take_while(|l| !l.trim().is_empty() && !l.starts_with("Usage:"))
                .map(str::trim)
                .collect();
            let line = parts.join(" ");
            eprintln!(
                "error: {} (see --help)",
                line.strip_prefix("error: ").unwrap_or(&line)
            );
            std::process::exit(2);
        }
    }
}

/// Sizes rayon's global pool for commands without a model (`0` = all cores).
pub fn global_threads(n: usize) -> Result<(), String> {
    if n > 0 {
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global()
            .map_err(|e| format!("--threads {n}: {e}"))?;
    }
    Ok(())
}

fn main() {
    one_line_panics();
    let cli = parse_args();
    let result = match &cli.command {
        Command::Demo(args) => demo::run(args),
        Command::Classify(args) => classify::run(args),
        Command::Similarity(args) => similarity::run(args),
        Command::Index(args) => index::run_index(args),
        Command::Search(args) => index::run_search(args),
        Command::Bench(args) => bench::run(args),
        Command::Embed(args) => embed::run(args),
        Command::EmbedShards(args) => shards::run(args),
        Command::Preprocess(args) => preprocess::run(args),
        Command::Tokenize(args) => tokenize::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Check(args) => check::run(args),
        Command::Quantize(args) => quantize::run(args),
    };
    if let Err(msg) = result {
        eprintln!("error: {}", msg.replace('\n', " "));
        std::process::exit(1);
    }
    if model_dir::RANDOM_USED.load(std::sync::atomic::Ordering::Relaxed) {
        eprintln!("{}", model_dir::RANDOM_NOTE);
    }
}
