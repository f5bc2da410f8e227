//! Golden-packet tests through net_pcap: a pcap file of crafted frames goes
//! in, the appliance's transmissions come out in another pcap file, and
//! they must be exactly the expected bytes; every other frame must be
//! counted as a drop under the right reason.

mod common;

use common::*;
use std::path::Path;
use std::time::Duration;

const OUR_IP: [u8; 4] = [192, 0, 2, 1];
const HOST_IP: [u8; 4] = [192, 0, 2, 10];
const OTHER_IP: [u8; 4] = [192, 0, 2, 99];
const HOST_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x0a];

/// The checksum of `data` as stored, from sluice-core's test oracle
/// (written independently of its checksum code).
fn csum(data: &[u8]) -> [u8; 2] {
    sluice_core::testing::inet_checksum(&[data]).to_be_bytes()
}

fn eth(dst: [u8; 6], src: [u8; 6], ethertype: u16) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f
}

fn arp(op: u16, sha: [u8; 6], spa: [u8; 4], tha: [u8; 6], tpa: [u8; 4]) -> Vec<u8> {
    let mut p = vec![0, 1, 8, 0, 6, 4];
    p.extend_from_slice(&op.to_be_bytes());
    p.extend_from_slice(&sha);
    p.extend_from_slice(&spa);
    p.extend_from_slice(&tha);
    p.extend_from_slice(&tpa);
    p
}

fn ipv4(src: [u8; 4], dst: [u8; 4], ttl: u8, proto: u8, payload: &[u8]) -> Vec<u8> {
    let len = (20 + payload.len()) as u16;
    let mut h = vec![0x45, 0];
    h.extend_from_slice(&len.to_be_bytes());
    h.extend_from_slice(&[0x12, 0x34, 0x40, 0x00, ttl, proto, 0, 0]);
    h.extend_from_slice(&src);
    h.extend_from_slice(&dst);
    let c = csum(&h);
    h[10] = c[0];
    h[11] = c[1];
    h.extend_from_slice(payload);
    h
}

fn icmp(ty: u8, id_seq: [u8; 4], data: &[u8]) -> Vec<u8> {
    let mut m = vec![ty, 0, 0, 0];
    m.extend_from_slice(&id_seq);
    m.extend_from_slice(data);
    let c = csum(&m);
    m[2] = c[0];
    m[3] = c[1];
    m
}

#[test]
fn arp_and_echo_golden_packets() {
    if !require_root() {
        return;
    }
    let dir = TempDir::new();
    let inp = dir.path().join("in.pcap");
    let out = dir.path().join("out.pcap");
    let mut frames = good_frames();
    frames.extend(bad_frames());
    pcap::write(&inp, &frames);
    let (stats, mac) = run_pcap(&inp, &out, frames.len() as u64);
    assert_eq!(
        mac, PORT_MAC,
        "the pcap device's MAC the frames were built for"
    );
    for (reason, count) in [
        ("arp_not_for_us", 1),
        ("not_for_us", 1),
        ("bad_ipv4_checksum", 1),
        ("unsupported_ethertype", 1),
        ("truncated", 1),
        ("bad_icmp", 1),
        ("unsupported_protocol", 1),
        ("ipv4_fragment", 1),
        ("not_our_mac", 2),
        ("martian_source", 1),
    ] {
        assert_eq!(drops(&stats, reason), count, "{reason}: {stats:#}");
    }
    assert_eq!(workers_sum(&stats, "/arp_requests_answered"), 1);
    assert_eq!(workers_sum(&stats, "/icmp_echo_answered"), 1);

    let (arp_reply, echo_reply) = expected_replies(mac);
    let sent = pcap::read(&out);
    assert_eq!(
        sent.len(),
        2,
        "expected exactly two frames out, got {}",
        sent.len()
    );
    assert_eq!(sent[0], arp_reply, "ARP reply differs");
    assert_eq!(sent[1], echo_reply, "echo reply differs");
}

/// The pcap PMD has no MAC of its own; it makes one up, 02:70:63:61:70
/// ("pcap") and the device's index, 0 for the first. The test checks the
/// daemon reports it. ARP requests are broadcast; IPv4 goes to that MAC.
const PORT_MAC: [u8; 6] = [0x02, 0x70, 0x63, 0x61, 0x70, 0x00];
const BROADCAST: [u8; 6] = [0xff; 6];
const PAYLOAD: &[u8] = b"golden ping payload 0123456789";

/// Frames 1 to 4: an ARP request and an echo request for our address (each
/// answered) and for another (each dropped).
fn good_frames() -> Vec<Vec<u8>> {
    let (bcast, payload) = (BROADCAST, PAYLOAD);
    let mut frames = Vec::new();
    // 1: ARP request for our address -> reply.
    let mut f = eth(bcast, HOST_MAC, 0x0806);
    f.extend(arp(1, HOST_MAC, HOST_IP, [0; 6], OUR_IP));
    frames.push(f);
    // 2: ARP request for another address -> drop arp_not_for_us.
    let mut f = eth(bcast, HOST_MAC, 0x0806);
    f.extend(arp(1, HOST_MAC, HOST_IP, [0; 6], OTHER_IP));
    frames.push(f);
    // 3: echo request to us -> echo reply.
    let mut f = eth(PORT_MAC, HOST_MAC, 0x0800);
    f.extend(ipv4(
        HOST_IP,
        OUR_IP,
        63,
        1,
        &icmp(8, [0xbe, 0xef, 0, 1], payload),
    ));
    frames.push(f);
    // 4: echo request to another address -> drop not_for_us.
    let mut f = eth(PORT_MAC, HOST_MAC, 0x0800);
    f.extend(ipv4(
        HOST_IP,
        OTHER_IP,
        63,
        1,
        &icmp(8, [0xbe, 0xef, 0, 2], payload),
    ));
    frames.push(f);
    frames
}

/// Frames 5 to 13: each dropped for its own reason.
fn bad_frames() -> Vec<Vec<u8>> {
    let (bcast, payload) = (BROADCAST, PAYLOAD);
    let mut frames = Vec::new();
    // 5: bad IPv4 header checksum -> drop bad_ipv4_checksum.
    let mut f = eth(PORT_MAC, HOST_MAC, 0x0800);
    let mut ip = ipv4(
        HOST_IP,
        OUR_IP,
        63,
        1,
        &icmp(8, [0xbe, 0xef, 0, 3], payload),
    );
    ip[10] ^= 0x55;
    f.extend(ip);
    frames.push(f);
    // 6: LLDP -> drop unsupported_ethertype.
    let mut f = eth(PORT_MAC, HOST_MAC, 0x88cc);
    f.extend([0x02, 0x07, 0x04, 0, 0, 0, 0, 0, 1]);
    f.extend([0u8; 31]);
    frames.push(f);
    // 7: truncated IPv4 -> drop truncated.
    let mut f = eth(PORT_MAC, HOST_MAC, 0x0800);
    f.extend([0x45, 0, 0]);
    frames.push(f);
    // 8: bad ICMP checksum -> drop bad_icmp.
    let mut f = eth(PORT_MAC, HOST_MAC, 0x0800);
    let mut m = icmp(8, [0xbe, 0xef, 0, 4], payload);
    m[2] ^= 0xff;
    f.extend(ipv4(HOST_IP, OUR_IP, 63, 1, &m));
    frames.push(f);
    // 9: UDP to us -> drop unsupported_protocol.
    let mut f = eth(PORT_MAC, HOST_MAC, 0x0800);
    f.extend(ipv4(HOST_IP, OUR_IP, 63, 17, &[0, 53, 0, 53, 0, 8, 0, 0]));
    frames.push(f);
    // 10: fragment -> drop ipv4_fragment.
    let mut f = eth(PORT_MAC, HOST_MAC, 0x0800);
    let mut ip = ipv4(
        HOST_IP,
        OUR_IP,
        63,
        1,
        &icmp(8, [0xbe, 0xef, 0, 5], payload),
    );
    ip[6] = 0x20; // MF
    ip[10] = 0;
    ip[11] = 0;
    let c = csum(&ip[..20]);
    ip[10] = c[0];
    ip[11] = c[1];
    f.extend(ip);
    frames.push(f);
    // 11, 12: an echo request to us in a broadcast frame, and in a frame
    // for another host -> drop not_our_mac (twice).
    for dst in [bcast, [0x02, 0, 0, 0, 0, 0x0b]] {
        let mut f = eth(dst, HOST_MAC, 0x0800);
        f.extend(ipv4(
            HOST_IP,
            OUR_IP,
            63,
            1,
            &icmp(8, [0xbe, 0xef, 0, 6], payload),
        ));
        frames.push(f);
    }
    // 13: an echo request "from" loopback -> drop martian_source.
    let mut f = eth(PORT_MAC, HOST_MAC, 0x0800);
    f.extend(ipv4(
        [127, 0, 0, 1],
        OUR_IP,
        63,
        1,
        &icmp(8, [0xbe, 0xef, 0, 7], payload),
    ));
    frames.push(f);
    frames
}

/// Runs the daemon on a pcap port reading `inp` and writing `out` until it
/// has received `n` frames; returns its statistics and its port's MAC.
fn run_pcap(inp: &Path, out: &Path, n: u64) -> (serde_json::Value, [u8; 6]) {
    let pcap_port = format!(
        "net_pcap0,rx_pcap={},tx_pcap={}",
        inp.display(),
        out.display()
    );
    let cfg = TestConfig::new()
        .small_rings()
        .idle_sleep_us(500)
        .port("pcap", &pcap_port, &["192.0.2.1/24"])
        .render();
    let d = Daemon::start(None, &cfg);
    let stats = wait_for(Duration::from_secs(30), || {
        let s = d.ctl_json(&["stats"]);
        (num(&s, "/result/ports/0/traffic/rx_packets") >= n).then_some(s)
    })
    .expect("the daemon did not receive every frame of the pcap");
    let mac: [u8; 6] = {
        let st = d.ctl_json(&["status"]);
        let m = st["result"]["ports"][0]["mac"]
            .as_str()
            .unwrap()
            .to_string();
        let v: Vec<u8> = m
            .split(':')
            .map(|b| u8::from_str_radix(b, 16).unwrap())
            .collect();
        v.try_into().unwrap()
    };
    let exit = d.stop();
    assert_eq!(exit.code, Some(0), "{}", exit.log);
    (stats, mac)
}

/// The ARP reply and the echo reply, byte for byte, from `mac`.
fn expected_replies(mac: [u8; 6]) -> (Vec<u8>, Vec<u8>) {
    let payload = PAYLOAD;
    let mut arp_reply = eth(HOST_MAC, mac, 0x0806);
    arp_reply.extend(arp(2, mac, OUR_IP, HOST_MAC, HOST_IP));
    let mut echo_reply = eth(HOST_MAC, mac, 0x0800);
    let mut ip = ipv4(
        OUR_IP,
        HOST_IP,
        64,
        1,
        &icmp(0, [0xbe, 0xef, 0, 1], payload),
    );
    // The reply keeps the request's identification and flags.
    assert_eq!(&ip[4..8], &[0x12, 0x34, 0x40, 0x00]);
    ip[10] = 0;
    ip[11] = 0;
    let c = csum(&ip[..20]);
    ip[10] = c[0];
    ip[11] = c[1];
    echo_reply.extend(ip);

    (arp_reply, echo_reply)
}
