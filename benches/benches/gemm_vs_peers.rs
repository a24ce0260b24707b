//! Side-by-side GEMM medians: every contender runs once per round, rounds repeat (A B C A B C
//! ...), so a noisy, shared machine slows all of them alike. Prints a Markdown table of
//! GFLOP/s, the fraction of the measured FMA peak, and our pre-packed speed over `faer`.
//!
//! `cargo bench -p clip-benches --bench gemm_vs_peers -- [--threads T] [--rounds R] [--quick]`

#[path = "common/peers.rs"]
mod peers;

use clip_benches::{fill, median, pool, CLIP_GEMM_SHAPES};
use std::time::Instant;

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let threads = arg("--threads", 2);
    let rounds = arg("--rounds", 15);
    let quick = std::env::args().any(|a| a == "--quick");
    std::env::set_var("MATMUL_NUM_THREADS", threads.to_string());
    let pool = pool(threads);
    let isa = clip_kernels::Isa::detect();
    let peak = |iters| pool.install(|| clip_kernels::peak::fma_peak_gflops(isa, iters));
    let mut peaks = Vec::new();
    println!("threads = {threads}, rounds = {rounds}, medians of interleaved runs\n");
    let mut header_done = false;
    let shapes: Vec<_> = if quick {
        CLIP_GEMM_SHAPES[..3].to_vec()
    } else {
        CLIP_GEMM_SHAPES.to_vec()
    };
    for (m, k, n) in shapes {
        let a = fill(m * k, 1);
        let w = fill(n * k, 2);
        let mut c = vec![0.0f32; m * n];
        let who = peers::contenders(&w, k, n, &pool);
        if !header_done {
            let names: Vec<String> = who.iter().map(|c| c.name()).collect();
            println!(
                "| M x K x N | {} | prepacked {isa} / faer |",
                names.join(" | ")
            );
            println!("|---|{}---|", "---|".repeat(names.len()));
            header_done = true;
        }
        let flop = 2.0 * (m * k * n) as f64;
        // Calls per sample so one sample takes ~10 ms.
        let t = Instant::now();
        pool.install(|| who[0].run(&a, &w, &mut c, m, k, n, threads));
        let reps = ((0.01 / t.elapsed().as_secs_f64().max(1e-6)) as usize).clamp(1, 1000);
        let mut times = vec![Vec::new(); who.len()];
        for round in 0..rounds + 2 {
            peaks.push(peak(2_000_000));
            for (i, contender) in who.iter().enumerate() {
                let t = Instant::now();
                for _ in 0..reps {
                    pool.install(|| contender.run(&a, &w, &mut c, m, k, n, threads));
                }
                if round >= 2 {
                    times[i].push(t.elapsed().as_secs_f64() / reps as f64);
                }
            }
        }
        let gflops: Vec<f64> = times.into_iter().map(|t| flop / median(t) / 1e9).collect();
        let name_of = |s: &str| who.iter().position(|c| c.name() == s);
        let ratio = match (name_of(&format!("ours-{isa}-prepacked")), name_of("faer")) {
            (Some(o), Some(f)) => format!("{:.2}", gflops[o] / gflops[f]),
            _ => "-".into(),
        };
        let cells: Vec<String> = gflops.iter().map(|g| format!("{g:.1}")).collect();
        println!("| {m} x {k} x {n} | {} | {ratio} |", cells.join(" | "));
    }
    let p = median(peaks);
    println!("\nFMA peak ({isa}, {threads} threads, measured between rounds): {p:.1} GFLOP/s");
}
