//! The stamp every generated packet carries: a magic, the run (trial) it
//! belongs to, flags, the flow slot, a per-flow sequence number and the TSC
//! at transmission.
//!
//! The stamp has to fit in a 64-byte frame (60 bytes without the FCS):
//! after Ethernet, IPv4 and UDP headers (42 bytes) there are 18 bytes left,
//! after a TCP header (54 bytes) only 6. So the fields are compact: the
//! sequence number is a 32-bit serial number (RFC 1982 arithmetic on
//! receive), the TSC its low 48 bits (wraps after days; a latency is the
//! difference modulo 2^48).
//!
//! UDP: all 18 bytes at the start of the UDP payload, big-endian:
//!
//! ```text
//! 0  magic u16   2  run u8   3  flags u8   4  slot u32   8  seq u32   12  tsc u48
//! ```
//!
//! TCP: the stamp rides in the header fields a layer-4 load balancer (and
//! testpmd) leaves alone, plus the 6 payload bytes: sequence number = seq,
//! acknowledgment number = slot, window = magic, urgent pointer =
//! run << 8 | flags (the URG flag is never set, so it means nothing), and
//! the first 6 payload bytes = tsc.

/// The magic, "SG".
pub const MAGIC: u16 = 0x5347;
/// Bytes of UDP payload the stamp takes.
pub const UDP_LEN: usize = 18;
/// Bytes of TCP payload the stamp takes (after a 20-byte header).
pub const TCP_PAYLOAD_LEN: usize = 6;
/// Flag: the first packet of a flow generation (a SYN for TCP).
pub const FLAG_FIRST: u8 = 0x01;
/// The TSC bits kept.
pub const TSC_MASK: u64 = (1 << 48) - 1;

/// A decoded stamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stamp {
    /// Run (trial) id, low 8 bits.
    pub run: u8,
    /// FLAG_* bits.
    pub flags: u8,
    /// Flow slot.
    pub slot: u32,
    /// Per-slot sequence number.
    pub seq: u32,
    /// TSC at transmission, low 48 bits.
    pub tsc: u64,
}

/// Why a stamp could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StampError {
    /// Too few bytes.
    Short,
    /// The magic is not ours.
    Magic,
}

impl Stamp {
    /// Whether this is the first packet of its flow generation.
    #[inline(always)]
    pub fn first(&self) -> bool {
        self.flags & FLAG_FIRST != 0
    }
}

#[inline(always)]
fn put48(b: &mut [u8], v: u64) {
    b[..6].copy_from_slice(&v.to_be_bytes()[2..]);
}

#[inline(always)]
fn get48(b: &[u8]) -> u64 {
    let mut x = [0u8; 8];
    x[2..].copy_from_slice(&b[..6]);
    u64::from_be_bytes(x)
}

/// Writes the stamp at the start of a UDP payload (UDP_LEN bytes).
#[inline(always)]
pub fn write_udp(p: &mut [u8], s: &Stamp) {
    p[0..2].copy_from_slice(&MAGIC.to_be_bytes());
    p[2] = s.run;
    p[3] = s.flags;
    p[4..8].copy_from_slice(&s.slot.to_be_bytes());
    p[8..12].copy_from_slice(&s.seq.to_be_bytes());
    put48(&mut p[12..18], s.tsc & TSC_MASK);
}

/// Reads the stamp at the start of a UDP payload.
#[inline(always)]
pub fn read_udp(p: &[u8]) -> Result<Stamp, StampError> {
    if p.len() < UDP_LEN {
        return Err(StampError::Short);
    }
    if u16::from_be_bytes([p[0], p[1]]) != MAGIC {
        return Err(StampError::Magic);
    }
    Ok(Stamp {
        run: p[2],
        flags: p[3],
        slot: u32::from_be_bytes(p[4..8].try_into().unwrap()),
        seq: u32::from_be_bytes(p[8..12].try_into().unwrap()),
        tsc: get48(&p[12..18]),
    })
}

/// Writes the stamp into a TCP segment `seg` (header without options, then
/// at least TCP_PAYLOAD_LEN payload bytes). Leaves ports, offset, flags and
/// checksum alone.
#[inline(always)]
pub fn write_tcp(seg: &mut [u8], s: &Stamp) {
    seg[4..8].copy_from_slice(&s.seq.to_be_bytes());
    seg[8..12].copy_from_slice(&s.slot.to_be_bytes());
    seg[14..16].copy_from_slice(&MAGIC.to_be_bytes());
    seg[18] = s.run;
    seg[19] = s.flags;
    put48(&mut seg[20..26], s.tsc & TSC_MASK);
}

/// Reads the stamp from a TCP segment whose header is `header_len` bytes.
#[inline(always)]
pub fn read_tcp(seg: &[u8], header_len: usize) -> Result<Stamp, StampError> {
    if header_len < 20 || seg.len() < header_len + TCP_PAYLOAD_LEN {
        return Err(StampError::Short);
    }
    if u16::from_be_bytes([seg[14], seg[15]]) != MAGIC {
        return Err(StampError::Magic);
    }
    Ok(Stamp {
        run: seg[18],
        flags: seg[19],
        slot: u32::from_be_bytes(seg[8..12].try_into().unwrap()),
        seq: u32::from_be_bytes(seg[4..8].try_into().unwrap()),
        tsc: get48(&seg[header_len..header_len + 6]),
    })
}

/// TSC ticks from a stamp's `tsc` to `now` (modulo 2^48).
#[inline(always)]
pub fn elapsed(now: u64, stamped: u64) -> u64 {
    now.wrapping_sub(stamped) & TSC_MASK
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp() -> Stamp {
        Stamp {
            run: 7,
            flags: FLAG_FIRST,
            slot: 9_999_999,
            seq: 0xdead_beef,
            tsc: 0x1234_5678_9abc_def0,
        }
    }

    #[test]
    fn udp_round_trip() {
        let mut p = [0u8; UDP_LEN];
        write_udp(&mut p, &stamp());
        let s = read_udp(&p).unwrap();
        assert_eq!(s.tsc, 0x1234_5678_9abc_def0 & TSC_MASK);
        assert_eq!(Stamp { tsc: 0, ..s }, Stamp { tsc: 0, ..stamp() });
        assert!(s.first());
        assert_eq!(read_udp(&p[..17]), Err(StampError::Short));
        p[0] ^= 1;
        assert_eq!(read_udp(&p), Err(StampError::Magic));
    }

    #[test]
    fn tcp_round_trip() {
        let mut seg = [0u8; 26];
        write_tcp(&mut seg, &stamp());
        let s = read_tcp(&seg, 20).unwrap();
        assert_eq!(s.slot, 9_999_999);
        assert_eq!(s.seq, 0xdead_beef);
        assert_eq!(s.run, 7);
        assert_eq!(read_tcp(&seg[..25], 20), Err(StampError::Short));
        seg[15] ^= 1;
        assert_eq!(read_tcp(&seg, 20), Err(StampError::Magic));
    }

    #[test]
    fn elapsed_wraps_at_48_bits() {
        assert_eq!(elapsed(10, 4), 6);
        assert_eq!(elapsed(1 << 48, TSC_MASK), 1);
        assert_eq!(elapsed(3, TSC_MASK), 4);
    }
}
