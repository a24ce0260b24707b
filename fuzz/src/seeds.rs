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
        // Without a config, only an OpenAI release's shapes load: these are refused.
        (
            "hf_f32_no_config".into(),
            weights_input(None, &safetensors(&hf, DType::F32)),
        ),
        (
            "openai_f32_no_config".into(),
            weights_input(None, &safetensors(&openai, DType::F32)),
        ),
        (
            "openai_f32_config".into(),
            weights_input(Some(&json), &safetensors(&openai, DType::F32)),
        ),
        (
            "openai_f16_config".into(),
            weights_input(Some(&json), &safetensors(&openai, DType::F16)),
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

/// The generated image seeds (issue #21): recipes for the structure-aware mode
/// (`jpeg_recipe.rs`: a second frame header, the stray-`FF 00` desync, 400 and 600 scans,
/// DNL, a marker inside entropy data, progressive CMYK), and the same constructions as plain
/// JPEG bytes for the byte-level mode. The other image seeds are copies of test fixtures.
pub fn image_seeds() -> Vec<(String, Vec<u8>)> {
    use crate::jpeg_recipe::{build, serialise, MAGIC};
    let grey = [(0x11, 0)];
    let baseline = |w, h| {
        [
            build::sof(0, w, h, &grey),
            build::tables(1),
            build::sos(&[1], 0, 63, 0, 1, 64),
        ]
        .concat()
    };
    let scans = |n: u16| {
        [
            build::sof(2, 256, 256, &grey),
            build::tables(1),
            build::sos(&[1], 0, 0, 0, 1, 128),
            build::sos(&[1], 1, 63, 0, 3, 64),
            build::repeat(n - 2, 1),
            build::eoi(),
        ]
        .concat()
    };
    // A walker taking `FF 00` for a marker with a length lands 0xFFE1 bytes on, inside the
    // APP1 payload, where a fake 1x1 frame header waits; the real frame is 1.2 Mpx.
    let mut desync = build::stray(&[0xFF, 0x00]);
    desync.extend([4, 1, 0xFF, 0xF0]); // APP1 of 65520 bytes
    desync.extend((4u16 + 0xFFE1 - 8).to_be_bytes());
    desync.extend([0, 1, 0, 1]); // the fake frame: 1x1
    desync.extend(baseline(4000, 300));
    desync.extend(build::eoi());
    let mut marker_in_data = [build::sof(0, 16, 16, &grey), build::tables(1)].concat();
    marker_in_data.extend([
        3, 0, 1, 0, 0, 63, 0, 0, 6, 0x00, 0xFF, 0xC4, 0x00, 0x02, 0x00,
    ]);
    marker_in_data.extend(build::eoi());
    let mut dnl = [build::sof(0, 16, 0, &grey), build::tables(1)].concat();
    dnl.extend(build::sos(&[1], 0, 63, 0, 1, 8));
    dnl.extend([8, 0xDC, 2, 0, 16]); // DNL: 16 lines
    dnl.extend(build::eoi());
    let cmyk: Vec<(u8, u8)> = (0..4).map(|_| (0x11, 0)).collect();
    let recipes: [(&str, Vec<u8>); 7] = [
        (
            "multi_sof",
            [baseline(16, 16), build::sof(0, 32, 32, &grey), build::eoi()].concat(),
        ),
        ("desync", desync),
        ("scans_400", scans(400)),
        ("scans_600", scans(600)),
        ("dnl", dnl),
        ("marker_in_data", marker_in_data),
        (
            "progressive_cmyk",
            [
                build::sof(2, 64, 48, &cmyk),
                build::tables(1),
                build::sos(&[1, 2, 3, 4], 0, 0, 0, 1, 32),
                build::sos(&[3], 1, 63, 0, 3, 4),
                build::eoi(),
            ]
            .concat(),
        ),
    ];
    let mut out: Vec<(String, Vec<u8>)> = Vec::new();
    for (name, recipe) in &recipes {
        out.push((format!("recipe_{name}.jseg"), [&MAGIC[..], recipe].concat()));
    }
    for name in ["multi_sof", "scans_600", "marker_in_data"] {
        let (_, recipe) = recipes.iter().find(|(n, _)| *n == name).unwrap();
        out.push((format!("hostile_{name}.jpg"), serialise(recipe)));
    }
    // A real 1x1 file behind a stray FF 00 (decodes, as with libjpeg).
    let one = include_bytes!("../../crates/image/tests/fixtures/image/jpeg_1x1.jpg");
    out.push((
        "hostile_stray_ff00.jpg".into(),
        [&one[..2], &[0xFF, 0x00], &one[2..]].concat(),
    ));
    out
}
