//! `clip serve` end to end: the real binary on a loopback port, called with a real HTTP client
//! (ureq), or with hand-written HTTP/1.1 over a socket where a client must misbehave. Checks
//! that embeddings are bitwise the library's alone and batched, that each hostile request
//! gets a 4xx JSON error and the next request is still served, backpressure, and shutdown.
//!
//! Not here: the parsing and queue details (unit tests in `src/serve/`); load (docs/serving.md).

mod common;

use base64::Engine;
use common::*;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// A running `clip serve`, killed when dropped.
struct Server {
    child: Child,
    addr: String,
}

impl Server {
    fn start(dir: &Path, model: &Path, extra: &[&str]) -> Server {
        let mut child = clip(dir)
            .args([
                "serve",
                "--model",
                s(model),
                "--port",
                "0",
                "--threads",
                "2",
            ])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .split("http://")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .unwrap_or_else(|| panic!("no address in {line:?}"))
            .to_string();
        // Loopback unless told otherwise.
        assert!(addr.starts_with("127.0.0.1:"), "{line}");
        Server { child, addr }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn post(&self, path: &str, body: &str) -> (u16, Value) {
        self.post_with(path, body, None)
    }

    fn post_with(&self, path: &str, body: &str, key: Option<&str>) -> (u16, Value) {
        let mut req = agent()
            .post(&self.url(path))
            .content_type("application/json");
        if let Some(k) = key {
            req = req.header("Authorization", &format!("Bearer {k}"));
        }
        let mut resp = req.send(body).unwrap();
        let status = resp.status().as_u16();
        let text = resp.body_mut().read_to_string().unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    fn metrics(&self, key: Option<&str>) -> String {
        let mut req = agent().get(&self.url("/metrics"));
        if let Some(k) = key {
            req = req.header("Authorization", &format!("Bearer {k}"));
        }
        req.call().unwrap().body_mut().read_to_string().unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn data_url(png: &Path) -> String {
    format!(
        "data:image/png;base64,{}",
        b64(&std::fs::read(png).unwrap())
    )
}

/// The rows of an embeddings response, exactly (base64 or float).
fn rows(v: &Value) -> Vec<Vec<f32>> {
    let data = v["data"].as_array().unwrap_or_else(|| panic!("{v}"));
    data.iter()
        .enumerate()
        .map(|(i, d)| {
            assert_eq!(d["index"], i);
            assert_eq!(d["object"], "embedding");
            match &d["embedding"] {
                Value::String(s) => base64::engine::general_purpose::STANDARD
                    .decode(s)
                    .unwrap()
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect(),
                // f32 -> f64 -> shortest decimal -> f64 -> f32 is exact.
                Value::Array(a) => a.iter().map(|x| x.as_f64().unwrap() as f32).collect(),
                e => panic!("embedding {e}"),
            }
        })
        .collect()
}

fn bits(rows: &[Vec<f32>]) -> Vec<Vec<u32>> {
    rows.iter()
        .map(|r| r.iter().map(|v| v.to_bits()).collect())
        .collect()
}

fn assert_error(status: u16, v: &Value, want: u16, what: &str) {
    assert_eq!(status, want, "{what}: {v}");
    let msg = v["error"]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("{what}: {v}"));
    assert!(!msg.contains('\n') && !msg.is_empty(), "{what}: {msg:?}");
    assert!(v["error"]["type"].is_string(), "{what}: {v}");
}

fn setup(name: &str) -> (PathBuf, PathBuf, Vec<PathBuf>) {
    let dir = scratch(name);
    let model = tiny_model(&dir, "clip-tiny");
    let pngs: Vec<PathBuf> = (0..4)
        .map(|i| {
            let p = dir.join(format!("img{i}.png"));
            write_png(&p, 20 + 7 * i, 31 - 3 * i, i);
            p
        })
        .collect();
    (dir, model, pngs)
}

const TEXTS: [&str; 5] = ["a cat", "a photo of a dog", "", "x", "a diagram of a cpu"];

#[test]
fn embeddings_are_bitwise_the_librarys_alone_and_batched() {
    let (dir, model_dir, pngs) = setup("bitwise");
    let lib = clip::ClipModel::load(&model_dir).unwrap();
    let want_t = lib.embed_texts(&TEXTS, clip::Truncation::Refuse).unwrap();
    let bytes: Vec<Vec<u8>> = pngs.iter().map(|p| std::fs::read(p).unwrap()).collect();
    let want_i = lib.embed_image_bytes(&bytes).unwrap();
    let want_t: Vec<Vec<f32>> = want_t.iter().map(<[f32]>::to_vec).collect();
    let want_i: Vec<Vec<f32>> = want_i.iter().map(<[f32]>::to_vec).collect();
    // A long wait makes concurrent requests share forward passes.
    let srv = Server::start(
        &dir,
        &model_dir,
        &["--max-wait-ms", "300", "--max-batch", "64"],
    );

    // Alone: one input per request, one request at a time, float and base64.
    for (i, t) in TEXTS.iter().enumerate() {
        let fmt = ["float", "base64"][i % 2];
        let (st, v) = srv.post(
            "/v1/embeddings",
            &json!({"model": "m", "input": t, "encoding_format": fmt}).to_string(),
        );
        assert_eq!(st, 200, "{v}");
        assert_eq!(bits(&rows(&v)), bits(&want_t[i..=i]), "text {i} alone");
        assert_eq!(v["object"], "list");
        // SOT, one id per byte of each word here, EOT.
        let tokens = 2 + t.chars().filter(|c| !c.is_whitespace()).count() as u64;
        assert_eq!(v["usage"]["prompt_tokens"], tokens);
        assert_eq!(v["usage"]["total_tokens"], tokens);
    }
    for (i, p) in pngs.iter().enumerate() {
        let (st, v) = srv.post(
            "/v1/embeddings",
            &json!({"input": [{"image": data_url(p)}], "encoding_format": "base64"}).to_string(),
        );
        assert_eq!(st, 200, "{v}");
        assert_eq!(bits(&rows(&v)), bits(&want_i[i..=i]), "image {i} alone");
        assert_eq!(v["usage"]["prompt_tokens"], 0);
    }

    // Batched: eight clients at once, each with its own mix of texts and images.
    std::thread::scope(|sc| {
        for c in 0..8usize {
            let (srv, pngs, want_t, want_i) = (&srv, &pngs, &want_t, &want_i);
            sc.spawn(move || {
                let mut input = Vec::new();
                let mut want = Vec::new();
                for k in 0..(1 + c % 4) {
                    let t = (c + k) % TEXTS.len();
                    input.push(json!(TEXTS[t]));
                    want.push(want_t[t].clone());
                    let i = (c * 3 + k) % pngs.len();
                    input.push(json!({"image": data_url(&pngs[i])}));
                    want.push(want_i[i].clone());
                }
                let fmt = ["float", "base64"][c % 2];
                let body = json!({"input": input, "encoding_format": fmt}).to_string();
                let (st, v) = srv.post("/v1/embeddings", &body);
                assert_eq!(st, 200, "{v}");
                assert_eq!(bits(&rows(&v)), bits(&want), "client {c}");
            });
        }
    });
    // The clients did share forward passes.
    let m = srv.metrics(None);
    let count = metric(&m, "clip_batch_size_count{tower=\"image\"}");
    let sum = metric(&m, "clip_batch_size_sum{tower=\"image\"}");
    assert!(sum > count, "no image batch held more than one input:\n{m}");
}

/// A sample's value in Prometheus text.
fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in\n{text}"))
}

#[test]
fn a_failing_input_fails_only_its_own_request() {
    let (dir, model_dir, pngs) = setup("own-failure");
    let srv = Server::start(&dir, &model_dir, &["--max-wait-ms", "400"]);
    let long = "a".repeat(100);
    let good = json!({"input": ["a cat", {"image": data_url(&pngs[0])}]}).to_string();
    let bad_text = json!({"input": ["fine", long]}).to_string();
    let bad_image =
        json!({"input": [{"image": format!("data:image/png;base64,{}", b64(b"\x89PNG\r\n\x1a\nnot really"))}]})
            .to_string();
    let results: Vec<(u16, Value)> = std::thread::scope(|sc| {
        let hs: Vec<_> = [&good, &bad_text, &bad_image, &good]
            .into_iter()
            .map(|b| {
                let srv = &srv;
                sc.spawn(move || srv.post("/v1/embeddings", b))
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(results[0].0, 200, "{}", results[0].1);
    assert_eq!(results[3].0, 200, "{}", results[3].1);
    assert_error(results[1].0, &results[1].1, 400, "too long");
    let msg = results[1].1["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("input 1") && msg.contains("--truncate"),
        "{msg}"
    );
    assert_eq!(results[1].1["error"]["code"], "context_length_exceeded");
    assert_error(results[2].0, &results[2].1, 400, "bad image");
    assert!(results[2].1["error"]["message"]
        .as_str()
        .unwrap()
        .contains("input 0"));

    // With --truncate the long text is cut, as the library's Truncation::Cut does.
    drop(srv);
    let srv = Server::start(&dir, &model_dir, &["--truncate"]);
    let (st, v) = srv.post("/v1/embeddings", &json!({"input": long}).to_string());
    assert_eq!(st, 200, "{v}");
    let lib = clip::ClipModel::load(&model_dir).unwrap();
    let want = lib.embed_texts(&[&long], clip::Truncation::Cut).unwrap();
    assert_eq!(bits(&rows(&v)), bits(&[want.row(0).to_vec()]));
    assert_eq!(v["usage"]["prompt_tokens"], 77);
}

#[test]
fn classify_gives_the_librarys_probabilities() {
    let (dir, model_dir, pngs) = setup("classify");
    let srv = Server::start(&dir, &model_dir, &[]);
    let labels = ["cat", "dog", "car"];
    let lib = clip::ClipModel::load(&model_dir).unwrap();
    let img = lib
        .embed_image_bytes(&[std::fs::read(&pngs[1]).unwrap()])
        .unwrap();
    for (templates, list) in [
        (json!(null), vec!["a photo of a {}."]),
        (json!("imagenet"), clip::IMAGENET_TEMPLATES.to_vec()),
        (json!(["a {} here", "{}"]), vec!["a {} here", "{}"]),
    ] {
        let mut req = json!({"image": data_url(&pngs[1]), "labels": labels, "top_k": 2});
        if !templates.is_null() {
            req["templates"] = templates;
        }
        let (st, v) = srv.post("/v1/classify", &req.to_string());
        assert_eq!(st, 200, "{v}");
        let want = lib
            .zero_shot_classifier(&labels, &list, clip::Truncation::Refuse)
            .unwrap()
            .classify(&img, 2)
            .unwrap();
        let got = v["data"].as_array().unwrap();
        assert_eq!(got.len(), 2);
        for (g, w) in got.iter().zip(&want[0]) {
            assert_eq!(g["label"], w.label.as_str());
            assert_eq!(g["index"], w.index);
            assert_eq!(
                (g["prob"].as_f64().unwrap() as f32).to_bits(),
                w.prob.to_bits()
            );
        }
    }
    let (st, v) = srv.post(
        "/v1/classify",
        &json!({"image": data_url(&pngs[0]), "labels": ["a", "a"]}).to_string(),
    );
    assert_error(st, &v, 400, "duplicate label");
}

/// Sends raw bytes and reads the whole answer (the server closes or answers within 20 s).
fn raw(addr: &str, bytes: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(bytes).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = s.read(&mut buf) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
        if let Some(body) = String::from_utf8_lossy(&out).split("\r\n\r\n").nth(1) {
            if serde_json::from_str::<Value>(body).is_ok() {
                break;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A PNG header declaring `w x h` RGB pixels, with a few bytes of compressed data.
fn png_header_only(w: u32, h: u32) -> Vec<u8> {
    fn chunk(out: &mut Vec<u8>, kind: &[u8], data: &[u8]) {
        out.extend((data.len() as u32).to_be_bytes());
        let start = out.len();
        out.extend(kind);
        out.extend(data);
        out.extend(crc32(&out[start..]).to_be_bytes());
    }
    let mut ihdr = Vec::new();
    ihdr.extend(w.to_be_bytes());
    ihdr.extend(h.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]);
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(&mut out, b"IDAT", &[0x78, 0x9c, 0x03, 0x00]);
    chunk(&mut out, b"IEND", &[]);
    out
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in bytes {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 == 1 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
    }
    !c
}

/// A real decompression bomb: a 3000 x 3000 grey PNG of zeros, 9 MB of pixels in a few KB.
fn png_bomb(path: &Path) -> Vec<u8> {
    let f = std::fs::File::create(path).unwrap();
    let mut enc = png::Encoder::new(std::io::BufWriter::new(f), 3000, 3000);
    enc.set_color(png::ColorType::Grayscale);
    enc.set_depth(png::BitDepth::Eight);
    enc.write_header()
        .unwrap()
        .write_image_data(&vec![0u8; 3000 * 3000])
        .unwrap();
    std::fs::read(path).unwrap()
}

#[test]
fn hostile_requests_get_4xx_json_and_the_server_keeps_serving() {
    let (dir, model_dir, pngs) = setup("hostile");
    let key = "s3cret-key";
    let srv = Server::start(
        &dir,
        &model_dir,
        &[
            "--api-key",
            key,
            "--timeout-ms",
            "1500",
            "--max-image-pixels",
            "4000000",
        ],
    );
    let good = json!({"input": ["a cat", {"image": data_url(&pngs[0])}]}).to_string();
    let still_serving = |what: &str| {
        let (st, v) = srv.post_with("/v1/embeddings", &good, Some(key));
        assert_eq!(st, 200, "after {what}: {v}");
        assert_eq!(rows(&v).len(), 2);
    };
    let bomb = png_bomb(&dir.join("bomb.png"));
    assert!(bomb.len() < 100_000, "{}", bomb.len());
    let huge = png_header_only(60_000, 60_000);
    let many: Vec<&str> = vec!["a"; 10_000];
    let cases: Vec<(&str, String, u16)> = vec![
        ("malformed JSON", "{\"input\": [\"a\",".into(), 400),
        ("not JSON at all", "\u{0}\u{1}garbage".into(), 400),
        (
            "input of the wrong type",
            json!({"input": 42}).to_string(),
            400,
        ),
        (
            "an item of the wrong type",
            json!({"input": [true]}).to_string(),
            400,
        ),
        (
            "model of the wrong type",
            json!({"input": "a", "model": [1]}).to_string(),
            400,
        ),
        (
            "encoding_format unknown",
            json!({"input": "a", "encoding_format": "int8"}).to_string(),
            400,
        ),
        (
            "dimensions not the model's",
            json!({"input": "a", "dimensions": 7}).to_string(),
            400,
        ),
        ("token ids", json!({"input": [[1, 2, 3]]}).to_string(), 400),
        (
            "bad base64",
            json!({"input": [{"image": "data:image/png;base64,@@@@not base64"}]}).to_string(),
            400,
        ),
        (
            "an image that is not one",
            json!({"input": [{"image": format!("data:image/jpeg;base64,{}", b64(b"hello"))}]})
                .to_string(),
            400,
        ),
        (
            "a PNG decompression bomb",
            json!({"input": [{"image": format!("data:image/png;base64,{}", b64(&bomb))}]})
                .to_string(),
            400,
        ),
        (
            "a PNG declaring 3.6 gigapixels",
            json!({"input": [{"image": format!("data:image/png;base64,{}", b64(&huge))}]})
                .to_string(),
            400,
        ),
        (
            "a remote URL",
            json!({"input": [{"image": "http://127.0.0.1:1/cat.jpg"}]}).to_string(),
            400,
        ),
        (
            "a server file",
            json!({"input": [{"image": "/etc/passwd"}]}).to_string(),
            400,
        ),
        (
            "a file URL",
            json!({"input": [{"image": "file:///etc/passwd"}]}).to_string(),
            400,
        ),
        ("10,000 inputs", json!({"input": many}).to_string(), 400),
        ("nesting 10,000 deep", "[".repeat(10_000), 400),
    ];
    for (what, body, want) in &cases {
        let (st, v) = srv.post_with("/v1/embeddings", body, Some(key));
        assert_error(st, &v, *want, what);
        still_serving(what);
    }
    let (st, v) = srv.post_with(
        "/v1/embeddings",
        &json!({"input": [{"image": format!("data:image/png;base64,{}", b64(&bomb))}]}).to_string(),
        Some(key),
    );
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(
        st == 400 && msg.contains("input 0") && msg.contains("4000000"),
        "{msg}"
    );

    // A 100 MB body: refused from its Content-Length; the client still reads the answer.
    let big = vec![b' '; 100 << 20];
    let mut resp = agent()
        .post(&srv.url("/v1/embeddings"))
        .header("Authorization", &format!("Bearer {key}"))
        .send(&big[..])
        .unwrap();
    let st = resp.status().as_u16();
    let v: Value = serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap();
    assert_error(st, &v, 413, "100 MB body");
    still_serving("a 100 MB body");

    // The same without a length (chunked): refused once the limit is passed.
    let head = format!(
        "POST /v1/embeddings HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    let mut req = head.into_bytes();
    let chunk = vec![b' '; 1 << 20];
    for _ in 0..10 {
        req.extend(format!("{:x}\r\n", chunk.len()).as_bytes());
        req.extend(&chunk);
        req.extend(b"\r\n");
    }
    let answer = raw(&srv.addr, &req);
    assert!(
        answer.starts_with("HTTP/1.1 413"),
        "{}",
        &answer[..answer.len().min(300)]
    );
    still_serving("a chunked 10 MB body");

    // A slow client that never finishes its body: 408 at the request's deadline.
    let t = Instant::now();
    let answer = raw(
        &srv.addr,
        format!(
            "POST /v1/embeddings HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\nContent-Length: 1000\r\n\r\n{{\"input\": "
        )
        .as_bytes(),
    );
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"error\""), "{answer}");
    assert!(t.elapsed() < Duration::from_secs(10));
    still_serving("a slow client");
    // One that never finishes its headers: the connection is closed.
    let mut s = TcpStream::connect(&srv.addr).unwrap();
    s.write_all(b"POST /v1/embeddings HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    assert!(t.elapsed() < Duration::from_secs(25));
    still_serving("slow headers");

    // Keys: none, wrong (same length and not), right; /health needs none.
    for (given, what) in [
        (None, "no key"),
        (Some("s3cret-kez"), "wrong key"),
        (Some("s3cret"), "a prefix"),
    ] {
        let (st, v) = srv.post_with("/v1/embeddings", &good, given);
        assert_error(st, &v, 401, what);
        assert_eq!(v["error"]["code"], "invalid_api_key");
        still_serving(what);
    }
    let mut r = agent().get(&srv.url("/metrics")).call().unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let _ = r.body_mut().read_to_string();
    let mut r = agent().get(&srv.url("/health")).call().unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let h: Value = serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(h["status"], "ok");
    assert_eq!(h["dimensions"], 32);

    // Wrong routes and methods.
    let (st, v) = srv.post_with("/v1/nothing", "{}", Some(key));
    assert_error(st, &v, 404, "unknown route");
    let mut r = agent().get(&srv.url("/v1/embeddings")).call().unwrap();
    assert_eq!(r.status().as_u16(), 405);
    let _ = r.body_mut().read_to_string();

    // Everything was counted: errors by endpoint.
    let m = srv.metrics(Some(key));
    assert!(
        metric(&m, "clip_request_errors_total{endpoint=\"/v1/embeddings\"}") >= cases.len() as f64
    );
    assert!(m.contains("clip_queue_depth{tower=\"image\"}"));
    assert!(
        m.contains("clip_request_duration_seconds_bucket{endpoint=\"/v1/embeddings\",le=\"+Inf\"}")
    );
}

#[test]
fn a_full_queue_answers_429_with_retry_after() {
    let (dir, model_dir, _) = setup("queue");
    // The first request waits 3 s in its batch and fills the text queue meanwhile.
    let srv = Server::start(
        &dir,
        &model_dir,
        &[
            "--queue-capacity",
            "2",
            "--max-batch",
            "64",
            "--max-wait-ms",
            "3000",
        ],
    );
    std::thread::scope(|sc| {
        let first =
            sc.spawn(|| srv.post("/v1/embeddings", &json!({"input": ["a", "b"]}).to_string()));
        std::thread::sleep(Duration::from_millis(500));
        let mut resp = agent()
            .post(&srv.url("/v1/embeddings"))
            .send(json!({"input": "c"}).to_string())
            .unwrap();
        assert_eq!(resp.status().as_u16(), 429);
        assert_eq!(resp.headers()["retry-after"], "1");
        let v: Value = serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap();
        assert_error(429, &v, 429, "queue full");
        assert_eq!(v["error"]["code"], "queue_full");
        let (st, v) = first.join().unwrap();
        assert_eq!(st, 200, "{v}");
    });
    // Images have their own queue.
    let m = srv.metrics(None);
    assert_eq!(metric(&m, "clip_queue_capacity{tower=\"image\"}"), 2.0);
    assert_eq!(metric(&m, "clip_queue_depth{tower=\"text\"}"), 0.0);
}

#[test]
fn sigterm_finishes_requests_in_flight_and_refuses_new_ones() {
    let (dir, model_dir, _) = setup("sigterm");
    let mut srv = Server::start(
        &dir,
        &model_dir,
        &["--max-wait-ms", "2000", "--max-batch", "64"],
    );
    let addr = srv.addr.clone();
    std::thread::scope(|sc| {
        let srv = &srv;
        let in_flight =
            sc.spawn(move || srv.post("/v1/embeddings", &json!({"input": "a cat"}).to_string()));
        std::thread::sleep(Duration::from_millis(500));
        let killed = std::process::Command::new("kill")
            .args(["-TERM", &srv.child.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        std::thread::sleep(Duration::from_millis(300));
        assert!(
            TcpStream::connect(&addr).is_err(),
            "a new connection was accepted"
        );
        let (st, v) = in_flight.join().unwrap();
        assert_eq!(st, 200, "{v}");
        assert_eq!(rows(&v).len(), 1);
    });
    let t = Instant::now();
    let status = loop {
        if let Some(s) = srv.child.try_wait().unwrap() {
            break s;
        }
        assert!(t.elapsed() < Duration::from_secs(20), "still running");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status}");
    let mut err = String::new();
    srv.child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(
        err.contains("shutting down") && err.contains("stopped"),
        "{err}"
    );
}

#[test]
fn bad_flags_are_refused_before_loading() {
    let dir = scratch("serve-flags");
    for args in [
        &["serve", "--random-weights", "--max-batch", "0"][..],
        &["serve", "--random-weights", "--port", "70000"],
        &["serve", "--random-weights", "--host", "not-an-ip"],
        &["serve", "--random-weights", "--api-key", ""],
    ] {
        fails(&dir, args);
    }
}
