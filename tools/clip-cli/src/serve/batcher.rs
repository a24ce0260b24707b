//! Dynamic batching: one bounded queue and one worker thread per tower, outside the async
//! runtime. Requests queue their inputs with a oneshot for their rows; a worker takes the
//! oldest requests whose inputs fit in `max_batch`, waiting at most `max_wait` after the
//! oldest arrived for more to join, runs one forward pass on the model's thread pool and
//! sends each request exactly its own rows. The library's results do not depend on batch
//! composition, so a request's rows are bitwise those it would get alone.
//!
//! Bounds: a queue holds at most `capacity` inputs (a request larger than that enters only
//! an empty queue), and, with `max_queue_wait`, no more work than the cores are expected to
//! clear in that time, so that under overload the requests accepted keep their latency;
//! past either bound a request is refused at once with 429 and `Retry-After`. The work
//! ahead of a request is all the work on the cores: both towers' queued inputs and the rest
//! of their batches running, at each tower's recent cost per input alone on the cores
//! (`share.rs`). A failing input
//! (an undecodable image, a text too long) fails only its own request: images are decoded
//! and preprocessed one by one before the batch is stacked, texts tokenized per request.
//! Requests whose caller has gone (timed out) are dropped before any work is done on them.
//!
//! Not here: HTTP and JSON (`routes.rs`, `api.rs`).

use super::api::ApiError;
use super::metrics::Metrics;
use super::share::{Share, IMAGE, NAMES, TEXT};
use clip::image::{ImageInput, PixelValues, Preprocessor};
use clip::{ClipModel, Embeddings, Features, Truncation, ZeroShotClassifier};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// How the workers batch.
#[derive(Clone, Debug)]
pub struct Config {
    pub max_batch: usize,
    pub max_wait: Duration,
    /// Inputs a queue holds.
    pub capacity: usize,
    /// Refuse a request when the inputs ahead of it would take longer than this.
    pub max_queue_wait: Option<Duration>,
    pub max_pixels: u64,
    pub truncation: Truncation,
}

/// Where a request's answer goes.
pub type Reply<T> = oneshot::Sender<Result<T, ApiError>>;

/// One request's share of a tower's work.
struct Job<W, R> {
    /// Inputs it adds to a forward pass (prompts for a classifier).
    inputs: usize,
    work: W,
    reply: Reply<R>,
    enqueued: Instant,
}

/// Texts to embed, with their indices in the request, or a classifier to build.
pub enum TextWork {
    Embed(Vec<(usize, String)>),
    Classifier {
        labels: Vec<String>,
        templates: Vec<String>,
    },
}

/// What a text job gets back.
pub enum TextDone {
    /// One row per text, in order, and the tokens counted (SOT to the first EOT).
    Rows {
        rows: Embeddings,
        tokens: usize,
    },
    Classifier(ZeroShotClassifier),
}

/// Encoded images with their indices in the request.
pub type ImageWork = Vec<(usize, Vec<u8>)>;

type TextJob = Job<TextWork, TextDone>;
type ImageJob = Job<ImageWork, Embeddings>;

struct State<J> {
    jobs: VecDeque<J>,
    /// Inputs queued (each job counted at most `capacity`).
    inputs: usize,
    /// Inputs of the batch running, and the tower's share of the cores when it began.
    running: usize,
    running_from: f64,
    closed: bool,
}

/// A bounded queue of jobs, counted in inputs.
struct Queue<J> {
    state: Mutex<State<J>>,
    ready: Condvar,
    capacity: usize,
    max_wait: Option<Duration>,
    /// This queue's tower: its index in `share` and `NAMES`.
    tower: usize,
    share: Arc<Share>,
    /// Recent cost per input of the worker's batches, alone on the cores (an exponential
    /// average), in ns; 0 until the first batch.
    per_input_ns: AtomicU64,
}

impl<W, R> Queue<Job<W, R>> {
    fn new(capacity: usize, max_wait: Option<Duration>, tower: usize, share: Arc<Share>) -> Self {
        Queue {
            state: Mutex::new(State {
                jobs: VecDeque::new(),
                inputs: 0,
                running: 0,
                running_from: 0.0,
                closed: false,
            }),
            ready: Condvar::new(),
            capacity,
            max_wait,
            tower,
            share,
            per_input_ns: AtomicU64::new(0),
        }
    }

    /// Folds a batch of `n` inputs that cost `ns` into the cost per input.
    fn record(&self, n: usize, ns: f64) {
        if n == 0 {
            return;
        }
        let now = ns / n as f64;
        let old = self.per_input_ns.load(Ordering::Relaxed) as f64;
        let avg = if old == 0.0 {
            now
        } else {
            0.8 * old + 0.2 * now
        };
        self.per_input_ns.store(avg as u64, Ordering::Relaxed);
    }

    /// The batch taken by `next_batch` is done: its cost goes into the cost per input.
    fn finish(&self) {
        let end = self.share.end(self.tower, Instant::now());
        let (n, from) = {
            let mut s = self.lock();
            let r = (s.running, s.running_from);
            s.running = 0;
            r
        };
        self.record(n, end - from);
    }

    /// The work this tower has in hand (queued, and the rest of the batch running), in ns
    /// of the cores alone.
    fn work_in(&self, s: &State<Job<W, R>>) -> f64 {
        let per = self.per_input_ns.load(Ordering::Relaxed) as f64;
        let mut work = s.inputs as f64 * per;
        if s.running > 0 {
            let done = self.share.so_far(self.tower, Instant::now()) - s.running_from;
            work += (s.running as f64 * per - done).max(0.0);
        }
        work
    }

    /// `work_in`, for the other tower's admission.
    fn work(&self) -> f64 {
        let s = self.lock();
        self.work_in(&s)
    }

    fn lock(&self) -> MutexGuard<'_, State<Job<W, R>>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn cost(&self, job: &Job<W, R>) -> usize {
        job.inputs.min(self.capacity)
    }

    /// Queues `job`, or refuses it at once when the queue is full or closed, or when the
    /// work ahead of it (this tower's, and `other` ns of the other tower's, which runs on
    /// the same cores) would take longer than `max_wait`.
    fn push(&self, job: Job<W, R>, other: f64) -> Result<(), ApiError> {
        let tower = NAMES[self.tower];
        let mut s = self.lock();
        if s.closed {
            return Err(
                ApiError::new(503, "server_error", "the server is shutting down").retry_after(1),
            );
        }
        let cost = self.cost(&job);
        if let Some(max) = self.max_wait {
            let own = self.work_in(&s);
            let wait = Duration::from_nanos((own + other) as u64);
            if wait > max {
                return Err(ApiError::new(
                    429,
                    "rate_limit_error",
                    format!(
                        "the server is busy (about {} ms of work ahead, {} {tower} inputs \
                         waiting); retry later",
                        wait.as_millis(),
                        s.inputs
                    ),
                )
                .code("queue_full")
                .retry_after(1));
            }
        }
        if s.inputs + cost > self.capacity {
            return Err(ApiError::new(
                429,
                "rate_limit_error",
                format!(
                    "the {tower} queue is full ({} of {} inputs waiting); retry later",
                    s.inputs, self.capacity
                ),
            )
            .code("queue_full")
            .retry_after(1));
        }
        s.inputs += cost;
        s.jobs.push_back(job);
        drop(s);
        self.ready.notify_one();
        Ok(())
    }

    /// The next batch: the oldest jobs whose inputs fit in `max_batch` (at least one),
    /// once they fill it, the next job does not fit, or the oldest has waited `max_wait`.
    /// `None` once closed and empty.
    fn next_batch(&self, max_batch: usize, max_wait: Duration) -> Option<Vec<Job<W, R>>> {
        let mut s = self.lock();
        loop {
            // Jobs whose caller has gone are dropped unworked.
            while let Some(i) = s.jobs.iter().position(|j| j.reply.is_closed()) {
                if let Some(j) = s.jobs.remove(i) {
                    s.inputs -= self.cost(&j);
                }
            }
            let Some(first) = s.jobs.front() else {
                if s.closed {
                    return None;
                }
                s = self.ready.wait(s).unwrap_or_else(|e| e.into_inner());
                continue;
            };
            let deadline = first.enqueued + max_wait;
            let (mut take, mut n) = (0, 0);
            for j in &s.jobs {
                if take > 0 && n + j.inputs > max_batch {
                    break;
                }
                take += 1;
                n += j.inputs;
            }
            let now = Instant::now();
            if n >= max_batch || take < s.jobs.len() || now >= deadline || s.closed {
                let batch: Vec<_> = s.jobs.drain(..take).collect();
                let cost: usize = batch.iter().map(|j| self.cost(j)).sum();
                s.inputs -= cost;
                s.running = n;
                s.running_from = self.share.begin(self.tower, now);
                return Some(batch);
            }
            s = self
                .ready
                .wait_timeout(s, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    fn depth(&self) -> usize {
        self.lock().inputs
    }

    fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_all();
    }
}

/// The queues and their workers.
pub struct Batcher {
    text: Arc<Queue<TextJob>>,
    image: Arc<Queue<ImageJob>>,
    capacity: usize,
    workers: Vec<JoinHandle<()>>,
}

impl Batcher {
    /// Starts one worker thread per tower.
    pub fn start(model: Arc<ClipModel>, cfg: Config, metrics: Arc<Metrics>) -> Batcher {
        let share = Arc::new(Share::new(Instant::now()));
        let (capacity, max_wait) = (cfg.capacity, cfg.max_queue_wait);
        let text = Arc::new(Queue::new(capacity, max_wait, TEXT, share.clone()));
        let image = Arc::new(Queue::new(capacity, max_wait, IMAGE, share));
        let mut pre: Preprocessor = model.preprocessor().clone();
        pre.decode.max_pixels = cfg.max_pixels;
        let t = {
            let (q, model, cfg, metrics) =
                (text.clone(), model.clone(), cfg.clone(), metrics.clone());
            std::thread::Builder::new()
                .name("clip-serve-text".into())
                .spawn(move || worker(&q, &cfg, |jobs| run_texts(&model, &cfg, &metrics, jobs)))
        };
        let i = {
            let (q, cfg) = (image.clone(), cfg.clone());
            std::thread::Builder::new()
                .name("clip-serve-image".into())
                .spawn(move || {
                    worker(&q, &cfg, |jobs| {
                        run_images(&model, &pre, &cfg, &metrics, jobs)
                    })
                })
        };
        let workers = [t, i]
            .into_iter()
            .map(|h| h.expect("cannot start a worker thread"))
            .collect();
        Batcher {
            text,
            image,
            capacity: cfg.capacity,
            workers,
        }
    }

    /// Queues texts; the receiver gets their rows.
    pub fn texts(
        &self,
        texts: Vec<(usize, String)>,
    ) -> Result<oneshot::Receiver<Result<TextDone, ApiError>>, ApiError> {
        let inputs = texts.len();
        self.push_text(TextWork::Embed(texts), inputs)
    }

    /// Queues the building of a zero-shot classifier (labels x templates prompts).
    pub fn classifier(
        &self,
        labels: Vec<String>,
        templates: Vec<String>,
    ) -> Result<oneshot::Receiver<Result<TextDone, ApiError>>, ApiError> {
        let inputs = labels.len() * templates.len();
        self.push_text(TextWork::Classifier { labels, templates }, inputs)
    }

    fn push_text(
        &self,
        work: TextWork,
        inputs: usize,
    ) -> Result<oneshot::Receiver<Result<TextDone, ApiError>>, ApiError> {
        let (reply, rx) = oneshot::channel();
        let job = Job {
            inputs,
            work,
            reply,
            enqueued: Instant::now(),
        };
        self.text.push(job, self.image.work())?;
        Ok(rx)
    }

    /// Queues encoded images; the receiver gets their rows.
    pub fn images(
        &self,
        images: ImageWork,
    ) -> Result<oneshot::Receiver<Result<Embeddings, ApiError>>, ApiError> {
        let (reply, rx) = oneshot::channel();
        let job = Job {
            inputs: images.len(),
            work: images,
            reply,
            enqueued: Instant::now(),
        };
        self.image.push(job, self.text.work())?;
        Ok(rx)
    }

    /// (inputs waiting, capacity) of the text and image queues.
    pub fn depths(&self) -> [(usize, usize); 2] {
        [
            (self.text.depth(), self.capacity),
            (self.image.depth(), self.capacity),
        ]
    }

    /// Refuses new work, lets the workers finish what is queued, and joins them.
    pub fn stop(self) {
        self.text.close();
        self.image.close();
        for w in self.workers {
            let _ = w.join();
        }
    }
}

/// A worker's loop: batches until the queue is closed and empty. A panic in a batch (a bug)
/// drops that batch's replies, which their requests answer with a 500, and the loop goes on.
fn worker<W, R>(q: &Queue<Job<W, R>>, cfg: &Config, mut run: impl FnMut(Vec<Job<W, R>>)) {
    while let Some(batch) = q.next_batch(cfg.max_batch, cfg.max_wait) {
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(batch)));
        q.finish();
    }
}

/// A library error about one request, as its answer.
fn api_error(e: clip::Error) -> ApiError {
    use clip::Error as E;
    match e {
        E::Image(e) => ApiError::invalid(Some("input"), e.to_string()),
        E::Tokenizer(e) => ApiError::invalid(Some("input"), e.to_string()),
        e @ (E::InvalidArgument { .. } | E::InvalidInput { .. }) => {
            ApiError::invalid(None, e.to_string())
        }
        e => ApiError::new(500, "server_error", e.to_string()),
    }
}

/// A text too long for the context, as the request's own message.
fn too_long(idx: usize, e: clip::Error) -> ApiError {
    match e {
        clip::Error::Tokenizer(clip_tokenizer::Error::TooLong {
            tokens,
            context_length,
            ..
        }) => ApiError::invalid(
            Some("input"),
            format!(
                "input {idx}: {tokens} tokens, more than the model's context of \
                 {context_length}; this server refuses long texts (start it with --truncate \
                 to cut them)"
            ),
        )
        .code("context_length_exceeded"),
        e => api_error(e),
    }
}

fn run_texts(model: &ClipModel, cfg: &Config, metrics: &Metrics, jobs: Vec<TextJob>) {
    let eot = model.tokenizer().eot();
    // Each request tokenized on its own, so a text too long fails only its request.
    let mut ready: Vec<(Reply<TextDone>, Vec<Vec<u32>>)> = Vec::new();
    for job in jobs {
        match job.work {
            TextWork::Embed(texts) => {
                let strs: Vec<&str> = texts.iter().map(|(_, t)| t.as_str()).collect();
                match model.tokenize(&strs, cfg.truncation) {
                    Ok(ids) => ready.push((job.reply, ids)),
                    Err(e) => {
                        let idx = match &e {
                            clip::Error::Tokenizer(clip_tokenizer::Error::TooLong {
                                index,
                                ..
                            }) => texts.get(*index).map_or(0, |t| t.0),
                            _ => 0,
                        };
                        let _ = job.reply.send(Err(too_long(idx, e)));
                    }
                }
            }
            TextWork::Classifier { labels, templates } => {
                let t: Vec<&str> = templates.iter().map(String::as_str).collect();
                metrics.batch(0, labels.len() * t.len());
                let r = model
                    .zero_shot_classifier(&labels, &t, cfg.truncation)
                    .map(TextDone::Classifier)
                    .map_err(api_error);
                let _ = job.reply.send(r);
            }
        }
    }
    let seqs: Vec<&[u32]> = ready
        .iter()
        .flat_map(|(_, ids)| ids.iter().map(Vec::as_slice))
        .collect();
    let features = forward(seqs.len(), cfg.max_batch, |r| {
        metrics.batch(0, r.len());
        model.text_features(&seqs[r])
    });
    let dim = model.config().projection_dim;
    let mut offset = 0;
    for (reply, ids) in ready {
        let tokens = ids
            .iter()
            .map(|r| r.iter().position(|&t| t == eot).map_or(r.len(), |p| p + 1))
            .sum();
        let rows = mine(&features, &mut offset, ids.len(), dim);
        let _ = reply.send(rows.map(|rows| TextDone::Rows { rows, tokens }));
    }
}

/// Raw features of `n` inputs, `max_batch` per forward pass.
fn forward(
    n: usize,
    max_batch: usize,
    mut pass: impl FnMut(std::ops::Range<usize>) -> clip::Result<Features>,
) -> Result<Vec<f32>, String> {
    let mut out = Vec::new();
    for start in (0..n).step_by(max_batch) {
        let f = pass(start..(start + max_batch).min(n)).map_err(|e| e.to_string())?;
        out.extend_from_slice(f.as_slice());
    }
    Ok(out)
}

/// The next `k` rows of `features`, normalised. Normalising is per row, so a request's
/// embeddings are bitwise those of `embed_pixels` / `embed_token_ids` on its inputs alone.
fn mine(
    features: &Result<Vec<f32>, String>,
    offset: &mut usize,
    k: usize,
    dim: usize,
) -> Result<Embeddings, ApiError> {
    let f = features
        .as_ref()
        .map_err(|e| ApiError::new(500, "server_error", e.clone()))?;
    let rows = f[*offset..*offset + k * dim].to_vec();
    *offset += k * dim;
    Features::new(rows, k, dim)
        .map(Features::normalize)
        .map_err(|e| ApiError::new(500, "server_error", e.to_string()))
}

fn run_images(
    model: &ClipModel,
    pre: &Preprocessor,
    cfg: &Config,
    metrics: &Metrics,
    jobs: Vec<ImageJob>,
) {
    use rayon::prelude::*;
    let s = model.config().vision.image_size;
    let names: Vec<String> = jobs
        .iter()
        .flat_map(|j| j.work.iter().map(|(i, _)| format!("input {i}")))
        .collect();
    let inputs: Vec<ImageInput<'_>> = jobs
        .iter()
        .flat_map(|j| j.work.iter().map(|(_, b)| b))
        .zip(&names)
        .map(|(bytes, name)| ImageInput::Bytes { bytes, name })
        .collect();
    // Decoded one by one (within the process's decode memory budget) on the model's pool.
    let mut pixels: Vec<clip::Result<PixelValues>> = model.install(|| {
        inputs
            .par_iter()
            .map(|i| {
                let pv = pre.preprocess_input(i)?;
                if (pv.shape[2], pv.shape[3]) != (s, s) {
                    return Err(clip::Error::InvalidInput {
                        reason: format!(
                            "{}: preprocessing gives {}x{}; the model needs {s}x{s}",
                            i.label().display(),
                            pv.shape[3],
                            pv.shape[2]
                        ),
                    });
                }
                Ok(pv)
            })
            .collect::<Vec<_>>()
    });
    pixels.reverse();
    drop(inputs);
    // Requests with a failing image get its error; the others' pixels are stacked.
    let mut ok: Vec<(Reply<Embeddings>, usize)> = Vec::new();
    let mut stacked: Vec<f32> = Vec::new();
    for job in jobs {
        let own: Vec<_> = (0..job.work.len()).filter_map(|_| pixels.pop()).collect();
        match own.into_iter().collect::<clip::Result<Vec<PixelValues>>>() {
            Ok(pvs) => {
                for pv in &pvs {
                    stacked.extend_from_slice(&pv.data);
                }
                ok.push((job.reply, pvs.len()));
            }
            Err(e) => {
                let _ = job.reply.send(Err(api_error(e)));
            }
        }
    }
    let per = 3 * s * s;
    let features = forward(stacked.len() / per, cfg.max_batch, |r| {
        metrics.batch(1, r.len());
        let pv = PixelValues {
            data: stacked[r.start * per..r.end * per].to_vec(),
            shape: [r.len(), 3, s, s],
        };
        model.image_features(&pv)
    });
    let dim = model.config().projection_dim;
    let mut offset = 0;
    for (reply, k) in ok {
        let _ = reply.send(mine(&features, &mut offset, k, dim));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(inputs: usize) -> (Job<(), ()>, oneshot::Receiver<Result<(), ApiError>>) {
        let (reply, rx) = oneshot::channel();
        let j = Job {
            inputs,
            work: (),
            reply,
            enqueued: Instant::now(),
        };
        (j, rx)
    }

    fn queue(capacity: usize, max_wait: Option<Duration>) -> Queue<Job<(), ()>> {
        Queue::new(
            capacity,
            max_wait,
            TEXT,
            Arc::new(Share::new(Instant::now())),
        )
    }

    #[test]
    fn full_queue_refuses_with_429() {
        let q = queue(4, None);
        let (a, _ra) = job(3);
        let (b, _rb) = job(2);
        let (c, _rc) = job(1);
        q.push(a, 0.0).unwrap();
        let e = q.push(b, 0.0).unwrap_err();
        assert_eq!((e.status, e.retry_after), (429, Some(1)));
        q.push(c, 0.0).unwrap();
        assert_eq!(q.depth(), 4);
        // Larger than the whole queue: only into an empty one.
        let (big, _rbig) = job(10);
        assert_eq!(q.push(big, 0.0).unwrap_err().status, 429);
        let batch = q.next_batch(8, Duration::ZERO).unwrap();
        assert_eq!(batch.len(), 2);
        assert_eq!(q.depth(), 0);
        let (big, _rbig) = job(10);
        q.push(big, 0.0).unwrap();
        assert_eq!(q.depth(), 4);
    }

    #[test]
    fn batches_fill_to_max_batch_and_skip_abandoned_jobs() {
        let q = queue(100, None);
        let mut keep = Vec::new();
        for n in [3, 3, 3, 1] {
            let (j, rx) = job(n);
            q.push(j, 0.0).unwrap();
            keep.push(rx);
        }
        drop(keep.remove(1)); // the second request's caller left
        let b = q.next_batch(7, Duration::from_secs(60)).unwrap();
        assert_eq!(b.iter().map(|j| j.inputs).collect::<Vec<_>>(), [3, 3, 1]);
        q.close();
        assert!(q.next_batch(7, Duration::from_secs(60)).is_none());
    }

    /// Pushes `n` one-input jobs, keeping their receivers.
    fn fill(q: &Queue<Job<(), ()>>, n: usize) -> Vec<oneshot::Receiver<Result<(), ApiError>>> {
        (0..n)
            .map(|_| {
                let (j, rx) = job(1);
                q.push(j, 0.0).unwrap();
                rx
            })
            .collect()
    }

    #[test]
    fn a_queue_refuses_what_it_would_not_clear_in_time() {
        let q = queue(1000, Some(Duration::from_millis(100)));
        q.record(10, 100e6); // 10 ms per input
        let _keep = fill(&q, 10);
        let (j, _rx) = job(1);
        q.push(j, 0.0).unwrap(); // 10 ahead: 100 ms, not more than the bound
        let (j, _rx2) = job(1);
        let e = q.push(j, 0.0).unwrap_err(); // 11 ahead: 110 ms
        assert_eq!((e.status, e.retry_after), (429, Some(1)));
        assert!(e.message.contains("110 ms"), "{}", e.message);
    }

    #[test]
    fn the_batch_running_counts_as_work_ahead() {
        // Seconds, so that the test thread's own delays do not count.
        let q = queue(1000, Some(Duration::from_secs(5)));
        q.record(1, 1e9); // 1 s per input
        let _keep = fill(&q, 5);
        let b = q.next_batch(4, Duration::ZERO).unwrap();
        assert_eq!(b.len(), 4);
        // 1 queued (1 s) and up to 4 s left of the batch running: at most 5 s.
        let (j, _rx) = job(1);
        q.push(j, 0.0).unwrap();
        let (j, _rx2) = job(1);
        let e = q.push(j, 0.0).unwrap_err();
        assert_eq!(e.status, 429, "{}", e.message);
        // Once the batch is done only the queue is ahead.
        q.finish();
        let (j, _rx3) = job(1);
        q.push(j, 0.0).unwrap();
    }

    #[test]
    fn the_other_towers_work_counts_too() {
        let q = queue(1000, Some(Duration::from_millis(90)));
        q.record(1, 10e6);
        // 50 ms of this tower's work and 100 ms of the other's: 150 ms on the cores.
        let _keep = fill(&q, 5);
        let (j, _rx) = job(1);
        let e = q.push(j, 100e6).unwrap_err();
        assert!(e.message.contains("150 ms"), "{}", e.message);
        // With 20 ms of it: 50 + 20 = 70 ms.
        let (j, _rx) = job(1);
        q.push(j, 20e6).unwrap();
    }

    #[test]
    fn a_lone_job_waits_at_most_max_wait() {
        let q = queue(100, None);
        let (j, _rx) = job(1);
        q.push(j, 0.0).unwrap();
        let t = Instant::now();
        let b = q.next_batch(8, Duration::from_millis(50)).unwrap();
        assert_eq!(b.len(), 1);
        let waited = t.elapsed();
        assert!(waited >= Duration::from_millis(40) && waited < Duration::from_secs(5));
    }
}
