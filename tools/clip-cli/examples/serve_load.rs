//! A load generator for `clip serve` (docs/serving.md): `--clients` threads on keep-alive
//! connections send `/v1/embeddings` requests for `--seconds`, either back to back (closed
//! loop; a client refused with `Retry-After` waits that long) or, with `--rate R`, at R requests per second in total (open loop: each request's
//! latency counts from when it was due, so a slow server cannot hide its queueing). A
//! request is a JPEG from `--images DIR` (one image) or four short texts, as `--image-share`
//! says. Reports requests and inputs per second, latency percentiles of the answered
//! requests, answers by status, dropped connections, the server's batch sizes (from
//! /metrics) and, with `--pid`, its RSS over the run.
//!
//! cargo run --release -p clip-cli --example serve_load -- --url http://127.0.0.1:8080 \
//!     --images /tmp/jpegs --clients 64 --seconds 60 --pid $(pgrep -f "clip serve")
//!
//! Not here: the server (`src/serve/`).

use base64::Engine;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

struct Args {
    url: String,
    images: String,
    clients: usize,
    seconds: f64,
    rate: Option<f64>,
    image_share: f64,
    pid: Option<u32>,
}

fn args() -> Args {
    let mut a = Args {
        url: "http://127.0.0.1:8080".into(),
        images: String::new(),
        clients: 64,
        seconds: 60.0,
        rate: None,
        image_share: 0.5,
        pid: None,
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    for pair in argv.chunks(2) {
        let v = pair.get(1).cloned().unwrap_or_default();
        match pair[0].as_str() {
            "--url" => a.url = v,
            "--images" => a.images = v,
            "--clients" => a.clients = v.parse().expect("--clients N"),
            "--seconds" => a.seconds = v.parse().expect("--seconds S"),
            "--rate" => a.rate = Some(v.parse().expect("--rate R")),
            "--image-share" => a.image_share = v.parse().expect("--image-share F"),
            "--pid" => a.pid = Some(v.parse().expect("--pid PID")),
            f => panic!("unknown flag {f}"),
        }
    }
    a
}

/// One answered or failed request.
struct Sample {
    image: bool,
    status: Option<u16>,
    latency: Duration,
    inputs: usize,
}

const TEXTS: [&str; 8] = [
    "a photo of a cat",
    "a photo of a dog",
    "a diagram of a cpu",
    "a red car parked on a street",
    "two people walking on a beach at sunset",
    "a bowl of fruit",
    "a screenshot of a spreadsheet",
    "a mountain lake in winter",
];

fn bodies(a: &Args) -> (Vec<String>, Vec<String>) {
    let mut images = Vec::new();
    if a.image_share > 0.0 {
        let mut files: Vec<_> = std::fs::read_dir(&a.images)
            .expect("--images DIR: a folder of JPEGs")
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        for f in files {
            let b64 = base64::engine::general_purpose::STANDARD.encode(std::fs::read(f).unwrap());
            images.push(format!(
                r#"{{"model":"clip","input":[{{"image":"data:image/jpeg;base64,{b64}"}}]}}"#
            ));
        }
        assert!(!images.is_empty(), "no images in {}", a.images);
    }
    let texts = (0..TEXTS.len())
        .map(|i| {
            let four: Vec<String> = (0..4)
                .map(|k| format!("{:?}", TEXTS[(i + k) % TEXTS.len()]))
                .collect();
            format!(r#"{{"model":"clip","input":[{}]}}"#, four.join(","))
        })
        .collect();
    (images, texts)
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(120)))
        .build()
        .into()
}

/// Sends one request: its status and `Retry-After` (seconds), or None for a dropped
/// connection.
fn send(agent: &ureq::Agent, url: &str, body: &str) -> Option<(u16, Option<u64>)> {
    let mut r = agent
        .post(url)
        .content_type("application/json")
        .send(body)
        .ok()?;
    let _ = r
        .body_mut()
        .with_config()
        .limit(64 << 20)
        .read_to_vec()
        .ok()?;
    let retry = r
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok()?.parse().ok());
    Some((r.status().as_u16(), retry))
}

/// The RSS (VmRSS, kB) of `pid` every second until `stop`; and VmHWM at the end.
fn rss_sampler(pid: u32, stop: Arc<AtomicUsize>) -> std::thread::JoinHandle<(Vec<u64>, u64)> {
    std::thread::spawn(move || {
        let read = |field: &str| -> u64 {
            std::fs::read_to_string(format!("/proc/{pid}/status"))
                .ok()
                .and_then(|s| {
                    s.lines()
                        .find(|l| l.starts_with(field))?
                        .split_whitespace()
                        .nth(1)?
                        .parse()
                        .ok()
                })
                .unwrap_or(0)
        };
        let mut samples = Vec::new();
        while stop.load(Ordering::Relaxed) == 0 {
            samples.push(read("VmRSS:"));
            std::thread::sleep(Duration::from_secs(1));
        }
        (samples, read("VmHWM:"))
    })
}

fn metrics(url: &str) -> String {
    agent()
        .get(&format!("{url}/metrics"))
        .call()
        .ok()
        .and_then(|mut r| r.body_mut().read_to_string().ok())
        .unwrap_or_default()
}

/// `clip_batch_size_bucket{tower=...,le=...}` counts (cumulative): (tower, le) -> count.
fn batch_buckets(m: &str) -> BTreeMap<(String, String), f64> {
    m.lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("clip_batch_size_bucket{tower=\"")?;
            let (tower, rest) = rest.split_once("\",le=\"")?;
            let (le, n) = rest.split_once("\"} ")?;
            Some(((tower.to_string(), le.to_string()), n.parse().ok()?))
        })
        .collect()
}

fn le_value(le: &str) -> f64 {
    le.parse().unwrap_or(f64::INFINITY)
}

fn main() {
    let a = args();
    let (images, texts) = bodies(&a);
    let url = format!("{}/v1/embeddings", a.url);
    let before = metrics(&a.url);
    let stop = Arc::new(AtomicUsize::new(0));
    let rss = a.pid.map(|p| rss_sampler(p, stop.clone()));
    let samples = Arc::new(Mutex::new(Vec::new()));
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(a.seconds);
    // Open loop: a dispatcher hands out due times; closed loop: each client sends at once.
    let (due_tx, due_rx) = mpsc::channel::<Instant>();
    let due_rx = Arc::new(Mutex::new(due_rx));
    let counter = Arc::new(AtomicUsize::new(0));
    std::thread::scope(|sc| {
        for c in 0..a.clients {
            let (images, texts, url, samples) = (&images, &texts, &url, &samples);
            let (due_rx, counter, a) = (due_rx.clone(), counter.clone(), &a);
            sc.spawn(move || {
                let agent = agent();
                loop {
                    let due = match a.rate {
                        Some(_) => match due_rx.lock().unwrap().recv() {
                            Ok(t) => t,
                            Err(_) => break,
                        },
                        None => Instant::now(),
                    };
                    if due >= end {
                        break;
                    }
                    let k = counter.fetch_add(1, Ordering::Relaxed);
                    // A fixed interleaving: image_share of the requests are images.
                    let image = ((k + 1) as f64 * a.image_share).floor()
                        > (k as f64 * a.image_share).floor();
                    let (body, inputs) = match image {
                        true => (&images[(k + c) % images.len()], 1),
                        false => (&texts[(k + c) % texts.len()], 4),
                    };
                    let answer = send(&agent, url, body);
                    let s = Sample {
                        image,
                        status: answer.map(|(s, _)| s),
                        latency: due.elapsed(),
                        inputs,
                    };
                    samples.lock().unwrap().push(s);
                    // Closed loop: a refused client waits as told before its next request,
                    // as OpenAI's clients do (retrying at once would only spin the CPU).
                    if let (None, Some((_, Some(secs)))) = (a.rate, answer) {
                        std::thread::sleep(Duration::from_secs(secs.min(10)));
                    }
                }
            });
        }
        if let Some(rate) = a.rate {
            let mut t = start;
            while t < end {
                let now = Instant::now();
                if t > now {
                    std::thread::sleep(t - now);
                }
                let _ = due_tx.send(t);
                t += Duration::from_secs_f64(1.0 / rate);
            }
        }
        drop(due_tx);
    });
    let wall = start.elapsed().as_secs_f64();
    stop.store(1, Ordering::Relaxed);
    let after = metrics(&a.url);
    report(&a, &samples.lock().unwrap(), wall, &before, &after);
    if let Some(h) = rss {
        let (s, hwm) = h.join().unwrap();
        let at = |sec: usize| {
            s.get(sec.min(s.len().saturating_sub(1)))
                .copied()
                .unwrap_or(0)
                / 1024
        };
        println!(
            "server RSS (MB): at 5 s {}, 15 s {}, 30 s {}, 45 s {}, end {}; peak (VmHWM) {}",
            at(5),
            at(15),
            at(30),
            at(45),
            at(usize::MAX),
            hwm / 1024
        );
    }
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1e3
}

fn report(a: &Args, samples: &[Sample], wall: f64, before: &str, after: &str) {
    let mode = match a.rate {
        Some(r) => format!("open loop at {r} requests/s"),
        None => "closed loop".into(),
    };
    println!(
        "{} clients, {mode}, {:.1} s, image share {}",
        a.clients, wall, a.image_share
    );
    let mut by_status: BTreeMap<String, usize> = BTreeMap::new();
    for s in samples {
        let k = s
            .status
            .map_or("connection error".into(), |c| c.to_string());
        *by_status.entry(k).or_default() += 1;
    }
    println!("answers: {by_status:?}");
    for (name, filter) in [("all", None), ("image", Some(true)), ("text", Some(false))] {
        let ok: Vec<&Sample> = samples
            .iter()
            .filter(|s| s.status == Some(200) && filter.is_none_or(|f| s.image == f))
            .collect();
        let mut lat: Vec<Duration> = ok.iter().map(|s| s.latency).collect();
        lat.sort();
        let inputs: usize = ok.iter().map(|s| s.inputs).sum();
        println!(
            "{name:>5}: {:.1} requests/s, {:.1} inputs/s answered 200; latency p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
            ok.len() as f64 / wall,
            inputs as f64 / wall,
            pct(&lat, 0.5),
            pct(&lat, 0.99),
            pct(&lat, 1.0),
        );
    }
    let (b0, b1) = (batch_buckets(before), batch_buckets(after));
    for tower in ["image", "text"] {
        let mut prev = 0.0;
        let mut parts = Vec::new();
        let mut mine: Vec<(&String, &f64)> = b1
            .iter()
            .filter(|((t, _), _)| t == tower)
            .map(|((_, le), n)| (le, n))
            .collect();
        mine.sort_by(|x, y| le_value(x.0).total_cmp(&le_value(y.0)));
        for (le, n) in mine {
            let key = (tower.to_string(), le.clone());
            let cum = n - b0.get(&key).copied().unwrap_or(0.0);
            if cum > prev {
                parts.push(format!("<={le}: {}", cum - prev));
            }
            prev = cum;
        }
        println!(
            "{tower} batches (inputs per forward pass): {}",
            parts.join(", ")
        );
    }
}
