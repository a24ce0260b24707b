#!/usr/bin/env bash
# Runs one fuzz target under AFL++ for a set time, then prints the executions reached and
# the findings:   tools/fuzz.sh TARGET SECONDS [JOBS]   (TARGET: weights | image | tokenizer)
#
# JOBS (default 1) runs that many AFL++ instances of the target side by side, one per core:
# the first is the main instance (`-M default`), the others secondaries (`-S sN`) that share
# its queue; the executions reported are the sum over the instances.
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
jobs=${3:-1}
case "$target" in
weights | image | tokenizer) ;;
*)
    echo "usage: tools/fuzz.sh weights|image|tokenizer SECONDS [JOBS]" >&2
    exit 2
    ;;
esac
[[ "$secs" =~ ^[0-9]+$ ]] || { echo "SECONDS must be a whole number" >&2; exit 2; }
[[ "$jobs" =~ ^[1-9][0-9]*$ ]] || { echo "JOBS must be a whole number >= 1" >&2; exit 2; }

if ! cargo afl --version >/dev/null 2>&1; then
    cargo install cargo-afl --locked
fi
# Builds AFL++ the first time; afterwards it says it is already built, which is fine.
cargo afl config --build >/dev/null 2>&1 || true

# CLIP_AFL_TARGET_DIR moves the instrumented build (e.g. beside another target folder).
export CARGO_TARGET_DIR=${CLIP_AFL_TARGET_DIR:-target/afl}
RUSTFLAGS="-C debug-assertions -C overflow-checks" \
    cargo afl build --release -p clip-fuzz --features afl --bin clip-fuzz-afl

out=fuzz/out/$target
mkdir -p "$out"
# -m: the address space of one run, in MB. The image target's is what docs/reliability.md
# bounds decoding to at its 1 Mpx fuzzing limit (19 bytes a pixel, 16 MiB of PNG chunks,
# a few copies of the input, about 15 MB of program): an allocation far beyond the pixels
# decoded is a crash. One malloc arena, so that address space follows allocations.
mem=4096
if [[ $target == image ]]; then mem=96; fi
export MALLOC_ARENA_MAX=1
# One instance: AFL++'s plain mode, as the earlier runs were (its folder is `default`).
# Several: `-M default` plus secondaries, all syncing through $out.
run_instance() { # NAME MODE...
    local name=$1 input=fuzz/corpus/$target
    shift
    if [[ -f $out/$name/fuzzer_stats ]]; then input=-; fi # resume
    # -t: a hang is an input taking over 2 s; -m: see above (4 GB for the other targets,
    # so an unbounded allocation is a crash, not a stall of the machine).
    AFL_NO_AFFINITY=1 AFL_SKIP_CPUFREQ=1 AFL_NO_UI=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 \
        cargo afl fuzz "$@" -V "$secs" -t 2000 -m "$mem" -i "$input" -o "$out" \
        "$CARGO_TARGET_DIR/release/clip-fuzz-afl" "$target" >"$out/afl-$name.log" 2>&1 || {
        tail -30 "$out/afl-$name.log" >&2
        return 1
    }
}
pids=()
if ((jobs == 1)); then
    run_instance default &
    pids+=($!)
else
    run_instance default -M default &
    pids+=($!)
    for ((j = 1; j < jobs; j++)); do
        run_instance "s$j" -S "s$j" &
        pids+=($!)
    done
fi
failed=0
for p in "${pids[@]}"; do wait "$p" || failed=1; done

# Totals over every instance that ever ran for this target.
field() { awk -F' *: *' -v k="$2" '$1 == k { print $2 }' "$1"; }
execs=0 crashes=0 hangs=0 secs_run=0
for stats in "$out"/*/fuzzer_stats; do
    execs=$((execs + $(field "$stats" execs_done)))
    crashes=$((crashes + $(field "$stats" saved_crashes)))
    hangs=$((hangs + $(field "$stats" saved_hangs)))
    secs_run=$((secs_run + $(field "$stats" run_time)))
done
echo "$target: $execs executions in $secs_run instance-seconds," \
    "$(field "$out/default/fuzzer_stats" corpus_count) corpus entries (main instance)," \
    "$crashes crashes, $hangs hangs"
exit $failed
