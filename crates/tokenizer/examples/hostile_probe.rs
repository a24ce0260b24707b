//! Times a few adversarial inputs given on the command line as
//! `<repeat count> <unit>`, e.g. `20000 '&amp;'` (prints bytes, tokens, time).
//!
//! `cargo run --release -p clip-tokenizer --example hostile_probe -- 1000 'amp;'`

use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let tok = clip_tokenizer::Tokenizer::new()?;
    for pair in args.chunks(2) {
        let [n, unit] = pair else { break };
        let text = unit.repeat(n.parse()?);
        let t0 = Instant::now();
        let ids = tok.encode(&text);
        let shown: String = unit.chars().take(16).collect();
        println!(
            "{n} x {shown:?}: {} bytes -> {} tokens in {:?}",
            text.len(),
            ids.len(),
            t0.elapsed()
        );
    }
    Ok(())
}
