//! The wire format: OpenAI's embeddings request and response, the classification request
//! and response, and OpenAI's error shape. Parsing checks every limit and type before any
//! work is queued; each refusal is a one-line message naming the field.
//!
//! Image items are `{"image": "data:image/png;base64,..."}` in `input`, mixed freely with
//! strings (each row of the response is the embedding of the item at its index). Strings
//! are always texts. Only `data:` URLs are read: a remote URL or anything else is refused,
//! so no request can make the server fetch or open anything.
//!
//! Not here: running the model (`batcher.rs`), HTTP (`routes.rs`).

use base64::Engine;
use serde_json::{json, Map, Value};

/// An error answered as `{"error": {"message", "type", "param", "code"}}`.
#[derive(Debug)]
pub struct ApiError {
    pub status: u16,
    pub message: String,
    pub kind: &'static str,
    pub code: Option<&'static str>,
    pub param: Option<&'static str>,
    /// Seconds for a `Retry-After` header.
    pub retry_after: Option<u32>,
}

impl ApiError {
    /// A 400 about the request's content.
    pub fn invalid(param: Option<&'static str>, message: impl Into<String>) -> ApiError {
        ApiError {
            status: 400,
            message: message.into(),
            kind: "invalid_request_error",
            code: None,
            param,
            retry_after: None,
        }
    }

    pub fn new(status: u16, kind: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            kind,
            code: None,
            param: None,
            retry_after: None,
        }
    }

    pub fn code(mut self, code: &'static str) -> ApiError {
        self.code = Some(code);
        self
    }

    pub fn retry_after(mut self, seconds: u32) -> ApiError {
        self.retry_after = Some(seconds);
        self
    }

    /// The JSON body; the message is kept to one line.
    pub fn body(&self) -> Vec<u8> {
        let message: String = self
            .message
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        json!({"error": {
            "message": message,
            "type": self.kind,
            "param": self.param,
            "code": self.code,
        }})
        .to_string()
        .into_bytes()
    }
}

/// One item of `input`.
#[derive(Debug, PartialEq)]
pub enum Input {
    Text(String),
    /// The encoded image (PNG or JPEG) from a `data:` URL.
    Image(Vec<u8>),
}

/// A parsed `/v1/embeddings` request.
#[derive(Debug)]
pub struct EmbedRequest {
    pub inputs: Vec<Input>,
    pub base64: bool,
}

/// What parsing needs to know of the server.
pub struct ParseLimits {
    pub max_inputs: usize,
    pub max_text_bytes: usize,
    pub max_prompts: usize,
    pub dim: usize,
}

fn object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::invalid(
            None,
            format!("the body is not valid JSON ({e}); send a JSON object"),
        )
    })?;
    match v {
        Value::Object(m) => Ok(m),
        other => Err(ApiError::invalid(
            None,
            format!("the body is JSON {}, not an object", kind(&other)),
        )),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `model` is optional and may name anything (gateways send their own names); it must be a
/// string if given.
fn check_model(m: &Map<String, Value>) -> Result<(), ApiError> {
    match m.get("model") {
        None | Some(Value::Null) | Some(Value::String(_)) => Ok(()),
        Some(v) => Err(ApiError::invalid(
            Some("model"),
            format!("'model' must be a string, not {}", kind(v)),
        )),
    }
}

/// Parses a `/v1/embeddings` body.
pub fn parse_embeddings(body: &[u8], lim: &ParseLimits) -> Result<EmbedRequest, ApiError> {
    let mut m = object(body)?;
    check_model(&m)?;
    let base64 = match m.get("encoding_format") {
        None | Some(Value::Null) => false,
        Some(Value::String(s)) if s == "float" => false,
        Some(Value::String(s)) if s == "base64" => true,
        Some(v) => {
            return Err(ApiError::invalid(
                Some("encoding_format"),
                format!("'encoding_format' must be \"float\" or \"base64\", not {v}"),
            ))
        }
    };
    match m.get("dimensions") {
        None | Some(Value::Null) => {}
        Some(Value::Number(n)) if n.as_u64() == Some(lim.dim as u64) => {}
        Some(v) => {
            return Err(ApiError::invalid(
                Some("dimensions"),
                format!(
                    "'dimensions' is {v}; this model gives {} dimensions (omit it or send {})",
                    lim.dim, lim.dim
                ),
            ))
        }
    }
    // Taken out of the parsed body, not copied: images are most of its bytes.
    let items = match m.remove("input") {
        None => return Err(ApiError::invalid(Some("input"), "'input' is missing")),
        Some(Value::String(s)) => vec![Value::String(s)],
        Some(Value::Array(a)) => {
            if a.is_empty() {
                return Err(ApiError::invalid(Some("input"), "'input' is an empty list"));
            }
            if a.iter().all(Value::is_number) {
                return Err(token_ids());
            }
            a
        }
        Some(v) => {
            return Err(ApiError::invalid(
                Some("input"),
                format!(
                    "'input' must be a string or a list of strings and image items, not {}",
                    kind(&v)
                ),
            ))
        }
    };
    if items.len() > lim.max_inputs {
        return Err(ApiError::invalid(
            Some("input"),
            format!(
                "'input' has {} items; this server takes at most {} per request",
                items.len(),
                lim.max_inputs
            ),
        ));
    }
    let inputs = items
        .into_iter()
        .enumerate()
        .map(|(i, v)| input_item(i, v, lim))
        .collect::<Result<_, _>>()?;
    Ok(EmbedRequest { inputs, base64 })
}

fn token_ids() -> ApiError {
    ApiError::invalid(
        Some("input"),
        "'input' as token ids is not accepted: they would be another tokenizer's ids; send \
         the texts (LangChain: OpenAIEmbeddings(check_embedding_ctx_length=False))",
    )
}

fn input_item(i: usize, v: Value, lim: &ParseLimits) -> Result<Input, ApiError> {
    match v {
        Value::String(s) => {
            if s.len() > lim.max_text_bytes {
                return Err(ApiError::invalid(
                    Some("input"),
                    format!(
                        "input {i}: a text of {} bytes; this server takes at most {}",
                        s.len(),
                        lim.max_text_bytes
                    ),
                ));
            }
            Ok(Input::Text(s))
        }
        Value::Object(o) => match o.get("image") {
            Some(Value::String(url)) if o.len() == 1 => {
                Ok(Input::Image(data_url(url).map_err(|why| {
                    ApiError::invalid(Some("input"), format!("input {i}: {why}"))
                })?))
            }
            _ => Err(ApiError::invalid(
                Some("input"),
                format!(
                    "input {i}: an object must be {{\"image\": \"data:image/...;base64,...\"}}"
                ),
            )),
        },
        Value::Array(_) | Value::Number(_) => Err(token_ids()),
        other => Err(ApiError::invalid(
            Some("input"),
            format!(
                "input {i} is {}; items are strings or {{\"image\": \"data:...\"}}",
                kind(&other)
            ),
        )),
    }
}

/// The bytes of a base64 `data:` URL; anything else is refused without being looked at.
pub fn data_url(url: &str) -> Result<Vec<u8>, String> {
    let Some(rest) = url.strip_prefix("data:") else {
        let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
        if lower.starts_with("http://") || lower.starts_with("https://") {
            return Err("remote URLs are not fetched; send the image as a base64 data: URL".into());
        }
        return Err(
            "not a data: URL (files on the server are never read); send \
             \"data:image/jpeg;base64,...\""
                .into(),
        );
    };
    let Some((meta, payload)) = rest.split_once(',') else {
        return Err("a data: URL without a comma before its data".into());
    };
    if !meta.ends_with(";base64") {
        return Err("a data: URL that is not base64 (\"data:image/png;base64,...\")".into());
    }
    let media = &meta[..meta.len() - ";base64".len()];
    if !(media.is_empty() || media.starts_with("image/")) {
        return Err(format!("a data: URL of type {media:?}, not an image"));
    }
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    // Line-wrapped base64 (MIME's 76 columns) is accepted.
    let decoded = if payload.bytes().any(|b| b.is_ascii_whitespace()) {
        let compact: Vec<u8> = payload
            .bytes()
            .filter(|b| !b.is_ascii_whitespace())
            .collect();
        engine.decode(compact)
    } else {
        engine.decode(payload)
    };
    let bytes = decoded.map_err(|e| format!("bad base64 in the data: URL ({e})"))?;
    if bytes.is_empty() {
        return Err("an empty image".into());
    }
    Ok(bytes)
}

/// The `/v1/embeddings` response; rows are given in input order.
pub fn embeddings_response(
    model: &str,
    rows: &[Vec<f32>],
    base64: bool,
    prompt_tokens: usize,
) -> Vec<u8> {
    let data: Vec<Value> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let embedding = if base64 {
                let bytes: Vec<u8> = r.iter().flat_map(|v| v.to_le_bytes()).collect();
                Value::String(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                Value::from(r.clone())
            };
            json!({"object": "embedding", "index": i, "embedding": embedding})
        })
        .collect();
    json!({
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
    })
    .to_string()
    .into_bytes()
}

/// The templates of a classification.
#[derive(Debug, PartialEq)]
pub enum Templates {
    /// The CLIP paper's 80 ImageNet prompts.
    Imagenet,
    List(Vec<String>),
}

/// A parsed `/v1/classify` request.
#[derive(Debug)]
pub struct ClassifyRequest {
    pub image: Vec<u8>,
    pub labels: Vec<String>,
    pub templates: Templates,
    pub top_k: Option<usize>,
}

/// Parses a `/v1/classify` body: `{"image": "data:...", "labels": [...], "templates"?:
/// "imagenet" | [...], "top_k"?: n}`.
pub fn parse_classify(body: &[u8], lim: &ParseLimits) -> Result<ClassifyRequest, ApiError> {
    let m = object(body)?;
    check_model(&m)?;
    let image = match m.get("image") {
        Some(Value::String(url)) => data_url(url)
            .map_err(|why| ApiError::invalid(Some("image"), format!("image: {why}")))?,
        Some(v) => {
            return Err(ApiError::invalid(
                Some("image"),
                format!("'image' must be a data: URL string, not {}", kind(v)),
            ))
        }
        None => return Err(ApiError::invalid(Some("image"), "'image' is missing")),
    };
    let labels = strings(&m, "labels", lim)?
        .ok_or_else(|| ApiError::invalid(Some("labels"), "'labels' is missing"))?;
    let templates = match m.get("templates") {
        None | Some(Value::Null) => Templates::List(vec!["a photo of a {}.".into()]),
        Some(Value::String(s)) if s == "imagenet" => Templates::Imagenet,
        Some(Value::Array(_)) => {
            Templates::List(strings(&m, "templates", lim)?.unwrap_or_default())
        }
        Some(v) => {
            return Err(ApiError::invalid(
                Some("templates"),
                format!("'templates' must be \"imagenet\" or a list of strings, not {v}"),
            ))
        }
    };
    let n_templates = match &templates {
        Templates::Imagenet => clip::IMAGENET_TEMPLATES.len(),
        Templates::List(t) => t.len(),
    };
    if labels.len().saturating_mul(n_templates) > lim.max_prompts {
        return Err(ApiError::invalid(
            Some("labels"),
            format!(
                "{} labels x {n_templates} templates = {} prompts; this server takes at most {}",
                labels.len(),
                labels.len() * n_templates,
                lim.max_prompts
            ),
        ));
    }
    let top_k = match m.get("top_k") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) if n.as_u64().is_some_and(|k| k >= 1) => {
            Some(n.as_u64().unwrap_or(1) as usize)
        }
        Some(v) => {
            return Err(ApiError::invalid(
                Some("top_k"),
                format!("'top_k' must be a whole number of at least 1, not {v}"),
            ))
        }
    };
    Ok(ClassifyRequest {
        image,
        labels,
        templates,
        top_k,
    })
}

/// A list of strings under `key`, bounded in count and length.
fn strings(
    m: &Map<String, Value>,
    key: &'static str,
    lim: &ParseLimits,
) -> Result<Option<Vec<String>>, ApiError> {
    let Some(v) = m.get(key) else {
        return Ok(None);
    };
    let Value::Array(a) = v else {
        return Err(ApiError::invalid(
            Some(key),
            format!("'{key}' must be a list of strings, not {}", kind(v)),
        ));
    };
    if a.len() > lim.max_inputs {
        return Err(ApiError::invalid(
            Some(key),
            format!(
                "'{key}' has {} items; this server takes at most {}",
                a.len(),
                lim.max_inputs
            ),
        ));
    }
    a.iter()
        .enumerate()
        .map(|(i, v)| match v {
            Value::String(s) if s.len() <= lim.max_text_bytes => Ok(s.clone()),
            Value::String(s) => Err(ApiError::invalid(
                Some(key),
                format!(
                    "{key}[{i}] has {} bytes; at most {}",
                    s.len(),
                    lim.max_text_bytes
                ),
            )),
            v => Err(ApiError::invalid(
                Some(key),
                format!("{key}[{i}] is {}, not a string", kind(v)),
            )),
        })
        .collect::<Result<_, _>>()
        .map(Some)
}

/// The `/v1/classify` response: the labels by falling probability.
pub fn classify_response(model: &str, predictions: &[clip::Prediction]) -> Vec<u8> {
    let data: Vec<Value> = predictions
        .iter()
        .map(|p| json!({"index": p.index, "label": p.label, "prob": p.prob}))
        .collect();
    json!({"object": "classification", "model": model, "data": data})
        .to_string()
        .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIM: ParseLimits = ParseLimits {
        max_inputs: 4,
        max_text_bytes: 10,
        max_prompts: 8,
        dim: 32,
    };

    fn err(body: &str) -> ApiError {
        parse_embeddings(body.as_bytes(), &LIM).unwrap_err()
    }

    #[test]
    fn embeddings_requests() {
        let r = parse_embeddings(br#"{"model":"x","input":"a cat"}"#, &LIM).unwrap();
        assert_eq!(r.inputs, vec![Input::Text("a cat".into())]);
        assert!(!r.base64);
        let r = parse_embeddings(
            br#"{"input":["a",{"image":"data:image/png;base64,AAEC"}],"encoding_format":"base64","dimensions":32,"user":"u"}"#,
            &LIM,
        )
        .unwrap();
        assert_eq!(
            r.inputs,
            vec![Input::Text("a".into()), Input::Image(vec![0, 1, 2])]
        );
        assert!(r.base64);
        assert!(err("{").message.contains("not valid JSON"));
        assert!(err("[1]").message.contains("not an object"));
        assert!(err(r#"{"input":5}"#).message.contains("not a number"));
        assert!(err(r#"{"input":[]}"#).message.contains("empty"));
        assert!(err(r#"{"input":[1,2]}"#).message.contains("token ids"));
        assert!(err(r#"{"input":[[1,2]]}"#).message.contains("token ids"));
        assert!(err(r#"{"input":["a","b","c","d","e"]}"#)
            .message
            .contains("at most 4"));
        assert!(err(r#"{"input":"01234567890"}"#)
            .message
            .contains("11 bytes"));
        assert_eq!(
            err(r#"{"input":"a","dimensions":8}"#).param,
            Some("dimensions")
        );
        assert_eq!(
            err(r#"{"input":"a","encoding_format":"int8"}"#).param,
            Some("encoding_format")
        );
        assert_eq!(err(r#"{"input":"a","model":3}"#).param, Some("model"));
        assert!(err(r#"{"input":[{"img":"x"}]}"#)
            .message
            .contains("input 0"));
    }

    #[test]
    fn only_base64_data_urls_are_read() {
        assert!(data_url("https://example.invalid/cat.jpg")
            .unwrap_err()
            .contains("remote URLs are not fetched"));
        assert!(data_url("HTTP://x").unwrap_err().contains("remote"));
        assert!(data_url("/etc/passwd").unwrap_err().contains("never read"));
        assert!(data_url("file:///etc/passwd")
            .unwrap_err()
            .contains("never read"));
        assert!(data_url("data:image/png,abc")
            .unwrap_err()
            .contains("not base64"));
        assert!(data_url("data:text/plain;base64,AAEC")
            .unwrap_err()
            .contains("not an image"));
        assert!(data_url("data:image/png;base64,!!!!")
            .unwrap_err()
            .contains("bad base64"));
        assert_eq!(data_url("data:;base64,AAE").unwrap(), vec![0, 1]);
        assert_eq!(
            data_url("data:image/jpeg;base64,AA\r\nEC").unwrap(),
            vec![0, 1, 2]
        );
    }

    #[test]
    fn base64_rows_are_little_endian_f32() {
        let body = embeddings_response("m", &[vec![1.0, -2.5]], true, 3);
        let v: Value = serde_json::from_slice(&body).unwrap();
        let b = v["data"][0]["embedding"].as_str().unwrap();
        let bytes = base64::engine::general_purpose::STANDARD.decode(b).unwrap();
        assert_eq!(
            bytes,
            [1.0f32.to_le_bytes(), (-2.5f32).to_le_bytes()].concat()
        );
        assert_eq!(v["usage"]["prompt_tokens"], 3);
        assert_eq!(v["object"], "list");
    }

    #[test]
    fn classify_requests() {
        let r = parse_classify(
            br#"{"image":"data:image/png;base64,AAEC","labels":["cat","dog"],"top_k":1}"#,
            &LIM,
        )
        .unwrap();
        assert_eq!(r.labels, ["cat", "dog"]);
        assert_eq!(
            r.templates,
            Templates::List(vec!["a photo of a {}.".into()])
        );
        assert_eq!(r.top_k, Some(1));
        let e = parse_classify(
            br#"{"image":"data:image/png;base64,AAEC","labels":["a","b"],"templates":"imagenet"}"#,
            &LIM,
        )
        .unwrap_err();
        assert!(e.message.contains("160 prompts"), "{}", e.message);
        let e = parse_classify(br#"{"image":"x.png","labels":["a"]}"#, &LIM).unwrap_err();
        assert!(e.message.contains("never read"));
    }

    #[test]
    fn errors_are_one_line_openai_shape() {
        let e = ApiError::invalid(Some("input"), "two\nlines");
        let v: Value = serde_json::from_slice(&e.body()).unwrap();
        assert_eq!(v["error"]["message"], "two lines");
        assert_eq!(v["error"]["type"], "invalid_request_error");
        assert_eq!(v["error"]["param"], "input");
        assert!(v["error"]["code"].is_null());
    }
}
