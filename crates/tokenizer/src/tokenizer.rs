//! [`Tokenizer`]: `SimpleTokenizer.encode`/`decode` and `clip.tokenize`,
//! with a shared bounded word cache and rayon batches.

use std::path::Path;

use rayon::prelude::*;

use crate::bpe::{bpe, WordCache};
use crate::error::{Error, Result};
use crate::text::{clean, pre_tokens};
use crate::vocab::{read_maybe_gz, Vocab};

/// CLIP's context length.
pub const CONTEXT_LENGTH: usize = 77;

/// Default capacity of the word cache, in words.
pub const DEFAULT_CACHE_WORDS: usize = 1 << 18;

/// What to do with bytes that are not valid UTF-8.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Utf8Policy {
    /// Fail with [`Error::InvalidUtf8`].
    Strict,
    /// Replace as Python's `bytes.decode("utf-8", errors="replace")` does.
    Replace,
}

/// CLIP's BPE tokenizer. `Send + Sync`: share one across threads.
#[derive(Debug)]
pub struct Tokenizer {
    vocab: Vocab,
    cache: WordCache,
}

impl Tokenizer {
    /// OpenAI's vocabulary, embedded in the crate (no file is read).
    pub fn new() -> Result<Tokenizer> {
        Ok(Tokenizer::from_vocab(Vocab::openai_default()?))
    }

    /// From an OpenAI-format merges file, gzipped or plain.
    pub fn from_openai_merges_file(path: impl AsRef<Path>) -> Result<Tokenizer> {
        let path = path.as_ref();
        let text = read_maybe_gz(path)?;
        let vocab = Vocab::from_openai_merges(&text, &path.display().to_string())?;
        Ok(Tokenizer::from_vocab(vocab))
    }

    /// From a model folder with Hugging Face `vocab.json` and `merges.txt`.
    pub fn from_hf_dir(dir: impl AsRef<Path>) -> Result<Tokenizer> {
        Ok(Tokenizer::from_vocab(Vocab::from_hf_dir(dir.as_ref())?))
    }

    /// From a built vocabulary.
    pub fn from_vocab(vocab: Vocab) -> Tokenizer {
        Tokenizer {
            vocab,
            cache: WordCache::new(DEFAULT_CACHE_WORDS),
        }
    }

    /// Empties the word cache, freeing its memory; ids are unchanged. (The fuzz target
    /// calls it per input so that every run takes the same code path.)
    pub fn reset_cache(&mut self) {
        self.cache = WordCache::new(DEFAULT_CACHE_WORDS);
    }

    /// Id of `<|startoftext|>`.
    pub fn sot(&self) -> u32 {
        self.vocab.sot
    }

    /// Id of `<|endoftext|>`.
    pub fn eot(&self) -> u32 {
        self.vocab.eot
    }

    /// `SimpleTokenizer.encode(text)`.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        let mut out = Vec::with_capacity(text.len() / 3 + 4);
        self.encode_into(text, &mut out);
        out
    }

    /// Appends the ids of `text` to `out`.
    pub fn encode_into(&self, text: &str, out: &mut Vec<u32>) {
        let cleaned = clean(text);
        let mut word = Vec::new();
        for token in pre_tokens(&cleaned) {
            self.encode_word(token.as_bytes(), &mut word, out);
        }
    }

    /// `encode` on bytes: invalid UTF-8 is an error or replaced, as asked.
    pub fn encode_bytes(&self, bytes: &[u8], policy: Utf8Policy) -> Result<Vec<u32>> {
        Ok(self.encode(&decode_utf8(bytes, policy)?))
    }

    fn encode_word(&self, token: &[u8], word: &mut Vec<u32>, out: &mut Vec<u32>) {
        match token {
            b"<|startoftext|>" => return out.push(self.vocab.sot),
            b"<|endoftext|>" => return out.push(self.vocab.eot),
            _ => {}
        }
        if self.cache.get_into(token, out) {
            return;
        }
        let Some((&last, init)) = token.split_last() else {
            return;
        };
        word.clear();
        word.extend(init.iter().map(|&b| self.vocab.byte_id[b as usize]));
        word.push(self.vocab.byte_end_id[last as usize]);
        bpe(&self.vocab.merges, word);
        self.cache.insert(token, word);
        out.extend_from_slice(word);
    }

    /// Encodes many texts in parallel (rayon); same ids as one by one.
    pub fn encode_batch<S: AsRef<str> + Sync>(&self, texts: &[S]) -> Vec<Vec<u32>> {
        texts.par_iter().map(|t| self.encode(t.as_ref())).collect()
    }

    /// `SimpleTokenizer.decode(ids)`: bytes joined, decoded with
    /// `errors="replace"`, then every `</w>` replaced by a space.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        let mut bytes = Vec::with_capacity(ids.len() * 4);
        for &id in ids {
            let b = self
                .vocab
                .decoder
                .get(id as usize)
                .and_then(Option::as_deref)
                .ok_or(Error::UnknownId { id })?;
            bytes.extend_from_slice(b);
        }
        Ok(String::from_utf8_lossy(&bytes).replace("</w>", " "))
    }

    /// `clip.tokenize(texts, context_length, truncate)`: one row of
    /// `context_length` ids per text (SOT, ids, EOT, zero padding).
    pub fn tokenize<S: AsRef<str> + Sync>(
        &self,
        texts: &[S],
        context_length: usize,
        truncate: bool,
    ) -> Result<Vec<Vec<u32>>> {
        if context_length == 0 {
            return Err(Error::ContextTooShort { context_length });
        }
        texts
            .par_iter()
            .enumerate()
            .map(|(index, t)| self.tokenize_one(t.as_ref(), index, context_length, truncate))
            .collect()
    }

    /// One row of [`Tokenizer::tokenize`]; `index` only labels errors.
    pub fn tokenize_one(
        &self,
        text: &str,
        index: usize,
        context_length: usize,
        truncate: bool,
    ) -> Result<Vec<u32>> {
        if context_length == 0 {
            return Err(Error::ContextTooShort { context_length });
        }
        let mut row = Vec::with_capacity(context_length.max(2));
        row.push(self.vocab.sot);
        self.encode_into(text, &mut row);
        row.push(self.vocab.eot);
        if row.len() > context_length {
            if !truncate {
                return Err(Error::TooLong {
                    index,
                    tokens: row.len(),
                    context_length,
                });
            }
            row.truncate(context_length);
            row[context_length - 1] = self.vocab.eot;
        }
        row.resize(context_length, 0);
        Ok(row)
    }

    /// [`Tokenizer::tokenize`] as one flat `[N * context_length]` buffer.
    pub fn tokenize_flat<S: AsRef<str> + Sync>(
        &self,
        texts: &[S],
        context_length: usize,
        truncate: bool,
    ) -> Result<Vec<u32>> {
        Ok(self.tokenize(texts, context_length, truncate)?.concat())
    }
}

/// UTF-8 decoding by policy; `Replace` matches Python's `errors="replace"`.
pub fn decode_utf8(bytes: &[u8], policy: Utf8Policy) -> Result<std::borrow::Cow<'_, str>> {
    match policy {
        Utf8Policy::Replace => Ok(String::from_utf8_lossy(bytes)),
        Utf8Policy::Strict => std::str::from_utf8(bytes)
            .map(std::borrow::Cow::Borrowed)
            .map_err(|e| Error::InvalidUtf8 {
                offset: e.valid_up_to(),
            }),
    }
}
