//! `clip demo`: the whole pipeline on a bundled sample image and a few prompts — tokenize,
//! preprocess, encode both towers, print the similarity table and the time of each step.
//! It uses the model found by the usual discovery order, or random weights when none is.

use crate::model_dir::{self, Loaded, ModelArgs};
use crate::similarity::print_matrix;
use clap::Args;
use clip::{ImageInput, Truncation};
use std::time::Instant;

/// A 224 x 224 PNG drawn by `assets/make_sample.py`: a red ball on grass, blue sky, a sun.
const SAMPLE_PNG: &[u8] = include_bytes!("../assets/sample.png");

const PROMPTS: [&str; 4] = [
    "a red ball on green grass",
    "a photo of a cat",
    "a city street at night",
    "a bowl of soup",
];

#[derive(Args)]
#[command(
    after_help = "Examples:\n  clip demo\n  clip demo --model ~/models/clip-vit-base-patch32\n  clip demo --random-weights --threads 2"
)]
pub struct DemoArgs {
    #[command(flatten)]
    model: ModelArgs,
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

pub fn run(a: &DemoArgs) -> Result<(), String> {
    let mut args = a.model.clone();
    if !args.random_weights && model_dir::find(args.model.as_deref())?.is_none() {
        eprintln!(
            "note: no model found, so the demo uses random weights; {}",
            model_dir::not_found_short()
        );
        args.random_weights = true;
    }
    let t = Instant::now();
    let loaded: Loaded = model_dir::load(&args, None)?;
    let t_load = ms(t);
    let model = &loaded.model;
    match &loaded.dir {
        Some(d) => println!("model: {}", d.display()),
        None => println!(
            "model: random weights (ViT-B/32 shapes, seed {}); outputs are meaningless",
            model_dir::RANDOM_SEED
        ),
    }
    println!("threads: {}", model.threads());

    let t = Instant::now();
    let ids = model
        .tokenize(&PROMPTS, Truncation::Refuse)
        .map_err(|e| e.to_string())?;
    let t_tok = ms(t);
    println!("\nprompts and their tokens (SOT ... EOT):");
    for (p, row) in PROMPTS.iter().zip(&ids) {
        let eot = model.tokenizer().eot();
        let n = row
            .iter()
            .position(|&i| i == eot)
            .map_or(row.len(), |i| i + 1);
        println!("  {p:<28} {:?}", &row[..n]);
    }

    let t = Instant::now();
    let input = ImageInput::Bytes {
        bytes: SAMPLE_PNG,
        name: "sample.png",
    };
    let pv = model
        .preprocess(std::slice::from_ref(&input))
        .map_err(|e| e.to_string())?;
    let t_pre = ms(t);
    println!(
        "\nimage: the bundled sample.png (224x224) -> pixels {:?}",
        pv.shape
    );

    let t = Instant::now();
    let image = model.embed_pixels(&pv).map_err(|e| e.to_string())?;
    let t_img = ms(t);
    let t = Instant::now();
    let seqs: Vec<&[u32]> = ids.iter().map(Vec::as_slice).collect();
    let texts = model.embed_token_ids(&seqs).map_err(|e| e.to_string())?;
    let t_txt = ms(t);

    let sim = model
        .similarity(&image, &texts)
        .map_err(|e| e.to_string())?;
    let (cos, probs) = (sim.cosine(), sim.probs());
    let rows: Vec<String> = PROMPTS.iter().map(|p| p.to_string()).collect();
    let table: Vec<f32> = cos.iter().zip(&probs).flat_map(|(&c, &p)| [c, p]).collect();
    println!("\nsample.png against each prompt:");
    print_matrix(&rows, &["cosine".into(), "probability".into()], &table, 4);
    if loaded.random() {
        println!("(random weights: these numbers are meaningless)");
    }

    println!("\ntimings (ms):");
    if loaded.random() {
        println!("  make model        {t_load:>9.1}  (generate and pack random weights)");
    } else {
        println!("  load model        {t_load:>9.1}  (map and pack the weights)");
    }
    println!(
        "  tokenize          {t_tok:>9.1}  ({} prompts)",
        PROMPTS.len()
    );
    println!("  preprocess        {t_pre:>9.1}  (1 image)");
    println!("  image encode      {t_img:>9.1}  (1 image)");
    println!(
        "  text encode       {t_txt:>9.1}  ({} prompts)",
        PROMPTS.len()
    );
    Ok(())
}
