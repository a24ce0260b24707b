//! clip-tokenizer: a port of OpenAI CLIP's simple_tokenizer.py with exact ids.
