//! The AFL++ entry point (persistent mode, via afl.rs on stable Rust): one binary for every
//! target, named by the first argument. Built and run by `tools/fuzz.sh`.

fn main() {
    let name = std::env::args().nth(1).unwrap_or_default();
    let Some(target) = clip_fuzz::Target::from_name(&name) else {
        eprintln!("usage: clip-fuzz-afl weights|image|tokenizer");
        std::process::exit(2);
    };
    target.warm_up();
    afl::fuzz!(|data: &[u8]| target.run(data));
}
