//! Scratch (not committed): decodes each file to FILE.rgb.
fn main() {
    for a in std::env::args().skip(1) {
        let img = clip_image::decode_file(std::path::Path::new(&a), &Default::default());
        match img {
            Ok(i) => std::fs::write(format!("{a}.rgb"), &i.data).unwrap(),
            Err(e) => println!("{e}"),
        }
    }
}
