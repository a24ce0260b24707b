//! Building the vocabulary and merge table, as `SimpleTokenizer.__init__`
//! does, from OpenAI's merges file (embedded, or gzipped/plain on disk) or
//! from a Hugging Face `vocab.json` + `merges.txt` pair.

use std::io::Read;
use std::path::Path;

use crate::bpe::{FxMap, Merges};
use crate::error::{Error, Result};

/// OpenAI's `bpe_simple_vocab_16e6.txt.gz`, embedded.
pub static DEFAULT_MERGES_GZ: &[u8] = include_bytes!("../data/bpe_simple_vocab_16e6.txt.gz");

/// The reference keeps merges lines `1..49152-256-2+1` of the file.
pub const MAX_MERGES: usize = 49152 - 256 - 2;

/// `bytes_to_unicode()`: the printable byte order and each byte's character.
pub fn bytes_to_unicode() -> Vec<(u8, char)> {
    let printable = |b: u8| matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF);
    let mut out: Vec<(u8, char)> = (0..=255u8)
        .filter(|&b| printable(b))
        .map(|b| (b, char::from(b)))
        .collect();
    let mut n = 0u32;
    for b in 0..=255u8 {
        if !printable(b) {
            out.push((b, char::from_u32(256 + n).unwrap_or('\u{FFFD}')));
            n += 1;
        }
    }
    out
}

/// Everything the tokenizer needs besides the cache.
#[derive(Debug)]
pub struct Vocab {
    /// Merge table over ids.
    pub merges: Merges,
    /// Id of each byte as a word-inner symbol.
    pub byte_id: [u32; 256],
    /// Id of each byte as a word-final symbol (`</w>`).
    pub byte_end_id: [u32; 256],
    /// Bytes of each id's string (byte-decoded; `</w>` kept as text).
    pub decoder: Vec<Option<Box<[u8]>>>,
    /// `<|startoftext|>`.
    pub sot: u32,
    /// `<|endoftext|>`.
    pub eot: u32,
}

fn vocab_err(source: &str, line: Option<usize>, message: impl Into<String>) -> Error {
    Error::Vocab {
        source: source.to_string(),
        line,
        message: message.into(),
    }
}

/// Reads a file, gunzipping it when it starts with the gzip magic.
pub fn read_maybe_gz(path: &Path) -> Result<String> {
    let io = |error| Error::Io {
        path: path.display().to_string(),
        error,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    if !meta.is_file() {
        return Err(io(std::io::Error::other("not a regular file")));
    }
    let mut raw = Vec::new();
    file.take(MAX_VOCAB_BYTES + 1)
        .read_to_end(&mut raw)
        .map_err(io)?;
    if raw.len() as u64 > MAX_VOCAB_BYTES {
        return Err(io(std::io::Error::other(format!(
            "larger than {} MB, far more than a vocabulary",
            MAX_VOCAB_BYTES >> 20
        ))));
    }
    let bytes = if raw.starts_with(&[0x1F, 0x8B]) {
        gunzip(&raw).map_err(io)?
    } else {
        raw
    };
    String::from_utf8(bytes).map_err(|e| Error::InvalidUtf8 {
        offset: e.utf8_error().valid_up_to(),
    })
}

/// The largest vocabulary file accepted, after decompression: CLIP's merges file is 1.7 MB;
/// a gzip bomb stops here instead of filling memory.
pub const MAX_VOCAB_BYTES: u64 = 64 << 20;

/// Decompresses gzip data, refusing more than [`MAX_VOCAB_BYTES`] of output.
pub fn gunzip(raw: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(raw.len().saturating_mul(3).min(MAX_VOCAB_BYTES as usize));
    flate2::read::GzDecoder::new(raw)
        .take(MAX_VOCAB_BYTES + 1)
        .read_to_end(&mut out)?;
    if out.len() as u64 > MAX_VOCAB_BYTES {
        return Err(std::io::Error::other(format!(
            "decompresses to more than {} MB, far more than a vocabulary (a gzip bomb?)",
            MAX_VOCAB_BYTES >> 20
        )));
    }
    Ok(out)
}

impl Vocab {
    /// From the text of an OpenAI merges file (header line, then `a b` lines).
    pub fn from_openai_merges(text: &str, source: &str) -> Result<Vocab> {
        let b2u = bytes_to_unicode();
        let mut strings: Vec<String> = b2u.iter().map(|&(_, c)| c.to_string()).collect();
        strings.extend(b2u.iter().map(|&(_, c)| format!("{c}</w>")));
        // As the reference: every line in the slice is a "merge", split on
        // whitespace; its parts joined become a vocabulary entry (an empty
        // line gives ""), and only two-part lines can ever merge.
        let mut pairs = Vec::new();
        for (rank, line) in text.split('\n').skip(1).take(MAX_MERGES).enumerate() {
            let parts: Vec<&str> = line.split_whitespace().collect();
            strings.push(parts.concat());
            if let [a, b] = parts[..] {
                pairs.push((rank, a.to_string(), b.to_string()));
            }
        }
        strings.push("<|startoftext|>".into());
        strings.push("<|endoftext|>".into());
        let mut encoder: FxMap<String, u32> = FxMap::default();
        for (id, s) in strings.into_iter().enumerate() {
            encoder.insert(s, id as u32);
        }
        Vocab::build(&encoder, &pairs, source)
    }

    /// The embedded OpenAI vocabulary.
    pub fn openai_default() -> Result<Vocab> {
        let raw = gunzip(DEFAULT_MERGES_GZ).map_err(|error| Error::Io {
            path: "<embedded merges>".into(),
            error,
        })?;
        let text = String::from_utf8(raw).map_err(|e| Error::InvalidUtf8 {
            offset: e.utf8_error().valid_up_to(),
        })?;
        Vocab::from_openai_merges(&text, "<embedded merges>")
    }

    /// From a Hugging Face `vocab.json` text and `merges.txt` text.
    pub fn from_hf(vocab_json: &str, merges_txt: &str) -> Result<Vocab> {
        let value: serde_json::Value = serde_json::from_str(vocab_json)
            .map_err(|e| vocab_err("vocab.json", Some(e.line()), e.to_string()))?;
        let obj = value
            .as_object()
            .ok_or_else(|| vocab_err("vocab.json", None, "not a JSON object"))?;
        let mut encoder: FxMap<String, u32> = FxMap::default();
        for (k, v) in obj {
            let id = v
                .as_u64()
                .and_then(|id| u32::try_from(id).ok())
                .ok_or_else(|| vocab_err("vocab.json", None, format!("bad id for {k:?}")))?;
            encoder.insert(k.clone(), id);
        }
        let mut pairs = Vec::new();
        for (i, line) in merges_txt.lines().enumerate() {
            if (i == 0 && line.starts_with("#version")) || line.trim().is_empty() {
                continue;
            }
            let mut parts = line.split_whitespace();
            match (parts.next(), parts.next(), parts.next()) {
                (Some(a), Some(b), None) => pairs.push((pairs.len(), a.to_string(), b.to_string())),
                _ => return Err(vocab_err("merges.txt", Some(i + 1), "expected two symbols")),
            }
        }
        Vocab::build(&encoder, &pairs, "merges.txt")
    }

    /// From a folder holding `vocab.json` and `merges.txt`.
    pub fn from_hf_dir(dir: &Path) -> Result<Vocab> {
        // Bounded like any vocabulary file (gzip is undone too, harmlessly).
        let read = |name: &str| read_maybe_gz(&dir.join(name));
        Vocab::from_hf(&read("vocab.json")?, &read("merges.txt")?)
    }

    fn build(
        encoder: &FxMap<String, u32>,
        pairs: &[(usize, String, String)],
        source: &str,
    ) -> Result<Vocab> {
        let id_of = |s: &str| {
            encoder
                .get(s)
                .copied()
                .ok_or_else(|| vocab_err(source, None, format!("{s:?} is not in the vocabulary")))
        };
        let b2u = bytes_to_unicode();
        let mut byte_id = [0u32; 256];
        let mut byte_end_id = [0u32; 256];
        for &(b, c) in &b2u {
            byte_id[b as usize] = id_of(&c.to_string())?;
            byte_end_id[b as usize] = id_of(&format!("{c}</w>"))?;
        }
        let mut merges = Merges::default();
        for (rank, a, b) in pairs {
            let merged = id_of(&format!("{a}{b}"))?;
            merges.insert(id_of(a)?, id_of(b)?, *rank as u32, merged);
        }
        let u2b: FxMap<char, u8> = b2u.iter().map(|&(b, c)| (c, b)).collect();
        let max_id = encoder.values().copied().max().unwrap_or(0) as usize;
        if max_id > 4 * encoder.len() + 1024 {
            return Err(vocab_err(
                source,
                None,
                format!("id {max_id} is far beyond the vocabulary size"),
            ));
        }
        let mut decoder: Vec<Option<Box<[u8]>>> = vec![None; max_id + 1];
        for (s, &id) in encoder {
            // Characters outside the byte alphabet (only `</w>`'s ASCII
            // and the specials in practice) map through as in Python.
            let bytes: Option<Vec<u8>> = s.chars().map(|c| u2b.get(&c).copied()).collect();
            decoder[id as usize] = bytes.map(Vec::into_boxed_slice);
        }
        Ok(Vocab {
            merges,
            byte_id,
            byte_end_id,
            decoder,
            sot: id_of("<|startoftext|>")?,
            eot: id_of("<|endoftext|>")?,
        })
    }
}
