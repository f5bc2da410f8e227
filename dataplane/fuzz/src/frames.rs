//! Frames the forwarder target starts from, and the checksum repairs that
//! let a mutated frame past the parser's checks (a fuzzer rarely guesses a
//! valid checksum). Checksums come from `sluice_core::testing`, written
//! independently of the code under test.

use crate::lab::{host_mac, PORT_MACS, VIPS};
use sluice_core::testing::{icmp_checksum, ipv4_header_checksum, l4_checksum};
use std::net::Ipv4Addr;

const CLIENT: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
const REMOTE: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 7);
const REAL1: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 11);

fn ether(dst: [u8; 6], src: [u8; 6], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + payload.len());
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

fn ipv4(proto: u8, src: Ipv4Addr, dst: Ipv4Addr, payload: &[u8]) -> Vec<u8> {
    let mut ip = vec![0x45, 0, 0, 0, 0x12, 0x34, 0x40, 0, 64, proto, 0, 0];
    ip[2..4].copy_from_slice(&((20 + payload.len()) as u16).to_be_bytes());
    ip.extend_from_slice(&src.octets());
    ip.extend_from_slice(&dst.octets());
    ip.extend_from_slice(payload);
    ip
}

fn tcp(sport: u16, dport: u16, flags: u8) -> Vec<u8> {
    let mut t = Vec::new();
    t.extend_from_slice(&sport.to_be_bytes());
    t.extend_from_slice(&dport.to_be_bytes());
    t.extend_from_slice(&0x1000_0000u32.to_be_bytes());
    t.extend_from_slice(&0u32.to_be_bytes());
    t.push(0x60);
    t.push(flags);
    t.extend_from_slice(&[0xfa, 0xf0, 0, 0, 0, 0, 2, 4, 5, 0xb4]);
    t
}

fn udp(sport: u16, dport: u16, data: &[u8]) -> Vec<u8> {
    let mut u = Vec::new();
    u.extend_from_slice(&sport.to_be_bytes());
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&((8 + data.len()) as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(data);
    u
}

fn to_port(port: usize, from: Ipv4Addr, ethertype: u16, payload: &[u8]) -> Vec<u8> {
    ether(PORT_MACS[port].0, host_mac(from).0, ethertype, payload)
}

fn icmp(ty: u8, code: u8, quoted: &[u8]) -> Vec<u8> {
    let mut m = vec![ty, code, 0, 0, 0, 0, 0x05, 0xdc];
    m.extend_from_slice(&quoted[..quoted.len().min(28)]);
    m
}

fn arp(op: u16, sender: Ipv4Addr, target: Ipv4Addr) -> Vec<u8> {
    let mut a = vec![0, 1, 8, 0, 6, 4];
    a.extend_from_slice(&op.to_be_bytes());
    a.extend_from_slice(&host_mac(sender).0);
    a.extend_from_slice(&sender.octets());
    a.extend_from_slice(&[0; 6]);
    a.extend_from_slice(&target.octets());
    a
}

/// The starting frames, each with the port it arrives on.
pub fn templates() -> Vec<(usize, Vec<u8>)> {
    let v = |i: usize| VIPS[i];
    let mut t = vec![
        // Client to each TCP service: SYN, then ACK with data.
        (
            0,
            to_port(
                0,
                CLIENT,
                0x0800,
                &ipv4(6, CLIENT, v(0), &tcp(40000, 80, 0x02)),
            ),
        ),
        (
            0,
            to_port(
                0,
                CLIENT,
                0x0800,
                &ipv4(6, CLIENT, v(0), &tcp(40000, 80, 0x18)),
            ),
        ),
        (
            0,
            to_port(
                0,
                CLIENT,
                0x0800,
                &ipv4(6, CLIENT, v(0), &tcp(40001, 443, 0x02)),
            ),
        ),
        (
            0,
            to_port(
                0,
                CLIENT,
                0x0800,
                &ipv4(6, CLIENT, v(1), &tcp(40002, 80, 0x02)),
            ),
        ),
        (
            0,
            to_port(
                0,
                CLIENT,
                0x0800,
                &ipv4(6, CLIENT, v(1), &tcp(40003, 81, 0x02)),
            ),
        ),
        (
            0,
            to_port(
                0,
                CLIENT,
                0x0800,
                &ipv4(6, CLIENT, v(2), &tcp(40004, 80, 0x02)),
            ),
        ),
        (
            0,
            to_port(
                0,
                CLIENT,
                0x0800,
                &ipv4(6, CLIENT, v(2), &tcp(40005, 81, 0x02)),
            ),
        ),
        (
            0,
            to_port(
                0,
                CLIENT,
                0x0800,
                &ipv4(6, REMOTE, v(2), &tcp(40006, 82, 0x02)),
            ),
        ),
        // UDP services.
        (
            0,
            to_port(
                0,
                CLIENT,
                0x0800,
                &ipv4(17, CLIENT, v(0), &udp(5000, 53, b"query")),
            ),
        ),
        (
            0,
            to_port(
                0,
                REMOTE,
                0x0800,
                &ipv4(17, REMOTE, v(1), &udp(5001, 123, b"ntp")),
            ),
        ),
        // Replies from a NAT real.
        (
            1,
            to_port(
                1,
                REAL1,
                0x0800,
                &ipv4(6, REAL1, CLIENT, &tcp(8080, 40000, 0x12)),
            ),
        ),
        (
            1,
            to_port(
                1,
                REAL1,
                0x0800,
                &ipv4(6, REAL1, CLIENT, &tcp(8080, 40000, 0x14)),
            ),
        ),
        (
            1,
            to_port(
                1,
                REAL1,
                0x0800,
                &ipv4(17, REAL1, CLIENT, &udp(5353, 5000, b"answer")),
            ),
        ),
        // Traffic for the appliance itself.
        (
            1,
            to_port(
                1,
                REAL1,
                0x0800,
                &ipv4(
                    6,
                    REAL1,
                    Ipv4Addr::new(198, 51, 100, 1),
                    &tcp(8080, 33000, 0x12),
                ),
            ),
        ),
        (
            0,
            to_port(
                0,
                CLIENT,
                0x0800,
                &ipv4(1, CLIENT, v(0), &[8, 0, 0, 0, 0, 1, 0, 1, 0xab]),
            ),
        ),
        (
            0,
            ether([0xff; 6], host_mac(CLIENT).0, 0x0806, &arp(1, CLIENT, v(1))),
        ),
        (
            1,
            to_port(
                1,
                REAL1,
                0x0806,
                &arp(2, REAL1, Ipv4Addr::new(198, 51, 100, 1)),
            ),
        ),
    ];
    // ICMP errors: from a real about the client's packet, and from the
    // gateway about a reply to a client.
    let to_real = ipv4(6, CLIENT, REAL1, &tcp(40000, 8080, 0x02));
    t.push((
        1,
        to_port(
            1,
            REAL1,
            0x0800,
            &ipv4(1, REAL1, CLIENT, &icmp(3, 3, &to_real)),
        ),
    ));
    let reply = ipv4(6, v(0), REMOTE, &tcp(80, 40010, 0x12));
    let gw = Ipv4Addr::new(192, 0, 2, 254);
    t.push((
        0,
        to_port(0, gw, 0x0800, &ipv4(1, gw, v(0), &icmp(3, 4, &reply))),
    ));
    // An ARP reply on the port without a kernel interface.
    let lb = Ipv4Addr::new(192, 0, 2, 1);
    t.push((0, to_port(0, CLIENT, 0x0806, &arp(2, CLIENT, lb))));
    // Client to the full-NAT services with the PROXY protocol: a SYN and
    // an ACK with data (TCP), a datagram (UDP). (Before the tunnel
    // templates: the big tunnel segment stays the last.)
    for flags in [0x02, 0x18] {
        let seg = ipv4(6, CLIENT, v(2), &tcp(40030, 8081, flags));
        t.push((0, to_port(0, CLIENT, 0x0800, &seg)));
    }
    let dgram = ipv4(17, CLIENT, v(2), &udp(5002, 5300, b"proxied"));
    t.push((0, to_port(0, CLIENT, 0x0800, &dgram)));
    // Client to the tunnel service (GUE and IP-in-IP reals): SYN, then
    // ACK with data; a big one, too big for the tunnel with DF.
    for flags in [0x02, 0x18] {
        let syn = ipv4(6, CLIENT, v(1), &tcp(40020, 8443, flags));
        t.push((0, to_port(0, CLIENT, 0x0800, &syn)));
    }
    let mut big = tcp(40021, 8443, 0x18);
    big.resize(1470, 0x5a);
    t.push((0, to_port(0, CLIENT, 0x0800, &ipv4(6, CLIENT, v(1), &big))));
    for (_, f) in &mut t {
        repair(f, true, true);
    }
    t
}

/// Recomputes the IPv4 header checksum (`ip`) and the TCP, UDP or ICMP
/// checksum (`l4`) of `frame` where the headers it claims lie within it.
pub fn repair(frame: &mut [u8], ip: bool, l4: bool) {
    if frame.len() < 34 || frame[12..14] != [0x08, 0x00] {
        return;
    }
    let hl = usize::from(frame[14] & 0x0f) * 4;
    if hl < 20 || frame.len() < 14 + hl {
        return;
    }
    let total = usize::from(u16::from_be_bytes([frame[16], frame[17]]));
    let end = 14 + total;
    if l4
        && total >= hl
        && end <= frame.len()
        && u16::from_be_bytes([frame[20], frame[21]]) & 0x3fff == 0
    {
        let src = Ipv4Addr::new(frame[26], frame[27], frame[28], frame[29]);
        let dst = Ipv4Addr::new(frame[30], frame[31], frame[32], frame[33]);
        let seg = 14 + hl;
        match frame[23] {
            6 if end - seg >= 20 => {
                frame[seg + 16..seg + 18].copy_from_slice(&[0, 0]);
                let c = l4_checksum(src, dst, 6, &frame[seg..end]);
                frame[seg + 16..seg + 18].copy_from_slice(&c.to_be_bytes());
            }
            17 if end - seg >= 8 => {
                let ulen = usize::from(u16::from_be_bytes([frame[seg + 4], frame[seg + 5]]));
                if (8..=end - seg).contains(&ulen) {
                    let c = l4_checksum(src, dst, 17, &frame[seg..seg + ulen]);
                    frame[seg + 6..seg + 8].copy_from_slice(&c.to_be_bytes());
                }
            }
            1 if end - seg >= 4 => {
                let c = icmp_checksum(&frame[seg..end]);
                frame[seg + 2..seg + 4].copy_from_slice(&c.to_be_bytes());
            }
            _ => {}
        }
    }
    if ip {
        let c = ipv4_header_checksum(&frame[14..14 + hl]);
        frame[24..26].copy_from_slice(&c.to_be_bytes());
    }
}
