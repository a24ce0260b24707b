//! `clip tokenize`: CLIP token ids for texts, as OpenAI's `simple_tokenizer.py`
//! and `clip.tokenize` give them.
//!
//! Texts come from the arguments, or else from stdin one per line (with
//! `--jsonl`, each line is a JSON string). One JSON array of ids is printed
//! per text; `--context` prints the padded context row instead.

use std::io::{BufWriter, Read, Write};

use clip_tokenizer::{decode_utf8, Tokenizer, Utf8Policy, CONTEXT_LENGTH};

/// Arguments of `clip tokenize`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Examples:\n  clip tokenize \"a photo of a cat\" \"a dog\"\n  clip tokenize --context \"a photo of a cat\"\n  printf 'one\\ntwo\\n' | clip tokenize"
)]
pub struct TokenizeArgs {
    /// Texts to tokenize; when none is given, stdin is read, one text per line.
    pub texts: Vec<String>,
    /// Each stdin line is a JSON string (so texts may hold newlines); texts come from stdin.
    #[arg(long, conflicts_with = "texts")]
    pub jsonl: bool,
    /// Print the context row (SOT, ids, EOT, zero padding) as `clip.tokenize`.
    #[arg(long)]
    pub context: bool,
    /// With --context: cut texts that are too long, ending them with EOT.
    #[arg(long, requires = "context")]
    pub truncate: bool,
    /// Context length for --context (2 to 4096).
    #[arg(long, default_value_t = CONTEXT_LENGTH, requires = "context", value_parser = context_length)]
    pub context_length: usize,
    /// Replace invalid UTF-8 on stdin (as Python's errors="replace") instead of failing.
    #[arg(long, conflicts_with = "texts")]
    pub lossy: bool,
    /// Threads (default: one per core; at most four per core).
    #[arg(long, default_value_t = 0, hide_default_value = true, value_parser = crate::args::threads)]
    pub threads: usize,
    /// Another vocabulary: a folder with vocab.json + merges.txt, or an
    /// OpenAI-format merges file (gzipped or plain).
    #[arg(long)]
    pub vocab: Option<std::path::PathBuf>,
}

/// The longest context row `--context-length` may ask for: far past any CLIP's 77, small
/// enough that a row per text stays small.
const MAX_CONTEXT: usize = 4096;

fn context_length(s: &str) -> Result<usize, String> {
    let n = crate::args::positive(s)?;
    if !(2..=MAX_CONTEXT).contains(&n) {
        return Err(format!(
            "{n}: must be 2 to {MAX_CONTEXT} (SOT and EOT need 2)"
        ));
    }
    Ok(n)
}

fn read_stdin_texts(args: &TokenizeArgs) -> Result<Vec<String>, String> {
    let mut raw = Vec::new();
    std::io::stdin()
        .read_to_end(&mut raw)
        .map_err(|e| format!("reading stdin: {e}"))?;
    let policy = if args.lossy {
        Utf8Policy::Replace
    } else {
        Utf8Policy::Strict
    };
    let mut lines: Vec<&[u8]> = raw.split(|&b| b == b'\n').collect();
    if lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    lines
        .into_iter()
        .enumerate()
        .map(|(i, line)| {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let text =
                decode_utf8(line, policy).map_err(|e| format!("stdin line {}: {e}", i + 1))?;
            if args.jsonl {
                serde_json::from_str::<String>(&text)
                    .map_err(|e| format!("stdin line {}: not a JSON string: {e}", i + 1))
            } else {
                Ok(text.into_owned())
            }
        })
        .collect()
}

/// Runs `clip tokenize`.
pub fn run(args: &TokenizeArgs) -> Result<(), String> {
    crate::global_threads(args.threads)?;
    let tok = match &args.vocab {
        None => Tokenizer::new(),
        Some(p) if p.is_dir() => Tokenizer::from_hf_dir(p),
        Some(p) => Tokenizer::from_openai_merges_file(p),
    }
    .map_err(|e| e.to_string())?;
    let from_stdin = args.texts.is_empty();
    let texts = if from_stdin {
        read_stdin_texts(args)?
    } else {
        args.texts.clone()
    };
    let rows = if args.context {
        tok.tokenize(&texts, args.context_length, args.truncate)
            .map_err(|e| {
                let from = if from_stdin { "stdin" } else { "arguments" };
                format!("texts from {from}: {e}")
            })?
    } else {
        tok.encode_batch(&texts)
    };
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    for row in rows {
        let line = serde_json::to_string(&row).map_err(|e| e.to_string())?;
        writeln!(out, "{line}").map_err(|e| format!("writing stdout: {e}"))?;
    }
    out.flush().map_err(|e| format!("writing stdout: {e}"))
}
