//! Writes every target's seeds into `DIR/<target>/seed-N`, the starting
//! corpus of a fuzz run: `cargo run -p sluice-fuzz --bin fuzz-seeds -- fuzz/corpus`.

fn main() {
    let Some(dir) = std::env::args().nth(1) else {
        eprintln!("usage: fuzz-seeds DIR");
        std::process::exit(2);
    };
    for (name, _) in sluice_fuzz::TARGETS {
        let d = std::path::Path::new(&dir).join(name);
        std::fs::create_dir_all(&d).expect("create the corpus folder");
        for (i, s) in sluice_fuzz::seeds::seeds(name).iter().enumerate() {
            std::fs::write(d.join(format!("seed-{i}")), s).expect("write a seed");
        }
    }
}
