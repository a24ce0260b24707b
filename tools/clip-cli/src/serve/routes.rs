//! The endpoints: routing, bearer authentication (compared in constant time), the body read
//! within its size limit and the request's deadline, parsing on a blocking thread, and the
//! wait for the workers' rows. Every error is OpenAI's JSON error shape.
//!
//! Not here: connections and shutdown (`http.rs`), JSON shapes (`api.rs`).

use super::api::{self, ApiError, Input, ParseLimits, Templates};
use super::batcher::{Batcher, TextDone};
use super::metrics::Metrics;
use super::Limits;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};
use std::sync::Arc;
use std::time::Instant;
use tokio::time::Instant as TokioInstant;

/// What every request shares.
pub struct State {
    pub model_name: String,
    pub dim: usize,
    pub api_key: Option<String>,
    pub limits: Limits,
    pub batcher: Batcher,
    pub metrics: Arc<Metrics>,
    pub random: bool,
}

impl State {
    fn parse_limits(&self) -> ParseLimits {
        ParseLimits {
            max_inputs: self.limits.max_inputs,
            max_text_bytes: self.limits.max_text_bytes,
            max_prompts: self.limits.max_prompts,
            dim: self.dim,
        }
    }
}

pub type Resp = Response<Full<Bytes>>;

/// Answers one request, and counts it.
pub async fn handle(
    state: Arc<State>,
    req: Request<Incoming>,
) -> Result<Resp, std::convert::Infallible> {
    let start = Instant::now();
    let endpoint = Metrics::endpoint(req.uri().path());
    let resp = route(&state, req, start)
        .await
        .unwrap_or_else(|e| error_response(&e));
    state.metrics.request(
        endpoint,
        resp.status().as_u16(),
        start.elapsed().as_secs_f64(),
    );
    Ok(resp)
}

async fn route(
    state: &Arc<State>,
    req: Request<Incoming>,
    start: Instant,
) -> Result<Resp, ApiError> {
    let path = req.uri().path();
    let allow = match path {
        "/health" | "/metrics" => "GET",
        "/v1/embeddings" | "/v1/classify" => "POST",
        _ => {
            return Err(ApiError::new(
                404,
                "invalid_request_error",
                format!("no endpoint {path}: POST /v1/embeddings, POST /v1/classify, GET /health, GET /metrics"),
            )
            .code("not_found"))
        }
    };
    if req.method().as_str() != allow {
        return Err(ApiError::new(
            405,
            "invalid_request_error",
            format!("{} {path}: use {allow}", req.method()),
        )
        .code("method_not_allowed"));
    }
    match path {
        "/health" => Ok(json(
            StatusCode::OK,
            serde_json::json!({
                "status": "ok",
                "model": state.model_name,
                "dimensions": state.dim,
                "random_weights": state.random,
            })
            .to_string()
            .into_bytes(),
        )),
        "/metrics" => {
            authorize(state, &req)?;
            let text = state.metrics.render(state.batcher.depths());
            let mut r = Response::new(Full::new(Bytes::from(text)));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            Ok(r)
        }
        "/v1/embeddings" => {
            authorize(state, &req)?;
            embeddings(state, req, start).await
        }
        _ => {
            authorize(state, &req)?;
            classify(state, req, start).await
        }
    }
}

/// Byte strings equal, in time that depends only on `key`'s length.
fn same_key(given: &[u8], key: &[u8]) -> bool {
    let mut diff = u8::from(given.len() != key.len());
    for (i, k) in key.iter().enumerate() {
        diff |= given.get(i).copied().unwrap_or(0) ^ k;
    }
    std::hint::black_box(diff) == 0
}

fn authorize(state: &State, req: &Request<Incoming>) -> Result<(), ApiError> {
    let Some(key) = &state.api_key else {
        return Ok(());
    };
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(HeaderValue::as_bytes)
        .unwrap_or_default();
    let token = given.strip_prefix(b"Bearer ").unwrap_or_default();
    if same_key(token, key.as_bytes()) {
        return Ok(());
    }
    let msg = match given.is_empty() {
        true => "no API key: send the header Authorization: Bearer KEY",
        false => "incorrect API key",
    };
    Err(ApiError::new(401, "invalid_request_error", msg).code("invalid_api_key"))
}

/// The request's deadline, on tokio's clock.
fn deadline(state: &State, start: Instant) -> TokioInstant {
    TokioInstant::from_std(start + state.limits.timeout)
}

/// The body, within `max_body_bytes` and the request's deadline.
async fn read_body(
    state: &State,
    req: Request<Incoming>,
    start: Instant,
) -> Result<Bytes, ApiError> {
    let limit = state.limits.max_body_bytes;
    let too_large = || {
        ApiError::new(
            413,
            "invalid_request_error",
            format!("the request body is larger than this server's limit of {limit} bytes"),
        )
        .code("request_too_large")
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        // Read and drop what the client sends (bounded), so it gets to read the answer
        // instead of a reset connection.
        drain(req.into_body());
        return Err(too_large());
    }
    let body = req.into_body();
    match tokio::time::timeout_at(deadline(state, start), collect(body, limit)).await {
        Err(_) => Err(ApiError::new(
            408,
            "invalid_request_error",
            format!(
                "the request body did not arrive within {} ms",
                state.limits.timeout.as_millis()
            ),
        )
        .code("timeout")),
        Ok(Err(None)) => Err(too_large()),
        Ok(Err(Some(e))) => Err(ApiError::invalid(
            None,
            format!("the request body could not be read: {e}"),
        )),
        Ok(Ok(b)) => Ok(Bytes::from(b)),
    }
}

/// The body's bytes, or `Err(None)` past `limit` (the rest is drained in the background).
async fn collect(mut body: Incoming, limit: usize) -> Result<Vec<u8>, Option<hyper::Error>> {
    let mut out = Vec::new();
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.map_err(Some)?.into_data() {
            if out.len() + data.len() > limit {
                drain(body);
                return Err(None);
            }
            out.extend_from_slice(&data);
        }
    }
    Ok(out)
}

/// Reads and drops up to 256 MiB of `body` for at most 10 s, in the background.
fn drain(mut body: Incoming) {
    tokio::spawn(async move {
        let mut left: usize = 256 << 20;
        let _ = tokio::time::timeout(std::time::Duration::from_secs(10), async {
            while let Some(Ok(frame)) = body.frame().await {
                let n = frame.data_ref().map_or(0, Bytes::len);
                if n >= left {
                    break;
                }
                left -= n;
            }
        })
        .await;
    });
}

/// Runs `f` on tokio's blocking pool (parsing and serialising large bodies is CPU work).
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| ApiError::new(500, "server_error", "internal error while parsing"))
}

/// Waits for a worker's answer until the request's deadline.
async fn answer<T>(
    state: &State,
    start: Instant,
    rx: tokio::sync::oneshot::Receiver<Result<T, ApiError>>,
) -> Result<T, ApiError> {
    match tokio::time::timeout_at(deadline(state, start), rx).await {
        Err(_) => Err(ApiError::new(
            503,
            "server_error",
            format!(
                "the model did not answer within {} ms (the server is overloaded); retry later",
                state.limits.timeout.as_millis()
            ),
        )
        .code("timeout")
        .retry_after(1)),
        Ok(Err(_)) => Err(ApiError::new(
            500,
            "server_error",
            "internal error: the request was dropped",
        )),
        Ok(Ok(r)) => r,
    }
}

async fn embeddings(
    state: &Arc<State>,
    req: Request<Incoming>,
    start: Instant,
) -> Result<Resp, ApiError> {
    let body = read_body(state, req, start).await?;
    let lim = state.parse_limits();
    let parsed = blocking(move || api::parse_embeddings(&body, &lim)).await??;
    let n = parsed.inputs.len();
    let (mut texts, mut images) = (Vec::new(), Vec::new());
    for (i, input) in parsed.inputs.into_iter().enumerate() {
        match input {
            Input::Text(t) => texts.push((i, t)),
            Input::Image(b) => images.push((i, b)),
        }
    }
    let text_at: Vec<usize> = texts.iter().map(|t| t.0).collect();
    let image_at: Vec<usize> = images.iter().map(|t| t.0).collect();
    let text_rx = (!texts.is_empty())
        .then(|| state.batcher.texts(texts))
        .transpose()?;
    let image_rx = (!images.is_empty())
        .then(|| state.batcher.images(images))
        .transpose()?;
    let mut rows: Vec<Vec<f32>> = vec![Vec::new(); n];
    let mut tokens = 0;
    if let Some(rx) = text_rx {
        let TextDone::Rows {
            rows: emb,
            tokens: t,
        } = answer(state, start, rx).await?
        else {
            return Err(ApiError::new(
                500,
                "server_error",
                "internal error: wrong answer",
            ));
        };
        tokens = t;
        for (&i, row) in text_at.iter().zip(emb.iter()) {
            rows[i] = row.to_vec();
        }
    }
    if let Some(rx) = image_rx {
        let emb = answer(state, start, rx).await?;
        for (&i, row) in image_at.iter().zip(emb.iter()) {
            rows[i] = row.to_vec();
        }
    }
    let name = state.model_name.clone();
    let b64 = parsed.base64;
    let body = blocking(move || api::embeddings_response(&name, &rows, b64, tokens)).await?;
    Ok(json(StatusCode::OK, body))
}

async fn classify(
    state: &Arc<State>,
    req: Request<Incoming>,
    start: Instant,
) -> Result<Resp, ApiError> {
    let body = read_body(state, req, start).await?;
    let lim = state.parse_limits();
    let parsed = blocking(move || api::parse_classify(&body, &lim)).await??;
    let templates = match parsed.templates {
        Templates::Imagenet => clip::IMAGENET_TEMPLATES
            .iter()
            .map(|t| t.to_string())
            .collect(),
        Templates::List(t) => t,
    };
    let k = parsed.top_k.unwrap_or(parsed.labels.len());
    let crx = state.batcher.classifier(parsed.labels, templates)?;
    let irx = state.batcher.images(vec![(0, parsed.image)])?;
    let TextDone::Classifier(classifier) = answer(state, start, crx).await? else {
        return Err(ApiError::new(
            500,
            "server_error",
            "internal error: wrong answer",
        ));
    };
    let image = answer(state, start, irx).await?;
    let predictions = classifier
        .classify(&image, k)
        .map_err(|e| ApiError::new(500, "server_error", e.to_string()))?;
    let preds = predictions.into_iter().next().unwrap_or_default();
    Ok(json(
        StatusCode::OK,
        api::classify_response(&state.model_name, &preds),
    ))
}

fn json(status: StatusCode, body: Vec<u8>) -> Resp {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// An error as OpenAI sends it, with `Retry-After` when given; a 413 closes the connection
/// (the rest of the body is not read).
pub fn error_response(e: &ApiError) -> Resp {
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut r = json(status, e.body());
    if let Some(s) = e.retry_after {
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(s));
    }
    if matches!(e.status, 408 | 413) {
        r.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    if e.status == 401 {
        r.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    r
}

#[cfg(test)]
mod tests {
    #[test]
    fn keys_compare_by_content_and_length() {
        assert!(super::same_key(b"secret", b"secret"));
        assert!(!super::same_key(b"secreT", b"secret"));
        assert!(!super::same_key(b"secret1", b"secret"));
        assert!(!super::same_key(b"secre", b"secret"));
        assert!(!super::same_key(b"", b"secret"));
    }
}
