//! The checks and the preparation on made-up machines, and the probe on a
//! made-up `/sys` tree.

use super::*;
use crate::config::Config;
use std::path::{Path, PathBuf};

fn config(extra_eal: &str, ports: &str, machine: &str) -> Config {
    let text = format!(
        "[eal]\nfile_prefix = \"m\"\n{extra_eal}\n\
         [dataplane]\nmain_lcore = 0\nworkers = [1, 2]\n\n\
         [control]\nsocket = \"/tmp/m.sock\"\n\n{ports}\n{machine}"
    );
    Config::parse(Path::new("m.toml"), &text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

const PCI_PORTS: &str = "[[port]]\nname = \"client\"\ndevice = \"0000:03:00.0\"\n\
    addresses = [\"192.0.2.1/24\"]\n\n[[port]]\nname = \"servers\"\n\
    device = \"03:00.1\"\naddresses = [\"198.51.100.1/24\"]\n";

const VDEV_PORTS: &str = "[[port]]\nname = \"client\"\n\
    device = \"net_af_packet0,iface=veth-x\"\naddresses = [\"192.0.2.1/24\"]\n";

/// A machine where `PCI_PORTS` with 1 GiB of 2M pages runs.
fn ready() -> Machine {
    Machine {
        hugepages: vec![HugePool {
            size_kb: 2048,
            total: 1024,
            free: 1024,
        }],
        hugetlbfs_mounted: true,
        cpus: (0..4).collect(),
        pci: [
            ("0000:03:00.0".to_string(), Some("vfio-pci".to_string())),
            ("0000:03:00.1".to_string(), Some("vfio-pci".to_string())),
        ]
        .into(),
        iommu_groups: 40,
        vfio_device: true,
        ..Machine::default()
    }
}

fn failures(f: &[Finding]) -> Vec<String> {
    f.iter()
        .filter(|f| f.level == Level::Fail)
        .map(|f| f.to_string())
        .collect()
}

#[test]
fn a_ready_machine_passes_every_check() {
    let cfg = config("memory_mb = 1024", PCI_PORTS, "");
    let f = check(&cfg, &ready());
    assert!(f.iter().all(|f| f.level == Level::Ok), "{f:#?}");
    // main lcore, two workers, two ports, hugepages, the IOMMU.
    assert_eq!(f.len(), 7, "{f:#?}");
    assert!(prepare_commands(&cfg, &ready()).is_empty());
}

#[test]
fn each_shortcoming_is_named_with_what_to_run() {
    let cfg = config(
        "memory_mb = 2048",
        PCI_PORTS,
        "[machine]\nhugepages_mb = 2048\nhugepage_size = \"2M\"\n",
    );
    let mut m = ready();
    m.hugetlbfs_mounted = false;
    m.hugepages[0].free = 100;
    m.cpus = (0..2).collect();
    m.pci.insert("0000:03:00.1".into(), Some("ixgbe".into()));
    m.pci.remove("0000:03:00.0");
    m.iommu_groups = 0;
    m.vfio_device = false;
    let f = failures(&check(&cfg, &m));
    let want = [
        "no hugetlbfs is mounted",
        "200 MiB of 2M hugepages free, 2048 MiB needed",
        "dpdk-hugepages.py -p 2M --reserve 2048M",
        "worker lcore 2 on CPU 2, which this machine does not have (online: 0, 1)",
        "no PCI device 0000:03:00.0",
        "0000:03:00.1 is bound to ixgbe, not to a DPDK driver",
        "dpdk-devbind.py --bind=vfio-pci 0000:03:00.1",
        "modprobe vfio-pci",
        "no IOMMU groups",
    ];
    let all = f.join("\n");
    for w in want {
        assert!(all.contains(w), "missing {w:?} in:\n{all}");
    }
    assert_eq!(f.len(), 7, "{all}");
    let cmds: Vec<String> = prepare_commands(&cfg, &m)
        .iter()
        .map(|c| c.to_string())
        .collect();
    assert_eq!(
        cmds,
        [
            "dpdk-hugepages.py -p 2M --mount --reserve 2048M",
            "modprobe vfio-pci",
            "dpdk-devbind.py --bind=vfio-pci 0000:03:00.1",
        ]
    );
}

#[test]
fn no_huge_vdevs_and_lcore_maps_are_judged_too() {
    let cfg = config("no_huge = true\nlcores = \"0@0,1@1,2@0\"", VDEV_PORTS, "");
    let mut m = ready();
    let f = check(&cfg, &m);
    let warns: Vec<String> = f
        .iter()
        .filter(|f| f.level == Level::Warn)
        .map(|f| f.to_string())
        .collect();
    assert_eq!(warns.len(), 2, "{f:#?}");
    assert!(warns[0].contains("eal.no_huge"), "{warns:?}");
    assert!(
        warns[1].contains("worker lcore 2 shares CPU 0"),
        "{warns:?}"
    );
    assert_eq!(
        failures(&f),
        ["FAIL  port client: net_af_packet0 attaches to interface veth-x, which does not exist\n      fix: create it or name an existing one (ip link show)"]
    );
    m.interfaces.insert("veth-x".into());
    assert!(failures(&check(&cfg, &m)).is_empty());
    // No PCI port: no IOMMU finding, nothing to prepare.
    assert!(!check(&cfg, &m).iter().any(|f| f.what.contains("iommu")));
    assert!(prepare_commands(&cfg, &m).is_empty());
    // An unreadable map is a failure, not a pass.
    let bad = config("no_huge = true\nlcores = \"(0,1@1\"", VDEV_PORTS, "");
    assert!(failures(&check(&bad, &m))[0].contains("cannot read the map"));
}

#[test]
fn hugepages_short_of_memory_mb_fail_and_noiommu_warns() {
    let cfg = config("memory_mb = 4096", PCI_PORTS, "");
    let mut m = ready();
    m.iommu_groups = 0;
    m.vfio_noiommu = true;
    let f = check(&cfg, &m);
    let fails = failures(&f);
    assert_eq!(fails.len(), 1, "{f:#?}");
    assert!(
        fails[0].contains("2048 MiB of hugepages free, 4096 MiB needed"),
        "{fails:?}"
    );
    assert!(f
        .iter()
        .any(|f| f.level == Level::Warn && f.what.contains("no-IOMMU")));
}

/// A scratch directory removed on drop.
struct Tree(PathBuf);

impl Tree {
    fn new(name: &str) -> Tree {
        let p = std::env::temp_dir().join(format!("sluice-machine-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Tree(p)
    }

    fn file(&self, rel: &str, text: &str) {
        let p = self.0.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn the_probe_reads_sys_proc_and_dev() {
    let t = Tree::new("probe");
    let hp = "sys/kernel/mm/hugepages";
    t.file(&format!("{hp}/hugepages-2048kB/nr_hugepages"), "512\n");
    t.file(&format!("{hp}/hugepages-2048kB/free_hugepages"), "500\n");
    t.file(&format!("{hp}/hugepages-1048576kB/nr_hugepages"), "0\n");
    t.file(&format!("{hp}/hugepages-1048576kB/free_hugepages"), "0\n");
    t.file(
        "proc/mounts",
        "proc /proc proc rw 0 0\nnodev /dev/hugepages hugetlbfs rw,pagesize=2M 0 0\n",
    );
    t.file("sys/devices/system/cpu/online", "0-3\n");
    t.file("sys/bus/pci/devices/0000:03:00.0/vendor", "0x8086\n");
    t.file("sys/bus/pci/drivers/vfio-pci/bind", "");
    std::os::unix::fs::symlink(
        t.0.join("sys/bus/pci/drivers/vfio-pci"),
        t.0.join("sys/bus/pci/devices/0000:03:00.0/driver"),
    )
    .unwrap();
    t.file("sys/bus/pci/devices/0000:03:00.1/vendor", "0x8086\n");
    t.file("sys/kernel/iommu_groups/7/type", "DMA\n");
    t.file(
        "sys/module/vfio/parameters/enable_unsafe_noiommu_mode",
        "N\n",
    );
    t.file("dev/vfio/vfio", "");
    let cfg = config("memory_mb = 512", PCI_PORTS, "");
    let m = probe(&t.0, &cfg);
    assert_eq!(
        m.hugepages,
        [
            HugePool {
                size_kb: 2048,
                total: 512,
                free: 500
            },
            HugePool {
                size_kb: 1 << 20,
                total: 0,
                free: 0
            }
        ]
    );
    assert!(m.hugetlbfs_mounted && m.vfio_device && !m.vfio_noiommu);
    assert_eq!(m.cpus, (0..4).collect());
    assert_eq!(m.pci["0000:03:00.0"].as_deref(), Some("vfio-pci"));
    assert_eq!(m.pci["0000:03:00.1"], None);
    assert_eq!(m.iommu_groups, 1);
    let fails = failures(&check(&cfg, &m));
    assert_eq!(fails.len(), 1, "{fails:?}");
    assert!(
        fails[0].contains("03:00.1 is bound to no driver"),
        "{fails:?}"
    );
    // An empty tree: nothing found, nothing invented.
    let empty = Tree::new("empty");
    let m = probe(&empty.0, &cfg);
    assert_eq!(m, Machine::default());
}

#[test]
fn pci_addresses_and_vdev_interfaces() {
    assert_eq!(full_pci_address("03:00.0"), "0000:03:00.0");
    assert_eq!(full_pci_address("0000:3B:00.1"), "0000:3b:00.1");
    assert_eq!(
        vdev_interfaces("net_af_packet0,iface=veth0,qpairs=2"),
        vec!["veth0"]
    );
    assert_eq!(
        vdev_interfaces("net_pcap0,rx_iface=a,tx_iface=b"),
        vec!["a", "b"]
    );
    assert!(vdev_interfaces("net_memif0,role=client,socket=/x").is_empty());
    assert!(vdev_interfaces("net_null0,no-rx=1").is_empty());
}
