//! The public API's contracts, on a small random-weights model with CLIP's vocabulary:
//! truncation as `clip.tokenize` does it, empty batches, normalising zero, the similarity
//! matrix against an f64 reference, zero-shot ensembles against the mean computed here, and
//! the arguments the library refuses.

use clip::{
    ClipConfig, ClipModel, Embeddings, Error, Features, LoadOptions, PixelValues, Truncation,
};

fn config() -> ClipConfig {
    let mut c = ClipConfig::vit_base_patch32();
    let v = &mut c.vision;
    (v.hidden_size, v.intermediate_size, v.num_hidden_layers) = (64, 128, 1);
    (v.num_attention_heads, v.image_size, v.patch_size) = (2, 32, 16);
    let t = &mut c.text;
    (t.hidden_size, t.intermediate_size, t.num_hidden_layers) = (64, 128, 1);
    t.num_attention_heads = 2;
    c.projection_dim = 16;
    c
}

fn model(batch: usize) -> ClipModel {
    let opts = LoadOptions::new().threads(2).batch_size(batch);
    ClipModel::random(&config(), 3, &opts).unwrap()
}

/// A text of `words` words, each one token.
fn long_text(words: usize) -> String {
    vec!["cat"; words].join(" ")
}

#[test]
fn truncation_refuses_or_cuts_as_clip_tokenize() {
    let m = model(2);
    let texts = [
        "a".to_string(),
        "b".into(),
        "c".into(),
        long_text(100),
        "d".into(),
    ];
    // Refused, naming the text's index in the whole list (batches of 2 inside).
    match m.embed_texts(&texts, Truncation::Refuse) {
        Err(Error::Tokenizer(clip::TokenizerError::TooLong { index, tokens, .. })) => {
            assert_eq!((index, tokens), (3, 102));
        }
        other => panic!("expected TooLong for text 3, got {other:?}"),
    }
    // Cut: 77 ids, SOT first and EOT last, the rest the text's first 75 tokens.
    let tok = m.tokenizer();
    let ids = m.tokenize(&texts, Truncation::Cut).unwrap();
    let row = &ids[3];
    let words = tok.encode(&long_text(100));
    assert_eq!(row.len(), 77);
    assert_eq!(row[0], tok.sot());
    assert_eq!(row[76], tok.eot());
    assert_eq!(&row[1..76], &words[..75]);
    // The embedding of a cut text is the embedding of its cut ids.
    let e = m.embed_texts(&texts, Truncation::Cut).unwrap();
    let direct = m.embed_token_ids(&[row.as_slice()]).unwrap();
    assert_eq!(e.row(3), direct.row(0));
}

#[test]
fn empty_batches_give_no_rows() {
    let m = model(4);
    let s = config().vision.image_size;
    let none = PixelValues {
        data: Vec::new(),
        shape: [0, 3, s, s],
    };
    let e = m.embed_pixels(&none).unwrap();
    assert_eq!((e.rows(), e.dim()), (0, 16));
    assert_eq!(
        m.embed_texts::<&str>(&[], Truncation::Refuse)
            .unwrap()
            .rows(),
        0
    );
    assert_eq!(m.embed_image_files::<&str>(&[]).unwrap().rows(), 0);
    assert_eq!(m.embed_token_ids(&[]).unwrap().rows(), 0);
}

#[test]
fn normalising_zero_gives_zero_and_other_rows_unit_norm() {
    let f = Features::new(vec![0.0, 0.0, 3.0, 4.0], 2, 2).unwrap();
    let e = f.normalize();
    assert_eq!(e.row(0), [0.0, 0.0]);
    assert_eq!(e.row(1), [0.6, 0.8]);
    assert!(Features::new(vec![1.0; 3], 2, 2).is_err());
}

#[test]
fn similarity_against_f64() {
    let m = model(4);
    let texts = ["a photo of a cat", "a diagram", "two dogs"];
    let t = m.embed_texts(&texts, Truncation::Refuse).unwrap();
    let s = config().vision.image_size;
    let px = PixelValues {
        data: (0..2 * 3 * s * s)
            .map(|i| (i % 13) as f32 / 6.0 - 1.0)
            .collect(),
        shape: [2, 3, s, s],
    };
    let i = m.embed_pixels(&px).unwrap();
    let sim = m.similarity(&i, &t).unwrap();
    let scale = f64::from(m.logit_scale()).exp();
    assert_eq!((sim.rows(), sim.cols()), (2, 3));
    let logits = sim.logits();
    let per_text = sim.logits_transposed();
    let probs = sim.probs();
    for r in 0..2 {
        let want: Vec<f64> = (0..3)
            .map(|c| {
                i.row(r)
                    .iter()
                    .zip(t.row(c))
                    .map(|(a, b)| f64::from(*a) * f64::from(*b))
                    .sum::<f64>()
            })
            .collect();
        let z: f64 = want.iter().map(|c| (scale * c).exp()).sum();
        for c in 0..3 {
            assert!((f64::from(sim.cosine()[r * 3 + c]) - want[c]).abs() < 1e-6);
            assert!((f64::from(logits[r * 3 + c]) - scale * want[c]).abs() < 1e-4);
            assert_eq!(per_text[c * 2 + r], logits[r * 3 + c]);
            let p = (scale * want[c]).exp() / z;
            assert!((f64::from(probs[r * 3 + c]) - p).abs() < 1e-5);
        }
    }
}

#[test]
fn zero_shot_ensemble_is_the_renormalised_mean_of_template_embeddings() {
    let m = model(5);
    let labels = ["cat", "dog", "red car"];
    let templates = ["a photo of a {}.", "a drawing of the {}.", "itap of my {}."];
    let zs = m
        .zero_shot_classifier(&labels, &templates, Truncation::Refuse)
        .unwrap();
    for (c, label) in labels.iter().enumerate() {
        let prompts: Vec<String> = templates.iter().map(|t| t.replace("{}", label)).collect();
        let e = m.embed_texts(&prompts, Truncation::Refuse).unwrap();
        let mut mean = vec![0f64; e.dim()];
        for row in e.iter() {
            mean.iter_mut()
                .zip(row)
                .for_each(|(m, v)| *m += f64::from(*v) / 3.0);
        }
        let norm = mean.iter().map(|v| v * v).sum::<f64>().sqrt();
        for (got, want) in zs.class_embeddings().row(c).iter().zip(&mean) {
            assert!((f64::from(*got) - want / norm).abs() < 1e-6);
        }
    }
    let img = Embeddings::from_unnormalized(zs.class_embeddings().row(1).to_vec(), 1, 16).unwrap();
    let top = zs.classify(&img, 2).unwrap();
    assert_eq!(top[0].len(), 2);
    assert_eq!(
        top[0][0].label, "dog",
        "a class embedding is most like itself"
    );
    let sum: f32 = zs.probs(&img).unwrap().iter().sum();
    assert!((sum - 1.0).abs() < 1e-5);
    assert_eq!(clip::IMAGENET_TEMPLATES.len(), 80);
}

#[test]
fn bad_arguments_are_typed_errors() {
    let m = model(4);
    let refuse = Truncation::Refuse;
    for (labels, templates) in [
        (vec!["cat", "cat"], vec!["a {}"]),
        (vec![], vec!["a {}"]),
        (vec!["cat", " "], vec!["a {}"]),
        (vec!["cat"], vec!["no slot"]),
        (vec!["cat"], vec![]),
    ] {
        assert!(
            matches!(
                m.zero_shot_classifier(&labels, &templates, refuse),
                Err(Error::InvalidArgument { .. })
            ),
            "{labels:?} {templates:?}"
        );
    }
    let cfg = config();
    let zero = LoadOptions::new().batch_size(0);
    assert!(matches!(
        ClipModel::random(&cfg, 0, &zero),
        Err(Error::InvalidArgument { .. })
    ));
    let many = LoadOptions::new().threads(100_000);
    assert!(matches!(
        ClipModel::random(&cfg, 0, &many),
        Err(Error::Tensor(_))
    ));
    let s = cfg.vision.image_size;
    let wrong = PixelValues {
        data: vec![0.0; 3 * (s + 1) * (s + 1)],
        shape: [1, 3, s + 1, s + 1],
    };
    assert!(matches!(
        m.embed_pixels(&wrong),
        Err(Error::InvalidInput { .. })
    ));
}
