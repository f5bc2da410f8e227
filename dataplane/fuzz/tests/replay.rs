//! Replays every target's seeds, its committed corpus
//! (`fuzz/corpus/<target>/`, minimised by `cargo fuzz cmin`) and the inputs
//! of past findings (`fuzz/regressions/<target>/`, kept by name: `cmin`
//! never touches them): each must still pass every invariant.

use std::path::PathBuf;

fn corpus(kind: &str, target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz")
        .join(kind)
        .join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut files: Vec<_> = entries.filter_map(|e| e.ok()).map(|e| e.path()).collect();
    files.sort();
    files
        .into_iter()
        .map(|p| (p.display().to_string(), std::fs::read(&p).unwrap()))
        .collect()
}

#[test]
fn every_seed_and_corpus_input_passes() {
    let mut counts = Vec::new();
    for (name, run) in sluice_fuzz::TARGETS {
        let seeds = sluice_fuzz::seeds::seeds(name);
        assert!(!seeds.is_empty(), "{name} has no seeds");
        for s in &seeds {
            run(s);
        }
        let mut files = corpus("corpus", name);
        files.extend(corpus("regressions", name));
        for (path, data) in &files {
            let r = std::panic::catch_unwind(|| run(data));
            assert!(r.is_ok(), "{name}: {path} breaks an invariant");
        }
        counts.push(format!(
            "{name}: {} seeds, {} corpus and regression inputs",
            seeds.len(),
            files.len()
        ));
    }
    println!("{}", counts.join("\n"));
}

#[test]
fn the_forwarder_seeds_reach_every_outcome() {
    let mut total = sluice_fuzz::forwarder::Summary::default();
    for s in sluice_fuzz::seeds::seeds("forwarder") {
        let r = sluice_fuzz::forwarder::run(&s);
        total.forwarded += r.forwarded;
        total.held += r.held;
        total.replied += r.replied;
        total.handed_off += r.handed_off;
        total.to_kernel += r.to_kernel;
        total.consumed += r.consumed;
        total.parked += r.parked;
        total.dropped += r.dropped;
        total.tunnelled += r.tunnelled;
        total.icmp_errors += r.icmp_errors;
        total.fragments_held += r.fragments_held;
        total.tunnel_tails += r.tunnel_tails;
        total.proxy_headers += r.proxy_headers;
    }
    println!("{total:?}");
    assert!(total.forwarded >= 20, "{total:?}");
    for (what, n) in [
        ("held", total.held),
        ("replied", total.replied),
        ("handed off", total.handed_off),
        ("to the kernel", total.to_kernel),
        ("consumed", total.consumed),
        ("parked", total.parked),
        ("dropped", total.dropped),
        ("tunnelled", total.tunnelled),
        ("with an ICMP error", total.icmp_errors),
        ("held for its first fragment", total.fragments_held),
        ("in two outer fragments", total.tunnel_tails),
        ("grown by a PROXY protocol header", total.proxy_headers),
    ] {
        assert!(n > 0, "no seed ends {what}: {total:?}");
    }
}
