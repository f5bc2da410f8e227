//! The house's layering, checked: which workspace crate may depend on
//! which (from `cargo metadata`), what `sluicectl` may link, and no import
//! circle between the top-level modules of any crate.
//!
//! A new dependency between our crates is a decision: it is made here, in
//! [`ALLOWED`], and in docs/design.md's map, or this test fails.

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Every workspace crate and the workspace crates it may use (normal
/// dependencies; tests may use more).
const ALLOWED: &[(&str, &[&str])] = &[
    ("dpdk-sys", &[]),
    ("sluice-model", &[]),
    ("sluice-core", &["sluice-model"]),
    ("sluice-sched", &["sluice-model"]),
    ("sluice-mem", &[]),
    ("sluice-conntrack", &["sluice-model", "sluice-mem"]),
    ("sluice-health", &["sluice-model"]),
    ("sluice-sync", &["sluice-model"]),
    (
        "sluice-lb",
        &[
            "sluice-model",
            "sluice-core",
            "sluice-sched",
            "sluice-conntrack",
            "sluice-sync",
        ],
    ),
    ("sluice-dpdk", &["dpdk-sys", "sluice-model"]),
    ("sluice-proto", &["sluice-model"]),
    ("sluicectl", &["sluice-proto"]),
    (
        "sluice",
        &[
            "sluice-core",
            "sluice-conntrack",
            "sluice-lb",
            "sluice-health",
            "sluice-sync",
            "sluice-dpdk",
            "sluice-proto",
        ],
    ),
    ("sluice-gen", &["sluice-core", "sluice-dpdk"]),
    // The fuzz targets reach into every layer that reads bytes.
    (
        "sluice-fuzz",
        &[
            "sluice-core",
            "sluice-conntrack",
            "sluice-lb",
            "sluice-model",
            "sluice-health",
            "sluice-proto",
            "sluice",
        ],
    ),
];

/// What `sluicectl` must never link, even through another crate: the
/// dataplane, the health checker and DPDK.
const NOT_IN_SLUICECTL: &[&str] = &[
    "sluice-health",
    "sluice-lb",
    "sluice-dpdk",
    "dpdk-sys",
    "sluice",
];

/// The workspace's packages: name, directory, and the workspace crates
/// among its normal dependencies.
fn workspace() -> Vec<(String, PathBuf, BTreeSet<String>)> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let o = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let m: Value = serde_json::from_slice(&o.stdout).unwrap();
    let packages = m["packages"].as_array().unwrap();
    let names: BTreeSet<String> = packages
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect();
    packages
        .iter()
        .map(|p| {
            let deps = p["dependencies"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|d| d["kind"].is_null())
                .map(|d| d["name"].as_str().unwrap().to_string())
                .filter(|d| names.contains(d))
                .collect();
            let manifest = PathBuf::from(p["manifest_path"].as_str().unwrap());
            let dir = manifest.parent().unwrap().to_path_buf();
            (p["name"].as_str().unwrap().to_string(), dir, deps)
        })
        .collect()
}

#[test]
fn crates_depend_only_as_the_map_allows() {
    let ws = workspace();
    let allowed: BTreeMap<&str, BTreeSet<String>> = ALLOWED
        .iter()
        .map(|(n, d)| (*n, d.iter().map(|s| s.to_string()).collect()))
        .collect();
    for (name, _, deps) in &ws {
        let Some(ok) = allowed.get(name.as_str()) else {
            panic!("crate {name} is not in the layering map (ALLOWED)");
        };
        assert_eq!(deps, ok, "{name}'s workspace dependencies");
    }
    assert_eq!(ws.len(), ALLOWED.len(), "a crate of the map is gone");
}

#[test]
fn sluicectl_links_neither_the_dataplane_nor_dpdk() {
    let ws = workspace();
    let deps: BTreeMap<&str, &BTreeSet<String>> =
        ws.iter().map(|(n, _, d)| (n.as_str(), d)).collect();
    let mut seen = BTreeSet::new();
    let mut todo = vec!["sluicectl".to_string()];
    while let Some(c) = todo.pop() {
        for d in deps[c.as_str()].iter() {
            if seen.insert(d.clone()) {
                todo.push(d.clone());
            }
        }
    }
    for bad in NOT_IN_SLUICECTL {
        assert!(!seen.contains(*bad), "sluicectl links {bad}: {seen:?}");
    }
}

/// The Rust files under `dir`, recursively.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The top-level module a file of `src` belongs to (`None` for the crate
/// root), and whether its `super::` is the crate root.
fn top_module(src: &Path, file: &Path) -> Option<(String, bool)> {
    let rel = file.strip_prefix(src).ok()?;
    let parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    match parts.as_slice() {
        [f] if f == "lib.rs" || f == "main.rs" => None,
        [f] => Some((f.trim_end_matches(".rs").to_string(), true)),
        [d, f] => Some((d.clone(), f == "mod.rs")),
        [d, ..] => Some((d.clone(), false)),
        [] => None,
    }
}

/// The modules `text` names after `prefix` (`crate::x`, `super::x`).
fn named_after(text: &str, prefix: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find(prefix) {
        let before = rest[..i].chars().last();
        rest = &rest[i + prefix.len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        let name: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() {
            out.insert(name);
        }
        if rest.starts_with('{') {
            let group = &rest[1..rest.find('}').unwrap_or(rest.len() - 1)];
            out.extend(
                group
                    .split(',')
                    .map(|g| g.trim().split("::").next().unwrap_or_default().to_string()),
            );
        }
    }
    out
}

/// Which top-level module of the crate at `dir` uses which, test modules
/// left out (a test may look anywhere).
fn module_graph(dir: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let src = dir.join("src");
    let mut files = Vec::new();
    if src.is_dir() {
        rust_files(&src, &mut files);
    }
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in files {
        let Some((module, super_is_root)) = top_module(&src, &f) else {
            continue;
        };
        let text = std::fs::read_to_string(&f).unwrap();
        let code = match text.find("#[cfg(test)]\nmod tests") {
            Some(i) => &text[..i],
            None => &text[..],
        };
        // Comments may name any module (doc links); only code counts.
        let text: String = code
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        let mut uses = named_after(&text, "crate::");
        if super_is_root {
            uses.extend(named_after(&text, "super::"));
        }
        uses.remove(&module);
        graph.entry(module).or_default().extend(uses);
    }
    let modules: BTreeSet<String> = graph.keys().cloned().collect();
    for uses in graph.values_mut() {
        uses.retain(|u| modules.contains(u));
    }
    graph
}

/// A circle in `graph`, if there is one.
fn circle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        g: &BTreeMap<String, BTreeSet<String>>,
        m: &str,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|p| p == m) {
            let mut c = path[i..].to_vec();
            c.push(m.to_string());
            return Some(c);
        }
        if done.contains(m) {
            return None;
        }
        path.push(m.to_string());
        for n in g.get(m).into_iter().flatten() {
            if let Some(c) = visit(g, n, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(m.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|m| visit(graph, m, &mut Vec::new(), &mut done))
}

#[test]
fn no_crate_has_an_import_circle_between_its_modules() {
    for (name, dir, _) in workspace() {
        let graph = module_graph(&dir);
        if let Some(c) = circle(&graph) {
            panic!("{name}: modules import each other: {}", c.join(" -> "));
        }
    }
}

#[test]
fn the_circle_finder_finds_circles() {
    let g = |edges: &[(&str, &str)]| {
        let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (a, b) in edges {
            g.entry(a.to_string()).or_default().insert(b.to_string());
            g.entry(b.to_string()).or_default();
        }
        g
    };
    assert_eq!(circle(&g(&[("a", "b"), ("b", "c"), ("a", "c")])), None);
    let c = circle(&g(&[("a", "b"), ("b", "c"), ("c", "a")])).unwrap();
    assert_eq!(c.first(), c.last());
    assert_eq!(c.len(), 4);
    let uses = named_after(
        "use crate::{alpha::X, beta};\nlet y = crate::gamma::f();",
        "crate::",
    );
    let want: BTreeSet<String> = ["alpha", "beta", "gamma"].map(String::from).into();
    assert_eq!(uses, want);
    assert!(named_after("my_crate::x", "crate::").is_empty());
}
