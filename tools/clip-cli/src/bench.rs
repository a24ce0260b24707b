//! `clip bench`: the encoders' latency and throughput (`clip bench [--tower ...]`), GEMM
//! throughput (`clip bench gemm`, f32, bf16 or int8 B) and the machine's FMA, bf16 dot and
//! int8 peaks (`clip bench peak`), as a readable line or one JSON line per case. Medians of
//! repeated runs after a warm-up.

use clap::{Args, Subcommand};
use clip_kernels::{
    peak, sgemm, sgemm_prepacked, Bf16Kernel, Epilogue, Isa, MatMut, MatRef, PackedB,
};
use std::time::Instant;

#[derive(Args)]
#[command(
    args_conflicts_with_subcommands = true,
    after_help = "Examples:\n  clip bench --random-weights --tower image --batch 8 --json\n  clip bench --model DIR --tower text --tokens 77\n  clip bench gemm --m 50 --k 768 --n 3072 --threads 2 --prepacked --json\n  clip bench gemm --m 400 --k 768 --n 3072 --threads 2 --prepacked --dtype bf16\n  clip bench gemm --m 400 --k 768 --n 3072 --threads 2 --prepacked --dtype int8\n  clip bench peak --threads 2"
)]
pub struct BenchArgs {
    #[command(subcommand)]
    what: Option<BenchWhat>,
    #[command(flatten)]
    model: ModelArgs,
}

#[derive(Args)]
struct ModelArgs {
    /// Model folder (default: CLIP_MODEL, then the Hugging Face cache; else random weights).
    #[arg(long)]
    model: Option<std::path::PathBuf>,
    /// A full-size ViT-B/32 with seeded random weights, built in memory.
    #[arg(long)]
    random_weights: bool,
    /// image or text (default: both).
    #[arg(long)]
    tower: Option<String>,
    /// Items per forward pass (default: 1 and 8 for images, 1 for texts).
    #[arg(long, value_parser = crate::args::positive)]
    batch: Option<usize>,
    /// Text length in ids, SOT and EOT included, no padding (default: 8, as "a photo of a
    /// cat.", and 77).
    #[arg(long)]
    tokens: Option<usize>,
    /// Threads (default: one per core; at most four per core).
    #[arg(long, value_parser = crate::args::threads)]
    threads: Option<usize>,
    /// Weight precision: f32, bf16 or int8 (default: the weight file's: int8 for a file
    /// written by `clip quantize`, bf16 for a bf16 file, else f32).
    #[arg(long, value_parser = crate::model_dir::parse_precision)]
    precision: Option<clip::Precision>,
    /// One JSON line per case.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum BenchWhat {
    /// GEMM GFLOP/s for one M x K x N shape (C = A*B, A row-major, B a [N, K] weight).
    Gemm(GemmArgs),
    /// The fp32 FMA peak of this machine (and its bf16 dot-product and int8 peaks), in GFLOP/s.
    Peak(PeakArgs),
}

#[derive(Args)]
#[command(
    after_help = "Examples:\n  clip bench gemm --m 1024 --k 1024 --n 1024 --threads 2 --prepacked\n  clip bench gemm --m 50 --k 768 --n 3072 --prepacked --json\n  clip bench gemm --m 400 --k 768 --n 3072 --prepacked --dtype bf16 --bf16-kernel dot\n  clip bench gemm --m 256 --k 256 --n 256 --isa avx2 --threads 1 --cpu-time"
)]
struct GemmArgs {
    /// Rows of A and C (e.g. tokens x images: 50 x 8 = 400 for the image encoder at batch 8).
    #[arg(long, value_parser = crate::args::positive)]
    m: usize,
    /// The inner dimension: columns of A, the weight's input width.
    #[arg(long, value_parser = crate::args::positive)]
    k: usize,
    /// Columns of C: the weight's output width.
    #[arg(long, value_parser = crate::args::positive)]
    n: usize,
    /// Threads (default: one per core; at most four per core).
    #[arg(long, value_parser = crate::args::threads)]
    threads: Option<usize>,
    /// Kernel set: scalar, portable, avx2, avx512 or neon (default: the best this CPU has, or CLIP_ISA).
    #[arg(long)]
    isa: Option<String>,
    /// Pack B once before timing, as model weights are.
    #[arg(long)]
    prepacked: bool,
    /// Element type of B: f32, bf16 (rounded when packed) or int8 (quantised per column
    /// when packed; A is quantised per row at each product); bf16 and int8 need --prepacked.
    #[arg(long, default_value = "f32")]
    dtype: String,
    /// The bf16 kernel: convert or dot (default: CLIP_BF16, else the faster on this CPU by a
    /// short measurement).
    #[arg(long)]
    bf16_kernel: Option<String>,
    /// Timed repetitions, the median reported (default: as many as fit in about 1 s, at
    /// least 5).
    #[arg(long, value_parser = crate::args::positive)]
    reps: Option<usize>,
    /// One JSON line instead of text.
    #[arg(long)]
    json: bool,
    /// Also report GFLOP per CPU-second of this process (robust to time-slicing on a busy
    /// machine; meaningful for --threads 1).
    #[arg(long)]
    cpu_time: bool,
}

#[derive(Args)]
#[command(
    after_help = "Examples:\n  clip bench peak\n  clip bench peak --threads 1 --json\n  clip bench peak --isa avx2"
)]
struct PeakArgs {
    /// Threads (default: one per core; at most four per core).
    #[arg(long, value_parser = crate::args::threads)]
    threads: Option<usize>,
    /// Kernel set of the FMA loop: scalar, portable, avx2, avx512 or neon (default: the best
    /// this CPU has, or CLIP_ISA). The bf16 line, where the CPU has AVX512-BF16, is printed
    /// whatever this says.
    #[arg(long)]
    isa: Option<String>,
    /// One JSON line per peak.
    #[arg(long)]
    json: bool,
}

pub fn run(args: &BenchArgs) -> Result<(), String> {
    match &args.what {
        Some(BenchWhat::Gemm(g)) => bench_gemm(g),
        Some(BenchWhat::Peak(p)) => bench_peak(p),
        None => bench_model(&args.model),
    }
}

/// FLOP of one encoder pass as performed: 2*rows*in*out per Linear, 4*T^2*C per attention
/// layer; the last layer runs its output projection and MLP on the pooled row only.
fn encoder_flop(tokens: usize, width: usize, mlp: usize, layers: usize) -> f64 {
    if layers == 0 {
        return 0.0;
    }
    let (t, c, m) = (tokens as f64, width as f64, mlp as f64);
    let qkv_attn = 2.0 * t * c * 3.0 * c + 4.0 * t * t * c;
    let rest = |rows: f64| 2.0 * rows * c * (c + 2.0 * m);
    (layers - 1) as f64 * (qkv_attn + rest(t)) + qkv_attn + rest(1.0)
}

/// Times `f` (after two warm-up calls) until ~2 s or 50 runs, at least 5; the median in s.
fn time_median(mut f: impl FnMut() -> Result<(), String>) -> Result<f64, String> {
    f()?;
    f()?;
    let start = Instant::now();
    let mut times = Vec::new();
    while times.len() < 5 || (start.elapsed().as_secs_f64() < 2.0 && times.len() < 50) {
        let t = Instant::now();
        f()?;
        times.push(t.elapsed().as_secs_f64());
    }
    Ok(median(times))
}

fn bench_model(a: &ModelArgs) -> Result<(), String> {
    let towers: Vec<&str> = match a.tower.as_deref() {
        None => vec!["image", "text"],
        Some(t @ ("image" | "text")) => vec![t],
        Some(other) => return Err(format!("--tower {other}: expected image or text")),
    };
    let threads = a.threads.unwrap_or(0);
    // No folder given or found: the benchmark falls back to random weights (timings are real).
    let random = a.random_weights || crate::model_dir::find(a.model.as_deref())?.is_none();
    let t0 = Instant::now();
    let (model, dir) =
        crate::model_dir::load_model(a.model.as_deref(), random, threads, a.precision, None)?;
    let precision = crate::model_dir::precision_name(model.precision());
    // Which bf16 kernel ran, and why (CLIP_BF16, or measured on this CPU).
    let (kernel_json, kernel_text) = match model.bf16_kernel() {
        Some(k) => {
            let why = Bf16Kernel::default_source(model.kernels());
            (
                format!(",\"bf16_kernel\":\"{k}\",\"bf16_kernel_source\":\"{why}\""),
                format!(" ({k}, {why})"),
            )
        }
        None => (String::new(), String::new()),
    };
    let load_ms = t0.elapsed().as_secs_f64() * 1e3;
    let threads = model.threads();
    if !a.json {
        println!(
            "load: {load_ms:.0} ms ({})",
            dir.as_ref()
                .map_or("random weights".into(), |d| d.display().to_string())
        );
    }
    let cfg = model.config().clone();
    for tower in towers {
        let cases: Vec<(usize, Option<usize>)> = match tower {
            "image" => a
                .batch
                .map_or(vec![1, 8], |b| vec![b])
                .into_iter()
                .map(|b| (b, None))
                .collect(),
            _ => {
                let batches = a.batch.map_or(vec![1], |b| vec![b]);
                let tokens = a
                    .tokens
                    .map_or(vec![8, cfg.text.max_position_embeddings], |t| vec![t]);
                batches
                    .iter()
                    .flat_map(|&b| tokens.iter().map(move |&t| (b, Some(t))))
                    .collect()
            }
        };
        for (batch, tokens) in cases {
            if batch == 0 {
                return Err("--batch must be at least 1".into());
            }
            let (secs, flop) = match tokens {
                None => {
                    let s = cfg.vision.image_size;
                    let px = clip::PixelValues {
                        data: (0..batch * 3 * s * s)
                            .map(|i| ((i % 251) as f32 / 125.0) - 1.0)
                            .collect(),
                        shape: [batch, 3, s, s],
                    };
                    let secs = time_median(|| {
                        model
                            .image_features(&px)
                            .map(|_| ())
                            .map_err(|e| e.to_string())
                    })?;
                    let v = &cfg.vision;
                    let patch = 2.0
                        * (v.grid() * v.grid()) as f64
                        * (3 * v.patch_size * v.patch_size) as f64
                        * v.hidden_size as f64;
                    (
                        secs,
                        batch as f64
                            * (patch
                                + encoder_flop(
                                    v.num_positions(),
                                    v.hidden_size,
                                    v.intermediate_size,
                                    v.num_hidden_layers,
                                )),
                    )
                }
                Some(len) => {
                    let t = &cfg.text;
                    if len < 2 || len > t.max_position_embeddings {
                        return Err(format!(
                            "--tokens {len}: must be 2..={}",
                            t.max_position_embeddings
                        ));
                    }
                    let (sot, eot) = (t.vocab_size as u32 - 2, t.vocab_size as u32 - 1);
                    let rows: Vec<Vec<u32>> = (0..batch)
                        .map(|b| {
                            let mut ids = vec![sot];
                            ids.extend(
                                (1..len - 1)
                                    .map(|i| ((i * 7919 + b * 31) % (t.vocab_size - 2)) as u32),
                            );
                            ids.push(eot);
                            ids
                        })
                        .collect();
                    let seqs: Vec<&[u32]> = rows.iter().map(Vec::as_slice).collect();
                    let secs = time_median(|| {
                        model
                            .text_features(&seqs)
                            .map(|_| ())
                            .map_err(|e| e.to_string())
                    })?;
                    (
                        secs,
                        batch as f64
                            * encoder_flop(
                                len,
                                t.hidden_size,
                                t.intermediate_size,
                                t.num_hidden_layers,
                            ),
                    )
                }
            };
            let ms_per_item = secs * 1e3 / batch as f64;
            let items_per_s = batch as f64 / secs;
            let gflops = flop / secs / 1e9;
            if a.json {
                let tok = tokens.map_or("null".to_string(), |t| t.to_string());
                println!(
                    "{{\"tower\":\"{tower}\",\"batch\":{batch},\"tokens\":{tok},\"threads\":{threads},\"precision\":\"{precision}\"{kernel_json},\"ms_per_item\":{ms_per_item:.3},\"items_per_s\":{items_per_s:.2},\"gflops\":{gflops:.1},\"load_ms\":{load_ms:.0},\"random_weights\":{random}}}"
                );
            } else {
                let tok = tokens.map_or(String::new(), |t| format!(" tokens={t}"));
                println!(
                    "{tower} batch={batch}{tok} threads={threads} {precision}{kernel_text}: {ms_per_item:.2} ms/item, {items_per_s:.1} items/s, {gflops:.1} GFLOP/s"
                );
            }
        }
    }
    Ok(())
}

fn parse_isa(isa: &Option<String>) -> Result<Isa, String> {
    let isa = match isa {
        None => Isa::active(),
        Some(s) => Isa::parse(s)
            .ok_or_else(|| format!("--isa {s}: expected scalar, portable, avx2, avx512 or neon"))?,
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

/// Bytes of memory the OS says it can give now (`MemAvailable`), if known.
fn available_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Refuses a GEMM whose A, B, C (and packed B) would not fit in memory, before allocating.
fn check_gemm_fits(m: usize, k: usize, n: usize) -> Result<(), String> {
    let floats = [m.checked_mul(k), n.checked_mul(k), m.checked_mul(n)]
        .into_iter()
        .try_fold(0u128, |acc, x| x.map(|x| acc + x as u128));
    // B is held twice with --prepacked (as given, and packed); count it twice always.
    let bytes = floats.map(|f| (f + (n as u128) * (k as u128)) * 4);
    let too_big = |need: String| {
        Err(format!(
            "--m {m} --k {k} --n {n}: A, B and C need {need}, more than this machine has free"
        ))
    };
    match (bytes, available_memory()) {
        (None, _) => too_big("more bytes than an address space holds".into()),
        (Some(b), Some(free)) if b > u128::from(free) => too_big(format!(
            "{:.1} GB (free: {:.1} GB)",
            b as f64 / 1e9,
            free as f64 / 1e9
        )),
        (Some(b), None) if b > 1 << 40 => too_big(format!("{:.1} GB", b as f64 / 1e9)),
        _ => Ok(()),
    }
}

fn bench_gemm(g: &GemmArgs) -> Result<(), String> {
    let isa = parse_isa(&g.isa)?;
    let (m, k, n) = (g.m, g.k, g.n);
    check_gemm_fits(m, k, n)?;
    let pool = pool(g.threads)?;
    let a: Vec<f32> = (0..m * k)
        .map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5)
        .collect();
    let w: Vec<f32> = (0..n * k)
        .map(|i| ((i * 104_729) % 1000) as f32 / 1000.0 - 0.5)
        .collect();
    let mut c = vec![0.0f32; m * n];
    let b = MatRef::row_major(&w, n, k).t();
    let bf16 = match g.dtype.as_str() {
        "bf16" | "int8" if !g.prepacked => {
            return Err(format!("--dtype {} needs --prepacked", g.dtype))
        }
        "f32" | "int8" => None,
        "bf16" => Some(match g.bf16_kernel.as_deref() {
            None => Bf16Kernel::default_for(isa),
            Some("convert") => Bf16Kernel::Convert,
            Some("dot") => Bf16Kernel::Dot,
            Some(s) => return Err(format!("--bf16-kernel {s}: expected convert or dot")),
        }),
        s => return Err(format!("--dtype {s}: expected f32, bf16 or int8")),
    };
    let int8 = g.dtype == "int8";
    if let Some(kind) = bf16 {
        if !kind.is_available(isa) {
            return Err(format!(
                "--bf16-kernel {kind}: not available for {isa} on this CPU"
            ));
        }
    }
    let packed = g.prepacked.then(|| {
        pool.install(|| match bf16 {
            _ if int8 => PackedB::new_int8(isa, b),
            None => PackedB::new(isa, b),
            Some(kind) => PackedB::new_bf16(isa, b).with_bf16_kernel(kind),
        })
    });
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
    let reps = g.reps.unwrap_or(((1.0 / per) as usize).clamp(5, 2000));
    let cpu0 = process_cpu_seconds();
    let times: Vec<f64> = (0..reps).map(|_| once()).collect();
    let cpu = process_cpu_seconds().zip(cpu0).map(|(b, a)| b - a);
    // The CPU clock ticks in 10 ms: a shorter total says nothing.
    let per_cpu = cpu
        .filter(|&c| c >= 0.05)
        .map(|c| flop * reps as f64 / c / 1e9);
    if g.cpu_time && !g.json {
        match per_cpu {
            Some(v) => eprintln!("gflops per cpu-second: {v:.1}"),
            None => eprintln!(
                "gflops per cpu-second: not measurable (under 50 ms of CPU time; raise --reps)"
            ),
        }
    }
    let cpu_json = match (g.cpu_time, per_cpu) {
        (true, Some(v)) => format!(",\"gflops_per_cpu_second\":{v:.2}"),
        (true, None) => ",\"gflops_per_cpu_second\":null".to_string(),
        (false, _) => String::new(),
    };
    let gflops = flop / median(times) / 1e9;
    let threads = pool.current_num_threads();
    let int8_isa = packed.as_ref().and_then(PackedB::int8_kernel_isa);
    let (dtype, kernel_json, kernel_text) = match bf16 {
        None if int8 => {
            let k = int8_isa.map_or("?", |i| i.name());
            (
                "int8",
                format!(",\"int8_kernel\":\"{k}\""),
                format!(" ({k} kernel)"),
            )
        }
        None => ("f32", String::new(), String::new()),
        Some(kind) => (
            "bf16",
            format!(",\"bf16_kernel\":\"{kind}\""),
            format!(" ({kind})"),
        ),
    };
    if g.json {
        println!(
            "{{\"op\":\"gemm\",\"m\":{m},\"k\":{k},\"n\":{n},\"threads\":{threads},\"isa\":\"{isa}\",\"prepacked\":{},\"gflops\":{gflops:.2},\"dtype\":\"{dtype}\"{kernel_json}{cpu_json}}}",
            g.prepacked
        );
    } else {
        println!(
            "gemm {m}x{k}x{n} threads={threads} isa={isa} prepacked={} dtype={dtype}{kernel_text}: {gflops:.1} GFLOP/s",
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
    // vdpbf16ps: 64 FLOP per zmm instruction; whether it issues at the FMA rate decides
    // whether the bf16 dot kernel can beat the f32 one.
    let dot: Vec<f64> = (0..7)
        .filter_map(|_| pool.install(|| peak::bf16_dot_peak_gflops(5_000_000)))
        .collect();
    if !dot.is_empty() {
        let d = median(dot);
        if p.json {
            println!("{{\"op\":\"bf16_dot_peak\",\"threads\":{threads},\"isa\":\"avx512bf16\",\"gflops\":{d:.2}}}");
        } else {
            println!(
                "bf16 dot peak threads={threads} isa=avx512bf16: {d:.1} GFLOP/s ({:.2}x the fma peak)",
                d / g
            );
        }
    }
    // int8: the instruction of the int8 kernel this set runs (`vpdpbusd` with VNNI).
    let i8runs: Vec<f64> = (0..7)
        .filter_map(|_| pool.install(|| peak::int8_peak_gops(isa, 5_000_000)))
        .collect();
    if !i8runs.is_empty() {
        let q = median(i8runs);
        let what = if isa == Isa::Avx512 {
            "avx512vnni (vpdpbusd)"
        } else {
            "avx2 (vpmaddwd+vpaddd)"
        };
        if p.json {
            println!(
                "{{\"op\":\"int8_peak\",\"threads\":{threads},\"isa\":\"{what}\",\"gops\":{q:.2}}}"
            );
        } else {
            println!(
                "int8 peak threads={threads} isa={what}: {q:.1} GOP/s ({:.2}x the fma peak)",
                q / g
            );
        }
    }
    // The default bf16 kernel is chosen from a one-core measurement of the same two loops.
    if let Some(c) = clip_kernels::gemm::bf16_calibration() {
        let (ratio, kind, min) = (c.ratio(), c.choice(), clip_kernels::gemm::DOT_MIN_RATIO);
        if p.json {
            println!("{{\"op\":\"bf16_calibration\",\"dot_gflops\":{:.2},\"fma_gflops\":{:.2},\"ratio\":{ratio:.3},\"min_ratio\":{min},\"default_bf16_kernel\":\"{kind}\"}}", c.dot_gflops, c.fma_gflops);
        } else {
            println!(
                "bf16 calibration (one core): dot {:.1} vs fma {:.1} GFLOP/s, {ratio:.2}x (dot from {min}x): default bf16 kernel {kind}",
                c.dot_gflops, c.fma_gflops
            );
        }
    }
    Ok(())
}

/// User + system CPU time of this process, from `/proc/self/stat` (`None` where unavailable).
fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = stat.rsplit(')').next()?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok());
    Some((ticks(11)? + ticks(12)?) / 100.0)
}
