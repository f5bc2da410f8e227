//! The forwarder target: a sequence of frames, each a template mutated by
//! the input or raw bytes, processed by one of two workers of the lab
//! appliance, with invariants checked after every packet and at the end.
//!
//! Input: up to [`MAX_STEPS`] steps, each a 4-byte header and a payload:
//!
//! | byte | meaning |
//! |---|---|
//! | 0 | flags: 0x01 repair the IPv4 checksum, 0x02 repair the TCP/UDP/ICMP checksum, 0x04 raw bytes (not a template), 0x08 housekeeping first, 0x10 worker 1, 0x20 truncate (last payload byte is the length), 0x40 the other port, 0x80 destination MAC = the port's |
//! | 1 | template (raw: bit 0 is the port); 0xf0 the client's ACK to the last SYN cookie, 0xf1 the same with a request, 0xf2 the real's SYN-ACK to the last SYN the proxy sent, 0xf3 the real's SYN-ACK to the last TCP segment forwarded to a real (full NAT: to the local address) |
//! | 2 | clock advance, in 250 ms |
//! | 3 | payload length |
//!
//! In template mode the payload is (offset, value) pairs written into the
//! frame.

use crate::frames::{repair, templates};
use crate::lab::{
    real_addresses, real_slots, Lab, LOCAL_ADDRESSES, PORT_MACS, PROXIED, TUNNEL_REALS, VIPS,
};
use sluice_core::flow::{self, Packet};
use sluice_core::handshake;
use sluice_core::local::Handled;
use sluice_core::testing::{icmp_checksum, tcp_frame, TcpSpec};
use sluice_core::wire::{checksum, ethernet};
use sluice_core::{hygiene, MacAddr};
use sluice_lb::{Action, RealSlot};
use std::net::SocketAddrV4;

/// Most steps one input runs.
pub const MAX_STEPS: usize = 64;

struct Step {
    frame: Vec<u8>,
    rx_port: usize,
    worker: usize,
    advance_ms: u64,
    housekeeping: bool,
    /// Made when the step runs, from what the appliance sent last
    /// ([`Echo`]), then mutated by `payload` as a template is.
    echo: Option<(Echo, u8, Vec<u8>)>,
}

/// Answers to the SYN proxy, which the fuzzer could not forge: they echo
/// the appliance's last SYN-ACK or last SYN to a real.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Echo {
    /// The client's ACK to the last SYN-ACK with a cookie.
    ClientAck,
    /// The same ACK carrying a request.
    ClientRequest,
    /// The real's SYN-ACK to the last SYN the proxy sent it.
    RealSynAck,
    /// A real's SYN-ACK to the last TCP segment forwarded to it (which,
    /// under full NAT, came from a local port the fuzzer cannot guess).
    RealAnswer,
}

/// Template bytes that ask for an echo.
const ECHOES: [(u8, Echo); 4] = [
    (0xf0, Echo::ClientAck),
    (0xf1, Echo::ClientRequest),
    (0xf2, Echo::RealSynAck),
    (0xf3, Echo::RealAnswer),
];

fn decode(data: &[u8], templates: &[(usize, Vec<u8>)]) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut rest = data;
    while rest.len() >= 4 && steps.len() < MAX_STEPS {
        let (h, tail) = rest.split_at(4);
        let n = usize::from(h[3]).min(tail.len());
        let (payload, tail) = tail.split_at(n);
        rest = tail;
        let flags = h[0];
        let echo = ECHOES.iter().find(|(b, _)| *b == h[1]).map(|(_, e)| *e);
        let mut step = Step {
            frame: Vec::new(),
            rx_port: 0,
            worker: usize::from(flags & 0x10 != 0),
            advance_ms: u64::from(h[2]) * 250,
            housekeeping: flags & 0x08 != 0,
            echo: None,
        };
        match echo {
            Some(e) if flags & 0x04 == 0 => step.echo = Some((e, flags, payload.to_vec())),
            _ => {
                let (frame, rx_port) = if flags & 0x04 != 0 {
                    (payload.to_vec(), usize::from(h[1] & 1))
                } else {
                    let (port, t) = &templates[usize::from(h[1]) % templates.len()];
                    (t.clone(), *port)
                };
                let template = flags & 0x04 == 0;
                (step.frame, step.rx_port) = finish(frame, rx_port, flags, payload, template);
            }
        }
        steps.push(step);
    }
    steps
}

/// Applies a step's mutations and flags to its frame.
fn finish(
    mut frame: Vec<u8>,
    mut rx_port: usize,
    flags: u8,
    payload: &[u8],
    template: bool,
) -> (Vec<u8>, usize) {
    if template && !frame.is_empty() {
        for pair in payload.chunks_exact(2) {
            let at = usize::from(pair[0]) % frame.len();
            frame[at] = pair[1];
        }
    }
    if flags & 0x40 != 0 {
        rx_port ^= 1;
    }
    if flags & 0x20 != 0 {
        if let Some(&len) = payload.last() {
            frame.truncate(usize::from(len));
        }
    }
    if flags & 0x80 != 0 && frame.len() >= 6 {
        frame[..6].copy_from_slice(&PORT_MACS[rx_port].0);
    }
    repair(&mut frame, flags & 0x01 != 0, flags & 0x02 != 0);
    (frame, rx_port)
}

/// The answer `e` to `sent` (a TCP frame the appliance sent on
/// `port`): from its destination back to its source, acknowledging it.
fn echo_frame(e: Echo, sent: &[u8], port: usize) -> Option<(Vec<u8>, usize)> {
    let p = flow::parse(sent).ok()?;
    let (seq, ack) = (handshake::seq(sent, &p), handshake::ack(sent, &p));
    let (flags, seq, ack, options, payload): (u8, u32, u32, &[u8], &[u8]) = match e {
        Echo::ClientAck => (0x10, ack, seq.wrapping_add(1), &[], &[]),
        Echo::ClientRequest => (
            0x18,
            ack,
            seq.wrapping_add(1),
            &[],
            b"GET / HTTP/1.0\r\n\r\n",
        ),
        Echo::RealSynAck => (0x12, 0x5000_0000, seq.wrapping_add(1), &[1, 3, 3, 9], &[]),
        Echo::RealAnswer => (
            0x12,
            0x5000_0000,
            seq.wrapping_add(1),
            &[2, 4, 5, 0xb4],
            &[],
        ),
    };
    let mut f = tcp_frame(&TcpSpec {
        src: SocketAddrV4::new(p.dst, p.dport),
        dst: SocketAddrV4::new(p.src, p.sport),
        seq,
        ack,
        flags,
        window: 502,
        options,
        payload,
        ip_options: &[],
    });
    f[..6].copy_from_slice(&ethernet::src(sent).0);
    f[6..12].copy_from_slice(&sent[..6]);
    Some((f, port))
}

/// How many packets ended how, in one run.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Forwarded.
    pub forwarded: usize,
    /// Held for ARP.
    pub held: usize,
    /// Answered (ARP, echo).
    pub replied: usize,
    /// Handed to the other worker.
    pub handed_off: usize,
    /// Passed to the kernel.
    pub to_kernel: usize,
    /// Used up (ARP replies, handshake ACKs).
    pub consumed: usize,
    /// Parked until a proxied handshake completes.
    pub parked: usize,
    /// Later fragments held until their first comes.
    pub fragments_held: usize,
    /// Dropped.
    pub dropped: usize,
    /// Of those forwarded or held, encapsulated for a tunnel real.
    pub tunnelled: usize,
    /// ICMP errors sent (time exceeded, fragmentation needed).
    pub icmp_errors: usize,
    /// Second outer fragments of packets too big for a tunnel.
    pub tunnel_tails: usize,
    /// Of those forwarded or held, grown by a PROXY protocol header.
    pub proxy_headers: usize,
}

impl Summary {
    fn count(&mut self, a: Action) {
        match a {
            Action::Forward { .. } => self.forwarded += 1,
            Action::Hold { .. } => self.held += 1,
            Action::Reply(_) => self.replied += 1,
            Action::HandOff { .. } => self.handed_off += 1,
            Action::HoldFragment => self.fragments_held += 1,
            Action::ToKernel => self.to_kernel += 1,
            Action::Consumed(_) => self.consumed += 1,
            Action::Park => self.parked += 1,
            Action::Drop(_) => self.dropped += 1,
        }
    }
}

/// Runs one input (the fuzz target).
pub fn target(data: &[u8]) {
    run(data);
}

/// Runs one input; panics when an invariant breaks; says how the packets
/// ended.
pub fn run(data: &[u8]) -> Summary {
    let mut summary = Summary::default();
    let templates = templates();
    let reals = real_addresses();
    let slots = real_slots() as u16;
    let mut now = 1_000_000;
    let mut lab = Lab::new(now);
    // What the appliance sent last that an echo step answers: (frame,
    // port).
    let mut last_syn_ack: Option<(Vec<u8>, usize)> = None;
    let mut last_syn: Option<(Vec<u8>, usize)> = None;
    let mut last_to_real: Option<(Vec<u8>, usize)> = None;
    // Later fragments held for their first (frame, port, worker), and
    // each worker's count of first fragments when they were last tried.
    let mut held: Vec<(Vec<u8>, usize, usize)> = Vec::new();
    let mut learned = [0u64; 2];
    for mut step in decode(data, &templates) {
        now += step.advance_ms;
        if let Some((e, flags, payload)) = step.echo.take() {
            let sent = match e {
                Echo::RealSynAck => &last_syn,
                Echo::RealAnswer => &last_to_real,
                _ => &last_syn_ack,
            };
            let Some((f, port)) = sent.as_ref().and_then(|(f, port)| echo_frame(e, f, *port))
            else {
                continue;
            };
            (step.frame, step.rx_port) = finish(f, port, flags, &payload, true);
        }
        if step.housekeeping {
            for w in &mut lab.workers {
                w.housekeeping(&lab.snap, now, || true);
            }
        }
        let mut frame = step.frame.clone();
        let action = lab.workers[step.worker].process(&lab.snap, &mut frame, step.rx_port, now);
        let grown = put_header(&mut lab, step.worker, &step.frame, &mut frame, action);
        summary.proxy_headers += usize::from(grown > 0);
        check(
            &lab,
            &reals,
            &step.frame,
            &frame,
            step.rx_port,
            step.worker,
            action,
            grown,
        );
        if let Some(port) = to_real(&reals, action, &frame) {
            last_to_real = Some((frame.clone(), port));
        }
        summary.tunnelled += usize::from(check_outer(
            action,
            &frame,
            lab.workers[step.worker].take_outer(),
        ));
        summary.count(action);
        if action == Action::Reply(Handled::SynCookie) {
            last_syn_ack = Some((frame.clone(), step.rx_port));
        }
        if action == Action::HoldFragment && held.len() < MAX_HELD {
            held.push((step.frame.clone(), step.rx_port, step.worker));
        }
        if let Action::HandOff { worker } = action {
            // The owner gets the frame as it was (the ring carries it
            // unchanged) and must not hand it on again.
            let again = lab.workers[worker].process(&lab.snap, &mut frame, step.rx_port, now);
            let grown = put_header(&mut lab, worker, &step.frame, &mut frame, again);
            summary.proxy_headers += usize::from(grown > 0);
            if let Some(port) = to_real(&reals, again, &frame) {
                last_to_real = Some((frame.clone(), port));
            }
            if again == Action::HoldFragment && held.len() < MAX_HELD {
                held.push((step.frame.clone(), step.rx_port, worker));
            }
            summary.tunnelled +=
                usize::from(check_outer(again, &frame, lab.workers[worker].take_outer()));
            assert!(
                !matches!(again, Action::HandOff { .. }),
                "handed off twice: {again:?}"
            );
            check(
                &lab,
                &reals,
                &step.frame,
                &frame,
                step.rx_port,
                worker,
                again,
                grown,
            );
            summary.count(again);
            if again == Action::Reply(Handled::SynCookie) {
                last_syn_ack = Some((frame.clone(), step.rx_port));
            }
        }
        retry_held(&mut lab, &mut held, &mut learned, &reals, now, &mut summary);
        check_entries(&lab, slots);
        for w in &mut lab.workers {
            let snap = &lab.snap;
            w.take_icmp_errors(|kind, port, f| {
                check_icmp_error(snap, &step.frame, kind, port, f);
                summary.icmp_errors += 1;
            });
            w.take_tunnel_tails(|a, f| {
                check_tail(a, f);
                summary.tunnel_tails += 1;
            });
            w.take_syns(|a, f| {
                check_syn_to_real(&reals, a, f);
                if let Action::Forward { port } | Action::Hold { port, .. } = a {
                    last_syn = Some((f.to_vec(), port));
                }
            });
        }
    }
    // Long after (the longest timeout is 15 min): every connection
    // expires and every gauge is back at 0.
    now += 1_800_000;
    for w in &mut lab.workers {
        for _ in 0..1000 {
            if w.housekeeping(&lab.snap, now, || true).caught_up {
                break;
            }
        }
        assert_eq!(w.table().len(), 0, "connections left after every timeout");
        assert_eq!(w.stats().half_open.get(), 0, "half-open gauge after expiry");
    }
    for slot in (0..slots).map(RealSlot) {
        let (a, i, e) = (
            lab.shared.active(slot),
            lab.shared.inactive(slot),
            lab.shared.entries(slot),
        );
        assert_eq!((a, i, e), (0, 0, 0), "gauges of {slot} after expiry");
    }
    summary
}

/// A time-exceeded error goes back where the packet came from, from the
/// port's address, well-formed, quoting the packet.
fn check_icmp_error(
    snap: &sluice_lb::Snapshot,
    input: &[u8],
    kind: sluice_lb::SentError,
    port: usize,
    f: &[u8],
) {
    let (e, ok) = transport_ok(f).expect("an ICMP error parses");
    assert!(ok, "ICMP error checksum");
    let pin = flow::parse(input).expect("the packet it is about parsed");
    assert_eq!(e.dst, pin.src, "the ICMP error goes to the sender");
    let m = &f[e.l4..];
    match kind {
        sluice_lb::SentError::TimeExceeded => assert_eq!(m[..2], [11, 0]),
        sluice_lb::SentError::TooBig { mtu } => {
            assert_eq!(m[..2], [3, 4]);
            assert_eq!(m[6..8], mtu.to_be_bytes());
            assert!(pin.total_len > mtu as usize, "too big at {mtu}");
        }
    }
    assert!(snap.ports[port].addresses.iter().any(|a| a.addr == e.src));
    assert_eq!(ethernet::dst(f), ethernet::src(input));
    let quote = e.icmp.and_then(|i| i.error).expect("quotes the packet");
    assert_eq!((quote.inner_src, quote.inner_dst), (pin.src, pin.dst));
}

/// Most held fragments the target keeps to try again.
const MAX_HELD: usize = 16;

/// Tries the held fragments of each worker whose count of remembered
/// first fragments moved, as the daemon's worker does; checks each as a
/// packet of its own.
fn retry_held(
    lab: &mut Lab,
    held: &mut Vec<(Vec<u8>, usize, usize)>,
    learned: &mut [u64; 2],
    reals: &[SocketAddrV4],
    now: u64,
    summary: &mut Summary,
) {
    for (w, seen) in learned.iter_mut().enumerate() {
        let count = lab.workers[w].fragments_learned();
        if count == *seen {
            continue;
        }
        *seen = count;
        let (mine, others): (Vec<_>, Vec<_>) = held.drain(..).partition(|h| h.2 == w);
        *held = others;
        for (input, port, _) in mine {
            let mut frame = input.clone();
            let a = lab.workers[w].process(&lab.snap, &mut frame, port, now);
            let grown = put_header(lab, w, &input, &mut frame, a);
            summary.proxy_headers += usize::from(grown > 0);
            check(lab, reals, &input, &frame, port, w, a, grown);
            summary.tunnelled += usize::from(check_outer(a, &frame, lab.workers[w].take_outer()));
            assert!(
                !matches!(a, Action::HandOff { .. }),
                "a held fragment changed owner"
            );
            summary.count(a);
            if a == Action::HoldFragment {
                held.push((input, port, w));
            }
        }
    }
}

/// An outer header comes only with a frame that leaves (forwarded or
/// held), and only to a tunnel real: a well-formed IPv4 header (GUE: and
/// a UDP header whose length covers the packet) with the packet, as it
/// leaves, inside.
fn check_outer(a: Action, frame: &[u8], outer: Option<sluice_core::tunnel::Outer>) -> bool {
    let Some(o) = outer else {
        return false;
    };
    assert!(
        matches!(a, Action::Forward { .. } | Action::Hold { .. }),
        "an outer header with {a:?}"
    );
    let mut grown = vec![0u8; o.len()];
    grown.extend_from_slice(frame);
    sluice_core::tunnel::prepend(&mut grown, &o);
    let inner = flow::parse(frame).expect("the inner packet parses");
    if let Some(len) = o.cut_frame_len() {
        // The first of two outer fragments: more fragments, cut.
        grown.truncate(len);
        assert_eq!(grown[20] & 0x20, 0x20, "more fragments");
        assert!(len < 14 + o.len() + inner.total_len);
    }
    let h = &grown[14..];
    assert_eq!(h[0], 0x45);
    assert_eq!(checksum::checksum(&h[..20]), 0, "outer header checksum");
    let dst: [u8; 4] = h[16..20].try_into().unwrap();
    let total = u16::from_be_bytes([h[2], h[3]]) as usize;
    let carried = total - o.len();
    if o.cut_frame_len().is_none() {
        assert_eq!(carried, inner.total_len, "outer length");
    }
    let gue = match dst {
        d if d == TUNNEL_REALS[0] => true,
        d if d == TUNNEL_REALS[1] => false,
        d => panic!("tunnelled to {d:?}, not a tunnel real"),
    };
    if gue {
        assert_eq!(h[9], 17);
        let udp_len = u16::from_be_bytes([h[24], h[25]]) as usize;
        assert_eq!(udp_len, 8 + inner.total_len, "UDP length: the whole packet");
    } else {
        assert_eq!(h[9], 4);
    }
    assert_eq!(&h[o.len()..total], &frame[14..14 + carried]);
    true
}

/// A second outer fragment: a well-formed IPv4 fragment (its offset set,
/// no more to come) to a tunnel real, going where a frame may go.
fn check_tail(a: Action, f: &[u8]) {
    assert!(
        matches!(a, Action::Forward { .. } | Action::Hold { .. }),
        "{a:?}"
    );
    let h = &f[14..];
    assert_eq!(h[0], 0x45);
    assert_eq!(checksum::checksum(&h[..20]), 0, "tail header checksum");
    assert_eq!(u16::from_be_bytes([h[2], h[3]]) as usize, h.len());
    let word = u16::from_be_bytes([h[6], h[7]]);
    assert!(word & 0x1fff != 0 && word & 0x2000 == 0, "a last fragment");
    let dst: [u8; 4] = h[16..20].try_into().unwrap();
    assert!(TUNNEL_REALS.contains(&dst), "tail to {dst:?}");
}

/// A SYN the SYN proxy sends opens a connection to a configured real,
/// well-formed.
fn check_syn_to_real(reals: &[SocketAddrV4], a: Action, f: &[u8]) {
    assert!(matches!(a, Action::Forward { .. } | Action::Hold { .. }));
    let (p, ok) = transport_ok(f).expect("a SYN to a real parses");
    assert!(ok, "SYN to a real: checksum");
    assert_eq!(p.tcp_flags, sluice_core::wire::l4::TCP_SYN);
    assert!(
        reals.contains(&SocketAddrV4::new(p.dst, p.dport)),
        "SYN to {}",
        p.dst
    );
}

/// The per-real entry gauges add up to the tables' contents.
fn check_entries(lab: &Lab, slots: u16) {
    let entries: u64 = (0..slots).map(|s| lab.shared.entries(RealSlot(s))).sum();
    let tables: u64 = lab.workers.iter().map(|w| w.table().len() as u64).sum();
    assert_eq!(entries, tables, "entry gauges against the tables");
}

/// Whether `frame` is IPv4 the parser takes, and if so whether its TCP,
/// UDP or ICMP checksum is right (computed from scratch).
fn transport_ok(frame: &[u8]) -> Option<(Packet, bool)> {
    let p = flow::parse(frame).ok()?;
    let ok = match p.proto {
        1 if !p.is_fragment => {
            let m = &frame[p.l4..p.ip_end()];
            m.len() >= 4 && icmp_checksum(m) == u16::from_be_bytes([m[2], m[3]])
        }
        _ => hygiene::l4_checksum_ok(frame, &p),
    };
    Some((p, ok))
}

/// Where a TCP segment that `a` sends to a real goes: its port.
fn to_real(reals: &[SocketAddrV4], a: Action, f: &[u8]) -> Option<usize> {
    let (Action::Forward { port } | Action::Hold { port, .. }) = a else {
        return None;
    };
    let p = flow::parse(f).ok()?;
    (p.proto == 6 && reals.contains(&SocketAddrV4::new(p.dst, p.dport))).then_some(port)
}

/// Puts the PROXY protocol header the forwarder asks for into `frame`, as
/// the worker does; checks it comes only with a frame that leaves, to a
/// service that asks for it, and names the client and the VIP. Returns
/// its length (0: none).
fn put_header(lab: &mut Lab, w: usize, input: &[u8], frame: &mut Vec<u8>, a: Action) -> usize {
    let Some(ins) = lab.workers[w].take_insert() else {
        return 0;
    };
    assert!(
        matches!(a, Action::Forward { .. } | Action::Hold { .. }),
        "a header for a frame that does not leave: {a:?}"
    );
    let n = ins.header.len();
    frame.extend(std::iter::repeat_n(0, n));
    ins.apply(frame);
    let pin = flow::parse(input).expect("a header for an unparseable frame");
    assert!(
        PROXIED.contains(&(pin.dst, pin.dport)),
        "a header for {}:{}",
        pin.dst,
        pin.dport
    );
    let h = &frame[ins.at..ins.at + n];
    assert_eq!(h[..12], sluice_core::proxy_protocol::V2_SIGNATURE);
    assert_eq!(h[16..20], pin.src.octets(), "the header names the client");
    assert_eq!(h[20..24], pin.dst.octets(), "and the VIP");
    assert_eq!(
        h[24..28],
        [pin.sport.to_be_bytes(), pin.dport.to_be_bytes()].concat()
    );
    n
}

#[allow(clippy::too_many_arguments)]
fn check(
    lab: &Lab,
    reals: &[SocketAddrV4],
    input: &[u8],
    output: &[u8],
    rx_port: usize,
    worker: usize,
    action: Action,
    grown: usize,
) {
    match action {
        Action::Forward { port } => {
            assert!(port < 2);
            assert_eq!(ethernet::src(output), PORT_MACS[port], "source MAC");
            check_rewrite(lab, reals, input, output, rx_port, grown);
        }
        Action::Hold { port, .. } => {
            assert!(port < 2);
            check_rewrite(lab, reals, input, output, rx_port, grown);
        }
        Action::Reply(h) => {
            // ARP answers the sender hardware address; echo the frame's.
            let to = match h {
                Handled::ArpRequest => MacAddr(input[22..28].try_into().unwrap()),
                _ => ethernet::src(input),
            };
            assert_eq!(ethernet::dst(output), to, "reply MAC");
            assert!(!to.is_multicast(), "a reply to a multicast MAC");
            assert_eq!(ethernet::src(output), PORT_MACS[rx_port]);
            if let Some((p, ok)) = transport_ok(output) {
                assert!(ok, "reply checksum");
                if h == Handled::Handshake {
                    // The ACK that completes a proxied handshake, or the
                    // reset of a TIME_WAIT that answered its SYN: to the
                    // real that sent it, from the client.
                    let pin = flow::parse(input).expect("the real's segment parsed");
                    assert!(reals.contains(&SocketAddrV4::new(p.dst, p.dport)));
                    assert_eq!((p.dst, p.src), (pin.src, pin.dst));
                } else {
                    let owned = lab.snap.ports[rx_port].local.owns(p.src);
                    assert!(owned, "reply from {} which is not ours", p.src);
                }
            }
        }
        Action::HandOff { worker: to } => {
            assert!(to < 2 && to != worker, "hand-off to {to} from {worker}");
            assert_eq!(input, output, "a handed-off frame is unchanged");
        }
        Action::ToKernel => {
            assert_eq!(rx_port, 1, "only port 1 has a kernel interface");
            assert_eq!(input, output, "a frame for the kernel is unchanged");
        }
        Action::HoldFragment => {
            assert_eq!(input, output, "a held fragment is unchanged");
            let p = flow::parse(input).expect("a held fragment parsed");
            assert!(p.is_fragment, "held a packet that is no fragment");
        }
        Action::Consumed(_) | Action::Drop(_) | Action::Park => {}
    }
}

/// A frame the appliance forwards: it was addressed to the port, to a VIP
/// or from a real (or an ICMP error about one of those); its rewrite is
/// well-formed and keeps correct checksums correct; addresses change only
/// to a real's (NAT in) or to a VIP (NAT out).
fn check_rewrite(
    lab: &Lab,
    reals: &[SocketAddrV4],
    input: &[u8],
    output: &[u8],
    rx_port: usize,
    grown: usize,
) {
    assert_eq!(
        ethernet::dst(input),
        PORT_MACS[rx_port],
        "forwarded a frame for {}",
        MacAddr(input[..6].try_into().unwrap())
    );
    let (pin, in_ok) = transport_ok(input).expect("forwarded an unparseable frame");
    let (pout, out_ok) = transport_ok(output).expect("forwarded frame no longer parses");
    assert!(
        !lab.snap.martians.contains(pin.src),
        "forwarded from martian {}",
        pin.src
    );
    if pin.proto == 6 && !pin.is_fragment {
        assert!(
            hygiene::valid_tcp_flags(pin.tcp_flags),
            "forwarded TCP flags {:#x}",
            pin.tcp_flags
        );
    }
    assert_eq!(input.len() + grown, output.len());
    assert_eq!(pin.total_len + grown, pout.total_len);
    if in_ok {
        assert!(out_ok, "a correct checksum became wrong");
    }
    let is_real = |ip| reals.iter().any(|r| *r.ip() == ip);
    // (A later fragment has no ports: its real is known by address.)
    let from_real = reals.contains(&SocketAddrV4::new(pin.src, pin.sport))
        || (pin.is_fragment && is_real(pin.src));
    let about_ours = pin.icmp.and_then(|i| i.error).is_some_and(|e| {
        VIPS.contains(&e.inner_src) || VIPS.contains(&e.inner_dst) || is_real(e.inner_dst)
    });
    assert!(
        VIPS.contains(&pin.dst) || from_real || about_ours,
        "forwarded {} -> {} which is neither to a VIP nor from a real",
        pin.src,
        pin.dst
    );
    // Full NAT: to a local address from a real, back to the client
    // (or an error about such a packet, to the client it names).
    let to_local = LOCAL_ADDRESSES.contains(&pin.dst);
    if pout.dst != pin.dst {
        assert!(
            is_real(pout.dst) || to_local,
            "rewritten to {} which is not a real",
            pout.dst
        );
    }
    if pout.src != pin.src {
        // Full NAT towards a real: from a local address.
        let local = LOCAL_ADDRESSES.contains(&pout.src) && is_real(pout.dst);
        assert!(
            VIPS.contains(&pout.src) || local,
            "rewritten from {} which is not a VIP",
            pout.src
        );
    }
    assert!(
        pout.ttl == pin.ttl || pout.ttl + 1 == pin.ttl,
        "TTL {} -> {}",
        pin.ttl,
        pout.ttl
    );
    assert!(pout.ttl >= 1, "forwarded with TTL 0");
}
