//! `clip serve`: an HTTP embedding service speaking OpenAI's `/v1/embeddings`, with
//! `/v1/classify`, `/health` and Prometheus `/metrics`. The model is loaded before the socket
//! is bound; the tokio runtime is built here, so the other commands never start one.
//!
//! Request flow: `http.rs` accepts connections (header and per-request timeouts, a connection
//! cap, graceful shutdown) -> `routes.rs` authenticates, reads the body within its limit and
//! parses it (`api.rs`) on a blocking thread -> `batcher.rs` queues the inputs for one worker
//! thread per tower, which runs the library's forward passes -> each request gets its rows.
//!
//! Not here: JSON shapes (`api.rs`), queueing (`batcher.rs`), counters (`metrics.rs`).

mod api;
mod batcher;
mod http;
mod metrics;
mod routes;
mod share;

use crate::model_dir::{self, ModelArgs};
use clap::Args;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

#[derive(Args, Debug)]
#[command(
    after_help = "Examples:\n  clip serve --model DIR\n  clip serve --random-weights --port 0\n  clip serve --model DIR --host 0.0.0.0 --port 8080 --api-key \"$KEY\" --max-batch 16\n\n\
                  Endpoints: POST /v1/embeddings (OpenAI's shape; images as {\"image\": \"data:image/jpeg;base64,...\"}), \
                  POST /v1/classify, GET /health, GET /metrics. See docs/serving.md."
)]
pub struct ServeArgs {
    /// Address to listen on (loopback unless told otherwise).
    #[arg(long, default_value = "127.0.0.1")]
    host: std::net::IpAddr,
    /// Port (0: any free port; the address is printed on stdout).
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// Require `Authorization: Bearer KEY` on /v1/* and /metrics (default: CLIP_API_KEY if
    /// set, else no authentication).
    #[arg(long)]
    api_key: Option<String>,
    /// The model name in responses (default: the model folder's name).
    #[arg(long)]
    model_name: Option<String>,
    /// Most inputs per forward pass of a tower.
    #[arg(long, default_value_t = 32, value_parser = crate::args::positive)]
    max_batch: usize,
    /// Longest a first input waits for others to join its batch, in milliseconds.
    #[arg(long, default_value_t = 5)]
    max_wait_ms: u64,
    /// Inputs waiting per tower before requests are refused with 429.
    #[arg(long, default_value_t = 128, value_parser = crate::args::positive)]
    queue_capacity: usize,
    /// Refuse requests with 429 when the inputs already waiting for their tower would take
    /// longer than this to clear, in milliseconds, at the tower's recent pace (0: off).
    #[arg(long, default_value_t = 2000)]
    max_queue_ms: u64,
    /// Most inputs in one request (texts and images; classification: labels).
    #[arg(long, default_value_t = 256, value_parser = crate::args::positive)]
    max_inputs: usize,
    /// Largest request body in bytes.
    #[arg(long, default_value_t = 8 << 20, value_parser = crate::args::positive)]
    max_body_bytes: usize,
    /// Longest text in bytes (before tokenization).
    #[arg(long, default_value_t = 16384, value_parser = crate::args::positive)]
    max_text_bytes: usize,
    /// Cut texts longer than the model's context (77 tokens) instead of refusing them.
    #[arg(long)]
    truncate: bool,
    /// Largest image in pixels (width x height), checked from its header before decoding.
    #[arg(long, default_value_t = 4096 * 4096, value_parser = positive_u64)]
    max_image_pixels: u64,
    /// Memory that image decodes in flight may reserve together, in MiB.
    #[arg(long, default_value_t = 512, value_parser = positive_u64)]
    decode_memory_mib: u64,
    /// Time a request may take from its first byte to its response, in milliseconds (408
    /// while its body is still arriving, 503 once it waits for the model).
    #[arg(long, default_value_t = 30_000, value_parser = positive_u64)]
    timeout_ms: u64,
    /// Open connections; more wait in the listen backlog.
    #[arg(long, default_value_t = 128, value_parser = crate::args::positive)]
    max_connections: usize,
    #[command(flatten)]
    model: ModelArgs,
}

fn positive_u64(s: &str) -> Result<u64, String> {
    crate::args::positive(s).map(|n| n as u64)
}

/// What every request handler shares.
pub struct Limits {
    pub max_inputs: usize,
    pub max_body_bytes: usize,
    pub max_text_bytes: usize,
    pub timeout: Duration,
    /// Prompts (labels x templates) of one classification.
    pub max_prompts: usize,
}

pub fn run(a: &ServeArgs) -> Result<(), String> {
    let api_key = match &a.api_key {
        Some(k) => Some(k.clone()),
        None => std::env::var("CLIP_API_KEY").ok().filter(|k| !k.is_empty()),
    };
    if api_key.as_deref() == Some("") {
        return Err("--api-key is empty".into());
    }
    let loaded = model_dir::load(&a.model, Some(a.max_batch))?;
    let name = a.model_name.clone().unwrap_or_else(|| match &loaded.dir {
        Some(d) => std::fs::canonicalize(d)
            .unwrap_or_else(|_| d.clone())
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "clip".into()),
        None => "clip-vit-base-patch32-random".into(),
    });
    clip::image::set_decode_memory_budget(a.decode_memory_mib << 20);
    let model = Arc::new(loaded.model);
    let metrics = Arc::new(metrics::Metrics::new());
    let batcher = batcher::Batcher::start(
        model.clone(),
        batcher::Config {
            max_batch: a.max_batch,
            max_wait: Duration::from_millis(a.max_wait_ms),
            capacity: a.queue_capacity,
            max_queue_wait: (a.max_queue_ms > 0).then(|| Duration::from_millis(a.max_queue_ms)),
            max_pixels: a.max_image_pixels,
            truncation: match a.truncate {
                true => clip::Truncation::Cut,
                false => clip::Truncation::Refuse,
            },
        },
        metrics.clone(),
    );
    let state = Arc::new(routes::State {
        model_name: name,
        dim: model.config().projection_dim,
        api_key,
        limits: Limits {
            max_inputs: a.max_inputs,
            max_body_bytes: a.max_body_bytes,
            max_text_bytes: a.max_text_bytes,
            timeout: Duration::from_millis(a.timeout_ms),
            max_prompts: a.max_inputs.saturating_mul(16),
        },
        batcher,
        metrics,
        random: loaded.dir.is_none(),
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        // Only I/O and parsing hand-offs run here; the model has its own pool.
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    let addr = SocketAddr::new(a.host, a.port);
    let result = rt.block_on(http::serve(
        addr,
        state.clone(),
        http::Config {
            max_connections: a.max_connections,
            header_timeout: Duration::from_millis(a.timeout_ms.min(10_000)),
            drain: Duration::from_millis(a.timeout_ms) + Duration::from_secs(5),
        },
    ));
    rt.shutdown_timeout(Duration::from_secs(1));
    // The server is stopped: no request can queue any more; the workers finish and exit.
    if let Ok(state) = Arc::try_unwrap(state) {
        state.batcher.stop();
    }
    result
}
