//! The `clip` command-line program: benchmarks now; tokenize, preprocess, embed, classify,
//! similarity, index and search as the library grows.
//!
//! Errors print one line on stderr and exit non-zero; nothing panics on bad input.

mod bench;
mod embed;
mod model_dir;
mod npy;
mod preprocess;
mod tokenize;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "clip", version, about = "CPU inference for OpenAI's CLIP", long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Measure throughput: GEMM kernels, the FMA peak.
    Bench(bench::BenchArgs),
    /// Embed images or texts into a float32 [N, D] .npy (L2-normalised unless --raw).
    Embed(embed::EmbedArgs),
    /// Decode an image and write CLIP's preprocessed float32 [3, H, W] tensor as .npy.
    Preprocess(preprocess::PreprocessArgs),
    /// Token ids of texts, exactly as OpenAI's CLIP tokenizer gives them.
    Tokenize(tokenize::TokenizeArgs),
}

fn main() {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Bench(args) => bench::run(args),
        Command::Embed(args) => embed::run(args),
        Command::Preprocess(args) => preprocess::run(args),
        Command::Tokenize(args) => tokenize::run(args),
    };
    if let Err(msg) = result {
        eprintln!("error: {msg}");
        std::process::exit(1);
    }
}
