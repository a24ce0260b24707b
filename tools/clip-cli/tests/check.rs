//! `clip check`: the configuration as understood, a probe fingerprint that depends on the
//! model and not on the thread count, and a per-layer comparison with open_clip's outputs that
//! names the first layer and part beyond the bound (here: the MLP of layer 1, when the
//! activation is wrong).

mod common;

use common::{fails, ok, root, s, scratch};

fn fingerprint(out: &str) -> String {
    out.lines()
        .find(|l| l.trim_start().starts_with("fingerprint"))
        .unwrap()
        .to_string()
}

#[test]
fn check_describes_fingerprints_and_locates_the_first_difference() {
    let d = scratch("check");
    let src = root().join("tests/fixtures/open_clip-tiny-ls");
    let probe = src.join("probe.npz");
    let out = ok(
        &d,
        &["check", s(&src), "--reference", s(&probe), "--threads", "1"],
    );
    for want in [
        "format: open_clip",
        "GELU (erf)",
        "layer scale yes",
        "heads of 20",
        "MLP 196",
        "Torchvision rounding",
        "all 12 outputs within the bound",
    ] {
        assert!(out.contains(want), "{want}: {out}");
    }
    let two = ok(&d, &["check", s(&src), "--threads", "2"]);
    assert_eq!(
        fingerprint(&out),
        fingerprint(&two),
        "fingerprint depends on threads"
    );
    let other = ok(
        &d,
        &[
            "check",
            s(&root().join("tests/fixtures/open_clip-tiny-quickgelu")),
        ],
    );
    assert_ne!(fingerprint(&out), fingerprint(&other));

    // The same weights declared QuickGELU: attention of layer 1 still matches, its MLP not.
    let wrong = d.join("wrong-activation");
    std::fs::create_dir_all(&wrong).unwrap();
    std::fs::copy(
        src.join("open_clip_model.safetensors"),
        wrong.join("open_clip_model.safetensors"),
    )
    .unwrap();
    let cfg = std::fs::read_to_string(src.join("open_clip_config.json")).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&cfg).unwrap();
    v["model_cfg"]["quick_gelu"] = true.into();
    std::fs::write(wrong.join("open_clip_config.json"), v.to_string()).unwrap();
    let e = fails(&d, &["check", s(&wrong), "--reference", s(&probe)]);
    assert!(
        e.contains("vision.hidden_states.1") && e.contains("vision layer 1 MLP"),
        "{e}"
    );
}
