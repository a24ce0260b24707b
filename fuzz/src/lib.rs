//! Fuzz targets for the code that reads hostile bytes: safetensors parsing with model
//! loading, image decoding with preprocessing, and the tokenizer. Each target takes any
//! bytes, must not panic, hang or allocate without bound on any of them, and checks
//! properties that hold for every input; a broken property panics, which the fuzzer
//! reports as a crash.
//!
//! Not here: the fuzzing engine. `tools/fuzz.sh` runs AFL++ (afl.rs, on stable Rust) over
//! `src/bin/afl.rs`; `src/bin/clip-fuzz.rs` replays files and writes the generated seeds;
//! `tests/smoke.rs` runs every target over its committed corpus in CI. See
//! `docs/reliability.md`.

pub mod jpeg_recipe;
pub mod seeds;

use clip::image::{
    decode_bytes, AlphaMode, DecodeOptions, PreprocessConfig, Preprocessor, ResizeTarget,
};
use clip::{ClipModel, LoadOptions, PixelValues, Precision};
use clip_tokenizer::{decode_utf8, Tokenizer, Utf8Policy};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

/// The fuzz targets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// `[u32 LE n][n bytes of config.json][model.safetensors]` -> a loaded model -> one
    /// forward pass per tower. An `n` beyond the input means no config.json.
    Weights,
    /// Encoded image bytes -> RGB -> CLIP preprocessing.
    Image,
    /// Bytes -> UTF-8 (strict and lossy) -> ids -> text, and `clip.tokenize` rows.
    Tokenizer,
}

impl Target {
    pub const ALL: [Target; 3] = [Target::Weights, Target::Image, Target::Tokenizer];

    pub fn name(self) -> &'static str {
        match self {
            Target::Weights => "weights",
            Target::Image => "image",
            Target::Tokenizer => "tokenizer",
        }
    }

    pub fn from_name(name: &str) -> Option<Target> {
        Target::ALL.into_iter().find(|t| t.name() == name)
    }

    /// Runs the target on one input; panics only if a property fails.
    pub fn run(self, data: &[u8]) {
        match self {
            Target::Weights => weights(data),
            Target::Image => image(data),
            Target::Tokenizer => tokenizer(data),
        }
    }

    /// Runs the target once on its first seed, so that lazy initialisation (the embedded
    /// vocabulary, regexes) happens before AFL++'s fork server starts.
    pub fn warm_up(self) {
        let first = std::fs::read_dir(self.corpus_dir())
            .ok()
            .and_then(|mut d| d.next())
            .and_then(|e| std::fs::read(e.ok()?.path()).ok());
        self.run(&first.unwrap_or_default());
    }

    /// `fuzz/corpus/<name>`: the committed seed corpus.
    pub fn corpus_dir(self) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("corpus")
            .join(self.name())
    }
}

/// Every error names what it is about: its message is one line, not empty.
fn check_message(e: &dyn std::fmt::Display) {
    let text = e.to_string();
    assert!(
        !text.is_empty() && !text.contains('\n'),
        "bad message {text:?}"
    );
}

// ---------------------------------------------------------------------------------------
// weights

/// Splits the weights target's input into (config.json, safetensors).
pub fn split_config(data: &[u8]) -> (Option<&[u8]>, &[u8]) {
    let Some(len) = data.get(..4) else {
        return (None, data);
    };
    let n = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
    match data[4..].split_at_checked(n) {
        Some((config, rest)) => (Some(config), rest),
        None => (None, &data[4..]),
    }
}

/// A byte-level vocabulary with no merges (cheap to build per input).
fn tiny_tokenizer() -> Tokenizer {
    static JSON: OnceLock<String> = OnceLock::new();
    let json = JSON.get_or_init(|| {
        let mut vocab = serde_json::Map::new();
        for (i, (_, c)) in clip_tokenizer::vocab::bytes_to_unicode()
            .into_iter()
            .enumerate()
        {
            vocab.insert(c.to_string(), i.into());
            vocab.insert(format!("{c}</w>"), (256 + i).into());
        }
        vocab.insert("<|startoftext|>".into(), 512.into());
        vocab.insert("<|endoftext|>".into(), 513.into());
        serde_json::Value::Object(vocab).to_string()
    });
    let vocab = clip_tokenizer::vocab::Vocab::from_hf(json, "#version: 0.2\n")
        .expect("the built-in test vocabulary is valid");
    Tokenizer::from_vocab(vocab)
}

pub fn weights(data: &[u8]) {
    let (config, st) = split_config(data);
    // The weights' precision follows the file (bf16 for bf16 files, int8 for quantised
    // ones); force bf16 or int8 now and then.
    let mut opts = LoadOptions::new().threads(1).tokenizer(tiny_tokenizer());
    if data.len().is_multiple_of(5) {
        opts = opts.precision(Precision::Bf16);
    } else if data.len().is_multiple_of(11) {
        opts = opts.precision(Precision::Int8);
    }
    // Validation reads every tensor: now and then, so both paths are covered.
    if data.len().is_multiple_of(7) {
        opts = opts.validate(true);
    }
    match ClipModel::from_safetensors_bytes(st.to_vec(), config, &opts) {
        Ok(model) => forward(&model),
        Err(e) => check_message(&e),
    }
}

/// A loaded model encodes a well-formed input of each kind, and refuses malformed ones.
fn forward(model: &ClipModel) {
    let cfg = model.config();
    let s = cfg.vision.image_size;
    // Skip passes too large for a fuzzing budget (the sizes come from the input).
    let tokens = cfg
        .vision
        .num_positions()
        .max(cfg.text.max_position_embeddings);
    let width = cfg.vision.hidden_size.max(cfg.text.hidden_size);
    if s > 256 || tokens.saturating_mul(width) > 1 << 18 {
        return;
    }
    let px = PixelValues {
        data: vec![0.5f32; 3 * s * s],
        shape: [1, 3, s, s],
    };
    // NaN or Inf weights may make any output non-finite: a typed error, never a result.
    let e = match model.embed_pixels(&px) {
        Err(e @ clip::Error::NonFiniteOutput { .. }) => return check_message(&e),
        r => r.unwrap_or_else(|e| panic!("a loaded model refused a valid image: {e}")),
    };
    assert!(e.as_slice().iter().all(|v| v.is_finite()));
    assert_eq!((e.rows(), e.dim()), (1, cfg.projection_dim));
    let short = PixelValues {
        data: px.data[1..].to_vec(),
        shape: px.shape,
    };
    assert!(model.embed_pixels(&short).is_err());
    let empty = PixelValues {
        data: Vec::new(),
        shape: [0, 3, s, s],
    };
    assert_eq!(model.embed_pixels(&empty).map(|e| e.rows()).ok(), Some(0));
    let vocab = cfg.text.vocab_size as u32;
    let seq: Vec<u32> = [0, vocab - 1]
        .into_iter()
        .take(cfg.text.max_position_embeddings)
        .collect();
    let e = match model.embed_token_ids(&[&seq]) {
        Err(e @ clip::Error::NonFiniteOutput { .. }) => return check_message(&e),
        r => r.unwrap_or_else(|e| panic!("a loaded model refused valid ids {seq:?}: {e}")),
    };
    assert!(e.as_slice().iter().all(|v| v.is_finite()));
    assert_eq!((e.rows(), e.dim()), (1, cfg.projection_dim));
    assert!(model.embed_token_ids(&[&[vocab]]).is_err());
    let long = vec![0u32; cfg.text.max_position_embeddings + 1];
    assert!(model.embed_token_ids(&[&long]).is_err());
}

// ---------------------------------------------------------------------------------------
// image

/// The pixel limit while fuzzing (the default is 100 M; the header check is the same).
pub const FUZZ_MAX_PIXELS: u64 = 1 << 20;

pub fn image(data: &[u8]) {
    // Structure-aware mode: the input is a list of JPEG segments (see `jpeg_recipe.rs`).
    if let Some(recipe) = data.strip_prefix(&jpeg_recipe::MAGIC[..]) {
        return image_once(&jpeg_recipe::serialise(recipe));
    }
    image_once(data);
    // Mutations break PNG checksums, which stops the decoder early; decode a copy with
    // every chunk CRC repaired too, so the fuzzer reaches the decoding proper.
    if data.starts_with(b"\x89PNG\r\n\x1a\n") {
        let fixed = fix_png_crcs(data);
        if fixed != data {
            image_once(&fixed);
        }
    }
}

fn image_once(data: &[u8]) {
    let name = Path::new("fuzz-input");
    // Options vary with the input, so each is covered.
    let opts = DecodeOptions {
        max_pixels: FUZZ_MAX_PIXELS,
        alpha: if data.len().is_multiple_of(2) {
            AlphaMode::CompositeOverWhite
        } else {
            AlphaMode::Drop
        },
        apply_exif_orientation: data.len().is_multiple_of(3),
    };
    let img = match decode_bytes(data, name, &opts) {
        Ok(img) => img,
        Err(e) => {
            let text = e.to_string();
            assert!(
                text.starts_with("fuzz-input: "),
                "error without the file: {text}"
            );
            assert!(!text.contains("panicked"), "a decoder panicked: {text}");
            return check_message(&e);
        }
    };
    assert!(img.width > 0 && img.height > 0);
    assert!((img.width * img.height) as u64 <= FUZZ_MAX_PIXELS);
    assert_eq!(img.data.len(), img.width * img.height * 3);
    // The pixel limit applies to the frame that was decoded (issue #21: a probe that read
    // another frame than the decoder let any size through): one pixel less is refused, for
    // this size.
    let (w, h) = (img.width as u64, img.height as u64);
    let tight = DecodeOptions {
        max_pixels: w * h - 1,
        apply_exif_orientation: false,
        ..opts.clone()
    };
    match decode_bytes(data, name, &tight) {
        Err(clip::image::Error::TooManyPixels { width, height, .. })
            if (width, height) == (w, h) || (width, height) == (h, w) => {}
        other => panic!("{w}x{h} decoded, but with a limit of one pixel less: {other:?}"),
    }
    // The CLIP pipeline at a small size (same code as 224, faster), and now and then 224.
    let n = if data.len().is_multiple_of(8) {
        224
    } else {
        24
    };
    let pre = Preprocessor {
        config: PreprocessConfig {
            size: ResizeTarget::ShortestEdge(n),
            crop_height: n,
            crop_width: n,
            ..PreprocessConfig::default()
        },
        decode: opts.clone(),
    };
    let pv = pre
        .preprocess_rgb(&img)
        .unwrap_or_else(|e| panic!("{}x{} image not preprocessed: {e}", img.width, img.height));
    assert_eq!(pv.shape, [1, 3, n, n]);
    assert!(pv.data.iter().all(|v| v.is_finite()));
}

/// CRC-32 (ISO-HDLC, as PNG uses), bitwise: inputs are small.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0xEDB8_8320 & (crc & 1).wrapping_neg());
        }
    }
    !crc
}

/// A copy of a PNG with the CRC of every complete chunk recomputed.
pub fn fix_png_crcs(data: &[u8]) -> Vec<u8> {
    let mut out = data.to_vec();
    let mut pos = 8;
    while let Some(head) = out.get(pos..pos + 8) {
        let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let Some(end) = pos.checked_add(8 + len).filter(|&e| e + 4 <= out.len()) else {
            break;
        };
        let crc = crc32(&out[pos + 4..end]);
        out[end..end + 4].copy_from_slice(&crc.to_be_bytes());
        pos = end + 4;
    }
    out
}

// ---------------------------------------------------------------------------------------
// tokenizer

/// CLIP's tokenizer with an empty word cache, so that every run of an input takes the same
/// path (the fuzzer's coverage is then stable).
fn clip_tokenizer() -> std::sync::MutexGuard<'static, Tokenizer> {
    static TOK: OnceLock<Mutex<Tokenizer>> = OnceLock::new();
    let tok =
        TOK.get_or_init(|| Mutex::new(Tokenizer::new().expect("the embedded vocabulary loads")));
    let mut tok = tok.lock().unwrap_or_else(|e| e.into_inner());
    tok.reset_cache();
    tok
}

/// CLIP's vocabulary size: 256 bytes x 2, 48894 merges, 2 special tokens.
const VOCAB: u32 = 49408;

/// Bytes of input the tokenizer target reads (most of its queue is far shorter). Longer
/// inputs are cut: encoding is linear in the length (tested to 1 MB in the hostile-input
/// suite), and left uncut the fuzzer drifts to long inputs that slow every execution
/// (`docs/reliability.md` has the figures).
pub const TOKENIZER_MAX_INPUT: usize = 1024;

pub fn tokenizer(data: &[u8]) {
    let data = &data[..data.len().min(TOKENIZER_MAX_INPUT)];
    let tok = &*clip_tokenizer();
    // Strict UTF-8 fails exactly where the standard library says.
    match (
        decode_utf8(data, Utf8Policy::Strict),
        std::str::from_utf8(data),
    ) {
        (Ok(a), Ok(b)) => assert_eq!(a, b),
        (Err(clip_tokenizer::Error::InvalidUtf8 { offset }), Err(e)) => {
            assert_eq!(offset, e.valid_up_to())
        }
        (a, b) => panic!("strict decoding {a:?} disagrees with std {b:?}"),
    }
    let text = decode_utf8(data, Utf8Policy::Replace).expect("lossy decoding cannot fail");
    let ids = tok.encode(&text);
    assert!(ids.iter().all(|&id| id < VOCAB), "id out of range");
    // Round trip: the decoded text is the cleaned text's pre-tokens, in order (decode puts
    // a space after each word; byte-level BPE loses no byte).
    let decoded = tok.decode(&ids).expect("encode's ids decode");
    let cleaned = clip_tokenizer::text::clean(&text);
    let words: String = clip_tokenizer::text::pre_tokens(&cleaned).collect();
    let strip = |s: &str| s.replace(' ', "");
    assert_eq!(strip(&decoded), strip(&words), "round trip of {text:?}");
    // clip.tokenize: SOT, ids, EOT, zero padding; cut with EOT last when asked. It encodes
    // again (cleaning is most of an execution's time), so only one input in four checks the
    // truncating form and one in four the refusing form: the fuzzer varies lengths anyway.
    let ctx = 77;
    let fits = ids.len() + 2 <= ctx;
    match data.len() % 4 {
        0 => {
            let row = tok
                .tokenize_one(&text, 0, ctx, true)
                .expect("truncating tokenize cannot fail");
            assert_eq!(row.len(), ctx);
            assert_eq!(row[0], tok.sot());
            if fits {
                assert_eq!(&row[1..=ids.len()], &ids[..]);
                assert_eq!(row[ids.len() + 1], tok.eot());
                assert!(row[ids.len() + 2..].iter().all(|&v| v == 0));
            } else {
                assert_eq!(&row[1..ctx - 1], &ids[..ctx - 2]);
                assert_eq!(row[ctx - 1], tok.eot());
            }
        }
        1 => assert_eq!(tok.tokenize_one(&text, 0, ctx, false).is_ok(), fits),
        _ => {}
    }
    // Any ids: decode succeeds exactly when all are in the vocabulary.
    let raw: Vec<u32> = data
        .chunks_exact(2)
        .map(|c| u32::from(u16::from_le_bytes([c[0], c[1]])))
        .collect();
    assert_eq!(tok.decode(&raw).is_ok(), raw.iter().all(|&id| id < VOCAB));
}
