#!/usr/bin/env bash
# Runs one fuzz target under AFL++ for a set time, then prints the executions reached and
# the findings:   tools/fuzz.sh TARGET SECONDS      (TARGET: weights | image | tokenizer)
#
# AFL++ comes from afl.rs on stable Rust: `cargo install cargo-afl` (done here if missing)
# builds AFL++ once with `cargo afl config --build`. The instrumented build goes to
# target/afl (its own flags would otherwise rebuild target/ every time), with overflow
# checks and debug assertions on. A second run of the same target resumes its queue in
# fuzz/out/TARGET. Inputs that crash or hang land in fuzz/out/TARGET/default/{crashes,hangs};
# replay them with `cargo run -p clip-fuzz --bin clip-fuzz -- replay TARGET FILE...`.
# The CPU is shared: run it under `nice -n 19`. See docs/reliability.md.
set -euo pipefail
cd "$(dirname "$0")/.."

target=${1:-}
secs=${2:-}
case "$target" in
weights | image | tokenizer) ;;
*)
    echo "usage: tools/fuzz.sh weights|image|tokenizer SECONDS" >&2
    exit 2
    ;;
esac
[[ "$secs" =~ ^[0-9]+$ ]] || { echo "SECONDS must be a whole number" >&2; exit 2; }

if ! cargo afl --version >/dev/null 2>&1; then
    cargo install cargo-afl --locked
fi
# Builds AFL++ the first time; afterwards it says it is already built, which is fine.
cargo afl config --build >/dev/null 2>&1 || true

export CARGO_TARGET_DIR=target/afl
RUSTFLAGS="-C debug-assertions -C overflow-checks" \
    cargo afl build --release -p clip-fuzz --features afl --bin clip-fuzz-afl

out=fuzz/out/$target
input=fuzz/corpus/$target
if [[ -f $out/default/fuzzer_stats ]]; then input=-; fi # resume
mkdir -p "$out"
# -t: a hang is an input taking over 2 s; -m: 4 GB of address space per run, so an
# unbounded allocation is a crash, not a stall of the machine.
AFL_NO_AFFINITY=1 AFL_SKIP_CPUFREQ=1 AFL_NO_UI=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 \
    cargo afl fuzz -V "$secs" -t 2000 -m 4096 -i "$input" -o "$out" \
    target/afl/release/clip-fuzz-afl "$target" >"$out/afl.log" 2>&1 || {
    tail -30 "$out/afl.log" >&2
    exit 1
}

stats=$out/default/fuzzer_stats
field() { awk -F' *: *' -v k="$1" '$1 == k { print $2 }' "$stats"; }
echo "$target: $(field execs_done) executions in $(field run_time) s ($(field execs_per_sec)/s)," \
    "$(field corpus_count) corpus entries, $(field saved_crashes) crashes, $(field saved_hangs) hangs"
