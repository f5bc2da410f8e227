//! Build script of `dpdk-sys`: finds the system's DPDK with pkg-config,
//! generates Rust bindings with bindgen and compiles the C shim in
//! `vendor/dpdk-sys/`. DPDK is linked as shared libraries so that the EAL
//! loads every driver plugin (net_af_packet, net_pcap, ...) by itself.

use std::env;
use std::path::PathBuf;

const MIN_VERSION: &str = "22.11";
const MAX_VERSION_EXCLUSIVE: &str = "22.12";

fn fail(msg: &str) -> ! {
    eprintln!("\n\nerror: {msg}\n");
    panic!("{msg}");
}

fn main() {
    println!("cargo:rerun-if-changed=vendor/dpdk-sys/shim.h");
    println!("cargo:rerun-if-changed=vendor/dpdk-sys/shim.c");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");

    let dpdk = pkg_config::Config::new()
        .atleast_version(MIN_VERSION)
        .range_version(MIN_VERSION..MAX_VERSION_EXCLUSIVE)
        .cargo_metadata(true)
        .probe("libdpdk")
        .unwrap_or_else(|e| {
            fail(&format!(
                "Sluice needs DPDK 22.11 (found through pkg-config as `libdpdk`), \
                 and pkg-config said: {e}\n\
                 On Debian 12 install it with:  apt-get install libdpdk-dev pkg-config libclang-dev\n\
                 (or run scripts/test.sh, which installs what is missing)"
            ))
        });

    let mut cc = cc::Build::new();
    cc.file("vendor/dpdk-sys/shim.c")
        .warnings(false)
        .opt_level(3);
    for p in &dpdk.include_paths {
        cc.include(p);
    }
    // DPDK's cflags carry `-include rte_config.h -march=...`; keep them.
    let mut clang_args: Vec<String> = Vec::new();
    for p in &dpdk.include_paths {
        clang_args.push(format!("-I{}", p.display()));
    }
    let cflags = std::process::Command::new("pkg-config")
        .args(["--cflags-only-other", "libdpdk"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
        .unwrap_or_default();
    let mut words = cflags.split_whitespace();
    while let Some(w) = words.next() {
        if w == "-include" {
            if let Some(f) = words.next() {
                cc.flag("-include").flag(f);
                clang_args.push("-include".into());
                clang_args.push(f.into());
            }
        } else if w.starts_with("-march") || w.starts_with("-m") {
            cc.flag(w);
            clang_args.push(w.to_string());
        }
    }
    cc.compile("sluice_dpdk_shim");

    let bindings = bindgen::Builder::default()
        .header("vendor/dpdk-sys/shim.h")
        .clang_args(&clang_args)
        // Only the API Sluice uses: keeps the bindings small and away from
        // packed-and-aligned protocol headers that Rust cannot express.
        .allowlist_function("sluice_.*")
        .allowlist_function("rte_eal_.*")
        .allowlist_function("rte_eth_(dev|rx|tx|stats|xstats|macaddr|link|promiscuous|allmulticast|iterator)_.*")
        .allowlist_function("rte_eth_(find_next|find_next_owned_by|link_speed_to_str|link_to_str)")
        .allowlist_function("rte_pktmbuf_(pool_create|free_bulk)")
        .allowlist_function("rte_mempool_(avail_count|in_use_count|free|lookup)")
        .allowlist_function("rte_(lcore|socket|get_main_lcore|get_next_lcore|lcore_count|lcore_has_role|lcore_to_socket_id|lcore_is_enabled).*")
        .allowlist_function("rte_(version|strerror|exit|dev_probe|dev_remove)")
        .allowlist_function("rte_telemetry_.*|rte_tel_data_.*")
        .allowlist_function("rte_pdump_(init|uninit)")
        .allowlist_function("rte_vdev_(init|uninit)")
        .allowlist_var("RTE_(MAX_ETHPORTS|MAX_LCORE|ETHER_ADDR_LEN|ETH_NAME_MAX_LEN|PKTMBUF_HEADROOM|MBUF_DEFAULT_BUF_SIZE|ETH_XSTATS_NAME_SIZE|ETH_RSS_.*|ETH_LINK_.*|ETH_MQ_.*|ETH_RX_OFFLOAD_.*|ETH_TX_OFFLOAD_.*|MBUF_F_.*|TEL_.*|ETHDEV_QUEUE_STAT_CNTRS)")
        .opaque_type("rte_flow.*")
        .opaque_type("rte_l2tpv2.*")
        .opaque_type("rte_gtp.*")
        .derive_debug(false)
        .derive_default(true)
        .layout_tests(false)
        .generate_comments(false)
        .prepend_enum_name(false)
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()))
        .generate()
        .unwrap_or_else(|e| {
            fail(&format!(
                "bindgen could not read DPDK's headers ({e}). It needs libclang: \
                 apt-get install libclang-dev"
            ))
        });
    let out = PathBuf::from(env::var("OUT_DIR").unwrap());
    bindings
        .write_to_file(out.join("bindings.rs"))
        .expect("write bindings.rs");
}
