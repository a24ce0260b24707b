//! `clip bench`: GEMM throughput (`clip bench gemm`) and the machine's FMA peak
//! (`clip bench peak`), as a readable line or one JSON line per case.

use clap::{Args, Subcommand};
use clip_kernels::{peak, sgemm, sgemm_prepacked, Epilogue, Isa, MatMut, MatRef, PackedB};
use std::time::Instant;

#[derive(Args)]
#[command(
    after_help = "Examples:\n  clip bench gemm --m 50 --k 768 --n 3072 --threads 2 --prepacked --json\n  clip bench peak --threads 2"
)]
pub struct BenchArgs {
    #[command(subcommand)]
    what: BenchWhat,
}

#[derive(Subcommand)]
enum BenchWhat {
    /// GEMM GFLOP/s for one M x K x N shape (C = A*B, A row-major, B a [N, K] weight).
    Gemm(GemmArgs),
    /// The fp32 FMA peak of this machine, in GFLOP/s.
    Peak(PeakArgs),
}

#[derive(Args)]
struct GemmArgs {
    #[arg(long)]
    m: usize,
    #[arg(long)]
    k: usize,
    #[arg(long)]
    n: usize,
    /// Threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Kernel set: scalar, portable, avx2 or avx512 (default: the best this CPU has, or CLIP_ISA).
    #[arg(long)]
    isa: Option<String>,
    /// Pack B once before timing, as model weights are.
    #[arg(long)]
    prepacked: bool,
    /// Timed repetitions (the median is reported).
    #[arg(long, default_value_t = 0)]
    reps: usize,
    /// One JSON line instead of text.
    #[arg(long)]
    json: bool,
    /// Also report GFLOP per CPU-second of this process (robust to time-slicing on a busy
    /// machine; meaningful for --threads 1).
    #[arg(long)]
    cpu_time: bool,
}

#[derive(Args)]
struct PeakArgs {
    #[arg(long)]
    threads: Option<usize>,
    #[arg(long)]
    isa: Option<String>,
    #[arg(long)]
    json: bool,
}

pub fn run(args: &BenchArgs) -> Result<(), String> {
    match &args.what {
        BenchWhat::Gemm(g) => bench_gemm(g),
        BenchWhat::Peak(p) => bench_peak(p),
    }
}

fn parse_isa(isa: &Option<String>) -> Result<Isa, String> {
    let isa = match isa {
        None => Isa::active(),
        Some(s) => Isa::parse(s)
            .ok_or_else(|| format!("--isa {s}: expected scalar, portable, avx2 or avx512"))?,
    };
    if !isa.is_available() {
        return Err(format!("--isa {isa}: this CPU cannot run it"));
    }
    Ok(isa)
}

fn pool(threads: Option<usize>) -> Result<rayon::ThreadPool, String> {
    let n = threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    if n == 0 {
        return Err("--threads must be at least 1".into());
    }
    rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .build()
        .map_err(|e| format!("thread pool: {e}"))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn bench_gemm(g: &GemmArgs) -> Result<(), String> {
    let isa = parse_isa(&g.isa)?;
    let pool = pool(g.threads)?;
    let (m, k, n) = (g.m, g.k, g.n);
    let a: Vec<f32> = (0..m * k)
        .map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5)
        .collect();
    let w: Vec<f32> = (0..n * k)
        .map(|i| ((i * 104_729) % 1000) as f32 / 1000.0 - 0.5)
        .collect();
    let mut c = vec![0.0f32; m * n];
    let b = MatRef::row_major(&w, n, k).t();
    let packed = g.prepacked.then(|| pool.install(|| PackedB::new(isa, b)));
    let flop = 2.0 * m as f64 * k as f64 * n as f64;
    let mut once = || {
        let t = Instant::now();
        pool.install(|| {
            let cm = MatMut::row_major(&mut c, m, n);
            let av = MatRef::row_major(&a, m, k);
            match &packed {
                Some(p) => sgemm_prepacked(1.0, av, p, 0.0, cm, Epilogue::none()),
                None => sgemm(isa, 1.0, av, b, 0.0, cm, Epilogue::none()),
            }
        });
        t.elapsed().as_secs_f64()
    };
    // Warm up for ~0.2 s, then time enough repetitions for ~1 s (at least 5).
    let t0 = Instant::now();
    let mut warm = 0;
    while t0.elapsed().as_secs_f64() < 0.2 || warm < 2 {
        once();
        warm += 1;
    }
    let per = t0.elapsed().as_secs_f64() / warm as f64;
    let reps = if g.reps > 0 {
        g.reps
    } else {
        ((1.0 / per) as usize).clamp(5, 2000)
    };
    let cpu0 = process_cpu_seconds();
    let times: Vec<f64> = (0..reps).map(|_| once()).collect();
    let cpu = process_cpu_seconds() - cpu0;
    if g.cpu_time {
        eprintln!(
            "gflops per cpu-second: {:.1}",
            flop * reps as f64 / cpu / 1e9
        );
    }
    let gflops = flop / median(times) / 1e9;
    let threads = pool.current_num_threads();
    if g.json {
        println!(
            "{{\"op\":\"gemm\",\"m\":{m},\"k\":{k},\"n\":{n},\"threads\":{threads},\"isa\":\"{isa}\",\"prepacked\":{},\"gflops\":{gflops:.2}}}",
            g.prepacked
        );
    } else {
        println!(
            "gemm {m}x{k}x{n} threads={threads} isa={isa} prepacked={}: {gflops:.1} GFLOP/s",
            g.prepacked
        );
    }
    Ok(())
}

fn bench_peak(p: &PeakArgs) -> Result<(), String> {
    let isa = parse_isa(&p.isa)?;
    let pool = pool(p.threads)?;
    let threads = pool.current_num_threads();
    let runs: Vec<f64> = (0..7)
        .map(|_| pool.install(|| peak::fma_peak_gflops(isa, 20_000_000)))
        .collect();
    let g = median(runs);
    if p.json {
        println!(
            "{{\"op\":\"fma_peak\",\"threads\":{threads},\"isa\":\"{isa}\",\"gflops\":{g:.2}}}"
        );
    } else {
        println!("fma peak threads={threads} isa={isa}: {g:.1} GFLOP/s");
    }
    Ok(())
}

/// User + system CPU time of this process, from `/proc/self/stat` (0 where unavailable).
fn process_cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    let Some(rest) = stat.rsplit(')').next() else {
        return 0.0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}
