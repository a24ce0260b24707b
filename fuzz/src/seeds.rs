//! The generated seeds: micro models (a few KB) in both key layouts and in f32, f16 and
//! bf16, with and without `config.json`, and texts that reach every tokenizer step.
//! `clip-fuzz seeds` writes them under `fuzz/corpus/`; the image seeds there are copies of
//! small test fixtures (every PNG colour type and JPEG sampling the decoders handle).

use clip::ClipConfig;
use clip_tensor::{f32_to_bf16, f32_to_f16, DType};

/// The smallest sizes that still exercise everything: 2 heads, a 2x2 patch grid.
pub fn micro_config() -> ClipConfig {
    let mut c = ClipConfig::vit_base_patch32();
    let v = &mut c.vision;
    (v.hidden_size, v.intermediate_size, v.num_hidden_layers) = (8, 16, 1);
    (v.num_attention_heads, v.image_size, v.patch_size) = (2, 4, 2);
    let t = &mut c.text;
    (t.hidden_size, t.intermediate_size, t.num_hidden_layers) = (8, 8, 1);
    (
        t.num_attention_heads,
        t.vocab_size,
        t.max_position_embeddings,
    ) = (1, 8, 5);
    c.projection_dim = 4;
    c
}

/// A Hugging Face `config.json` for `cfg`.
pub fn config_json(cfg: &ClipConfig) -> String {
    let (v, t) = (&cfg.vision, &cfg.text);
    serde_json::json!({
        "projection_dim": cfg.projection_dim,
        "vision_config": {
            "hidden_size": v.hidden_size, "intermediate_size": v.intermediate_size,
            "num_hidden_layers": v.num_hidden_layers,
            "num_attention_heads": v.num_attention_heads,
            "image_size": v.image_size, "patch_size": v.patch_size,
        },
        "text_config": {
            "hidden_size": t.hidden_size, "intermediate_size": t.intermediate_size,
            "num_hidden_layers": t.num_hidden_layers,
            "num_attention_heads": t.num_attention_heads,
            "vocab_size": t.vocab_size, "max_position_embeddings": t.max_position_embeddings,
        },
    })
    .to_string()
}

/// The weights target's input: `[u32 LE n][config.json][safetensors]`, with `n` = u32::MAX
/// when there is no config.
pub fn weights_input(config: Option<&str>, safetensors: &[u8]) -> Vec<u8> {
    let config = config.unwrap_or("").as_bytes();
    let n = if config.is_empty() {
        u32::MAX
    } else {
        config.len() as u32
    };
    let mut out = n.to_le_bytes().to_vec();
    out.extend_from_slice(config);
    out.extend_from_slice(safetensors);
    out
}

/// A safetensors file of `tensors` (name, shape), filled with a small pattern in `dtype`.
pub fn safetensors(tensors: &[(String, Vec<usize>)], dtype: DType) -> Vec<u8> {
    let mut header = serde_json::Map::new();
    let mut data = Vec::new();
    for (i, (name, shape)) in tensors.iter().enumerate() {
        let n: usize = shape.iter().product();
        let values: Vec<f32> = (0..n)
            .map(|j| ((i * 7 + j * 37) % 17) as f32 / 16.0 - 0.5)
            .collect();
        let start = data.len();
        match dtype {
            DType::F32 => values
                .iter()
                .for_each(|v| data.extend_from_slice(&v.to_le_bytes())),
            DType::F16 => f32_to_f16(&values)
                .iter()
                .for_each(|v| data.extend_from_slice(&v.to_le_bytes())),
            DType::BF16 => f32_to_bf16(&values)
                .iter()
                .for_each(|v| data.extend_from_slice(&v.to_le_bytes())),
            // Integers, as a quantised file stores weights (without its metadata and scales:
            // such a file is refused).
            DType::I8 => values
                .iter()
                .for_each(|v| data.push((v * 254.0) as i8 as u8)),
        }
        header.insert(
            name.clone(),
            serde_json::json!({
                "dtype": dtype.safetensors_name(),
                "shape": shape,
                "data_offsets": [start, data.len()],
            }),
        );
    }
    let mut json = serde_json::Value::Object(header).to_string().into_bytes();
    while !json.len().is_multiple_of(8) {
        json.push(b' ');
    }
    let mut out = (json.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&json);
    out.extend_from_slice(&data);
    out
}

/// The tensors of `cfg` under OpenAI's key names (`visual.*`, `transformer.*`).
pub fn openai_tensors(cfg: &ClipConfig) -> Vec<(String, Vec<usize>)> {
    let (v, t) = (&cfg.vision, &cfg.text);
    let (c, p, tc, e) = (
        v.hidden_size,
        v.patch_size,
        t.hidden_size,
        cfg.projection_dim,
    );
    let mut out: Vec<(String, Vec<usize>)> = vec![
        ("visual.class_embedding".into(), vec![c]),
        ("visual.conv1.weight".into(), vec![c, 3, p, p]),
        (
            "visual.positional_embedding".into(),
            vec![v.num_positions(), c],
        ),
        ("visual.proj".into(), vec![c, e]),
        ("token_embedding.weight".into(), vec![t.vocab_size, tc]),
        (
            "positional_embedding".into(),
            vec![t.max_position_embeddings, tc],
        ),
        ("text_projection".into(), vec![tc, e]),
        ("logit_scale".into(), vec![]),
    ];
    for (ln, w) in [
        ("visual.ln_pre", c),
        ("visual.ln_post", c),
        ("ln_final", tc),
    ] {
        out.push((format!("{ln}.weight"), vec![w]));
        out.push((format!("{ln}.bias"), vec![w]));
    }
    let blocks = [
        (
            "visual.transformer.resblocks",
            v.num_hidden_layers,
            c,
            v.intermediate_size,
        ),
        (
            "transformer.resblocks",
            t.num_hidden_layers,
            tc,
            t.intermediate_size,
        ),
    ];
    for (prefix, layers, c, m) in blocks {
        for i in 0..layers {
            let k = |s: &str| format!("{prefix}.{i}.{s}");
            out.extend([
                (k("attn.in_proj_weight"), vec![3 * c, c]),
                (k("attn.in_proj_bias"), vec![3 * c]),
                (k("attn.out_proj.weight"), vec![c, c]),
                (k("attn.out_proj.bias"), vec![c]),
                (k("ln_1.weight"), vec![c]),
                (k("ln_1.bias"), vec![c]),
                (k("ln_2.weight"), vec![c]),
                (k("ln_2.bias"), vec![c]),
                (k("mlp.c_fc.weight"), vec![m, c]),
                (k("mlp.c_fc.bias"), vec![m]),
                (k("mlp.c_proj.weight"), vec![c, m]),
                (k("mlp.c_proj.bias"), vec![c]),
            ]);
        }
    }
    out
}

/// The tensors of `cfg` under Hugging Face's names, read back from the random-weights file.
pub fn hf_tensors(cfg: &ClipConfig) -> Vec<(String, Vec<usize>)> {
    let bytes = clip::random_safetensors(cfg, 0).expect("a valid micro config");
    let n = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes")) as usize;
    let header: serde_json::Value =
        serde_json::from_slice(&bytes[8..8 + n]).expect("the generator writes JSON");
    let mut out: Vec<(String, Vec<usize>)> = header
        .as_object()
        .expect("an object")
        .iter()
        .map(|(k, v)| {
            let shape = v["shape"]
                .as_array()
                .expect("a shape")
                .iter()
                .map(|d| d.as_u64().expect("a dim") as usize)
                .collect();
            (k.clone(), shape)
        })
        .collect();
    out.sort();
    out
}

/// The weights seeds, by file name.
pub fn weights_seeds() -> Vec<(String, Vec<u8>)> {
    let cfg = micro_config();
    let json = config_json(&cfg);
    let hf = hf_tensors(&cfg);
    let openai = openai_tensors(&cfg);
    vec![
        (
            "hf_f32_config".into(),
            weights_input(Some(&json), &safetensors(&hf, DType::F32)),
        ),
        (
            "hf_bf16_config".into(),
            weights_input(Some(&json), &safetensors(&hf, DType::BF16)),
        ),
        (
            "hf_f32_inferred".into(),
            weights_input(None, &safetensors(&hf, DType::F32)),
        ),
        (
            "openai_f32".into(),
            weights_input(None, &safetensors(&openai, DType::F32)),
        ),
        (
            "openai_f16".into(),
            weights_input(None, &safetensors(&openai, DType::F16)),
        ),
        (
            "hf_int8_config".into(),
            weights_input(
                Some(&json),
                &quantised(&json, &safetensors(&hf, DType::F32)),
            ),
        ),
    ]
}

/// The bytes `clip quantize` writes for a folder of `config` and `weights` (I8 linear
/// weights with their scales, the scheme in the metadata).
fn quantised(config: &str, weights: &[u8]) -> Vec<u8> {
    let dir = std::env::temp_dir().join(format!("clip-fuzz-seed-q-{}", std::process::id()));
    let (src, out) = (dir.join("src"), dir.join("out"));
    std::fs::create_dir_all(&src).expect("a temporary folder");
    std::fs::write(src.join("config.json"), config).expect("a temporary file");
    std::fs::write(src.join("model.safetensors"), weights).expect("a temporary file");
    clip::quantize_model(&src, &out).expect("the seed model quantises");
    let bytes = std::fs::read(out.join("model.safetensors")).expect("the quantised file");
    let _ = std::fs::remove_dir_all(&dir);
    bytes
}

/// The tokenizer seeds, by file name.
pub fn tokenizer_seeds() -> Vec<(String, Vec<u8>)> {
    let long = "supercalifragilistic".repeat(20);
    let texts: [(&str, &[u8]); 12] = [
        ("ascii", b"A photo of a cat, it's 2 cats' toys!"),
        ("specials", b"x<|endoftext|>y <|startoftext|> <|ENDOFTEXT|>"),
        ("emoji", "😀👍🏽 🇫🇷 family: 👨‍👩‍👧".as_bytes()),
        ("mojibake", "cafÃ© â€œquotedâ€\u{9d} Ã\u{a0}".as_bytes()),
        (
            "html",
            b"&amp;lt;b&amp;gt; &#38;#38; &eacute; &notanentity; &#x1F600;",
        ),
        ("cjk", "東京の猫 한국어 ไทย".as_bytes()),
        ("controls", b"tab\there\x00nul\x07bell\r\nnext\x1b[0m\x7f"),
        ("invalid_utf8", b"caf\xe9 \xff\xfe \xed\xa0\x80 \xc0\x80 ok"),
        ("digits", b"3.14159 1,000,000 42nd 0x7f"),
        (
            "spaces",
            "\u{a0}\u{2003}wide\u{3000}space\u{85}\u{2028}".as_bytes(),
        ),
        ("diacritics", "ﬁ ǅ ẞ İstanbul ΣΑΣ ᾳ ͅ ſt".as_bytes()),
        ("long_word", long.as_bytes()),
    ];
    texts
        .iter()
        .map(|(name, t)| (name.to_string(), t.to_vec()))
        .collect()
}
