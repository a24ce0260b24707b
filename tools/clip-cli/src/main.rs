//! The `clip` command-line program.
fn main() {}
