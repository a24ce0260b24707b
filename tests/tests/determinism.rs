//! Concurrency and batch determinism, bitwise, on a small random-weights model (fast in CI):
//! one model shared by 8 threads gives what one thread gives doing the inputs in turn, and
//! an input's embedding is the same alone or in a batch of 7 or 32, on 1 or 2 threads; in
//! every precision (f32, bf16 with this CPU's default kernel, int8).

use clip::{
    ClipConfig, ClipModel, ForwardOptions, LoadOptions, PixelValues, Precision, Truncation,
};

const PRECISIONS: [Precision; 3] = [Precision::F32, Precision::Bf16, Precision::Int8];

/// Big enough that the GEMMs split across threads and batches change the blocking.
fn config() -> ClipConfig {
    let mut c = ClipConfig::vit_base_patch32();
    c.vision.hidden_size = 128;
    c.vision.intermediate_size = 512;
    c.vision.num_hidden_layers = 2;
    c.vision.num_attention_heads = 2;
    c.vision.image_size = 64;
    c.vision.patch_size = 16;
    c.text.hidden_size = 128;
    c.text.intermediate_size = 512;
    c.text.num_hidden_layers = 2;
    c.text.num_attention_heads = 2;
    c.projection_dim = 64;
    c
}

fn model_in(threads: usize, p: Precision) -> ClipModel {
    let opts = LoadOptions::new().threads(threads).precision(p);
    ClipModel::random(&config(), 11, &opts).expect("random model")
}

/// `n` different images, `[3, S, S]` each.
fn images(n: usize) -> Vec<Vec<f32>> {
    let s = config().vision.image_size;
    (0..n)
        .map(|i| {
            (0..3 * s * s)
                .map(|j| ((j * 31 + i * 977) % 255) as f32 / 127.0 - 1.0)
                .collect()
        })
        .collect()
}

/// `n` different texts of different lengths.
fn texts(n: usize) -> Vec<String> {
    let words = [
        "cat",
        "dog",
        "a photo of",
        "red",
        "the",
        "diagram",
        "at night",
    ];
    (0..n)
        .map(|i| {
            (0..=i % 9)
                .map(|j| words[(i + j * 3) % words.len()])
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

fn pixels(imgs: &[Vec<f32>]) -> PixelValues {
    let s = config().vision.image_size;
    PixelValues {
        data: imgs.concat(),
        shape: [imgs.len(), 3, s, s],
    }
}

#[test]
fn eight_threads_sharing_one_model_match_one_thread_in_turn() {
    for p in PRECISIONS {
        eight_threads_in(p);
    }
}

fn eight_threads_in(p: Precision) {
    let m = model_in(2, p);
    let (imgs, txts) = (images(8), texts(8));
    let alone_img: Vec<Vec<f32>> = imgs
        .iter()
        .map(|p| {
            m.embed_pixels(&pixels(std::slice::from_ref(p)))
                .unwrap()
                .into_vec()
        })
        .collect();
    let alone_txt: Vec<Vec<f32>> = txts
        .iter()
        .map(|t| m.embed_texts(&[t], Truncation::Refuse).unwrap().into_vec())
        .collect();
    for round in 0..3 {
        let results: Vec<(Vec<f32>, Vec<f32>)> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|i| {
                    let (m, p, t) = (&m, &imgs[i], &txts[i]);
                    s.spawn(move || {
                        let img = m
                            .embed_pixels(&pixels(std::slice::from_ref(p)))
                            .unwrap()
                            .into_vec();
                        let txt = m.embed_texts(&[t], Truncation::Refuse).unwrap().into_vec();
                        (img, txt)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for (i, (img, txt)) in results.iter().enumerate() {
            assert_eq!(img, &alone_img[i], "{p:?} round {round}: image {i} differs");
            assert_eq!(txt, &alone_txt[i], "{p:?} round {round}: text {i} differs");
        }
    }
    // The inputs are different, so equal results are not trivially equal.
    assert_ne!(alone_img[0], alone_img[1]);
    assert_ne!(alone_txt[0], alone_txt[1]);
}

#[test]
fn embeddings_alone_or_in_batches_of_7_and_32_on_1_or_2_threads() {
    for p in PRECISIONS {
        batches_in(p);
    }
}

fn batches_in(p: Precision) {
    let (imgs, txts) = (images(32), texts(32));
    let m1 = model_in(1, p);
    let reference_img: Vec<Vec<f32>> = imgs
        .iter()
        .map(|p| {
            m1.embed_pixels(&pixels(std::slice::from_ref(p)))
                .unwrap()
                .into_vec()
        })
        .collect();
    let reference_txt: Vec<Vec<f32>> = txts
        .iter()
        .map(|t| m1.embed_texts(&[t], Truncation::Refuse).unwrap().into_vec())
        .collect();
    for threads in [1, 2] {
        let m = model_in(threads, p);
        for batch in [1, 7, 32] {
            for start in (0..32).step_by(batch) {
                let end = (start + batch).min(32);
                let e = m.embed_pixels(&pixels(&imgs[start..end])).unwrap();
                let t = m
                    .embed_texts(&txts[start..end], Truncation::Refuse)
                    .unwrap();
                for i in start..end {
                    assert_eq!(
                        e.row(i - start),
                        &reference_img[i][..],
                        "{p:?} image {i}: batch of {batch} on {threads} thread(s) != alone on 1"
                    );
                    assert_eq!(
                        t.row(i - start),
                        &reference_txt[i][..],
                        "{p:?} text {i}: batch of {batch} on {threads} thread(s) != alone on 1"
                    );
                }
            }
        }
    }
    assert_ne!(reference_img[0], reference_img[31]);
}

/// Without hidden states the last layer runs its output projection and MLP on the pooled
/// rows only; the pooled states and features are bitwise those of the full pass (which
/// hidden states force), for a batch of images and of texts of mixed lengths.
#[test]
fn last_layer_on_pooled_rows_only_matches_full_pass() {
    for p in PRECISIONS {
        pooled_rows_in(p);
    }
}

fn pooled_rows_in(p: Precision) {
    let m = model_in(2, p);
    let imgs = images(5);
    let hidden = ForwardOptions::new().with_hidden_states();
    let full = m.vision_forward(&pixels(&imgs), hidden).unwrap();
    let pruned = m
        .vision_forward(&pixels(&imgs), ForwardOptions::new())
        .unwrap();
    assert!(pruned.hidden_states.is_empty());
    assert_eq!(bits(&full.pooled), bits(&pruned.pooled), "image pooled");
    assert_eq!(
        bits(&full.features),
        bits(&pruned.features),
        "image features"
    );

    let tok = m.tokenizer();
    let ids: Vec<Vec<u32>> = texts(9)
        .iter()
        .map(|t| tok.tokenize_one(t, 0, 77, true).unwrap())
        .collect();
    let seqs: Vec<&[u32]> = ids.iter().map(Vec::as_slice).collect();
    for base in [
        ForwardOptions::new(),
        ForwardOptions::new().with_full_context(),
    ] {
        let full = m.text_forward(&seqs, base.with_hidden_states()).unwrap();
        let pruned = m.text_forward(&seqs, base).unwrap();
        assert_eq!(bits(&full.pooled), bits(&pruned.pooled), "text pooled");
        assert_eq!(
            bits(&full.features),
            bits(&pruned.features),
            "text features"
        );
    }
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}
