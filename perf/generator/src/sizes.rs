//! Frame sizes: one fixed size, or IMIX (7:4:1 of 64, 570 and 1518 bytes,
//! interleaved so a burst mixes them).
//!
//! Sizes are Ethernet frame lengths *including* the 4-byte FCS, as RFC 2544
//! counts them: a 64-byte frame is 60 bytes in the mbuf (the NIC appends
//! the FCS). Bit rates are reported at layer 2 (frame with FCS) and layer 1
//! (plus 8 bytes of preamble and 12 of inter-frame gap).

/// Smallest frame.
pub const MIN_FRAME: u16 = 64;
/// Largest frame (no jumbo frames).
pub const MAX_FRAME: u16 = 1518;
/// Bytes of FCS, counted in the frame size but not in the mbuf.
pub const FCS_LEN: u16 = 4;
/// Per-frame layer-1 overhead: preamble, start delimiter, inter-frame gap.
pub const L1_OVERHEAD: u64 = 20;
/// The IMIX sizes.
pub const IMIX_SIZES: [u16; 3] = [64, 570, 1518];
/// The IMIX cycle as indices into IMIX_SIZES: 7 x 64, 4 x 570, 1 x 1518.
pub const IMIX_CYCLE: [u8; 12] = [0, 1, 0, 0, 2, 0, 1, 0, 0, 1, 0, 1];

/// What sizes to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SizeSpec {
    /// Every frame this size.
    Fixed(u16),
    /// The IMIX mix.
    Imix,
}

impl SizeSpec {
    /// Checks the bounds of a fixed size.
    pub fn validate(&self) -> Result<(), String> {
        match *self {
            SizeSpec::Fixed(s) if !(MIN_FRAME..=MAX_FRAME).contains(&s) => Err(format!(
                "size must be {MIN_FRAME}..={MAX_FRAME} bytes, not {s}"
            )),
            _ => Ok(()),
        }
    }

    /// The distinct sizes, in template order.
    pub fn sizes(&self) -> Vec<u16> {
        match *self {
            SizeSpec::Fixed(s) => vec![s],
            SizeSpec::Imix => IMIX_SIZES.to_vec(),
        }
    }

    /// Mean frame size (FCS included).
    pub fn mean(&self) -> f64 {
        match *self {
            SizeSpec::Fixed(s) => s as f64,
            SizeSpec::Imix => {
                IMIX_CYCLE
                    .iter()
                    .map(|&i| IMIX_SIZES[i as usize] as f64)
                    .sum::<f64>()
                    / IMIX_CYCLE.len() as f64
            }
        }
    }

    /// A name for reports: the size in bytes, or `imix`.
    pub fn describe(&self) -> String {
        match *self {
            SizeSpec::Fixed(s) => s.to_string(),
            SizeSpec::Imix => "imix".into(),
        }
    }
}

/// Picks the template (index into `SizeSpec::sizes`) of each next frame.
#[derive(Debug, Clone)]
pub struct SizePicker {
    imix: bool,
    pos: usize,
}

impl SizePicker {
    /// A picker for `spec`.
    pub fn new(spec: SizeSpec) -> SizePicker {
        SizePicker {
            imix: spec == SizeSpec::Imix,
            pos: 0,
        }
    }

    /// The template index of the next frame.
    #[inline(always)]
    pub fn next_index(&mut self) -> usize {
        if !self.imix {
            return 0;
        }
        let i = IMIX_CYCLE[self.pos] as usize;
        self.pos += 1;
        if self.pos == IMIX_CYCLE.len() {
            self.pos = 0;
        }
        i
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imix_is_7_4_1() {
        let mut p = SizePicker::new(SizeSpec::Imix);
        let mut counts = [0; 3];
        for _ in 0..120 {
            counts[p.next_index()] += 1;
        }
        assert_eq!(counts, [70, 40, 10]);
        let mean = SizeSpec::Imix.mean();
        assert!((mean - (7.0 * 64.0 + 4.0 * 570.0 + 1518.0) / 12.0).abs() < 1e-9);
    }

    #[test]
    fn fixed_bounds() {
        assert!(SizeSpec::Fixed(64).validate().is_ok());
        assert!(SizeSpec::Fixed(1518).validate().is_ok());
        assert!(SizeSpec::Fixed(63).validate().is_err());
        assert!(SizeSpec::Fixed(1519).validate().is_err());
        let mut p = SizePicker::new(SizeSpec::Fixed(128));
        assert_eq!((p.next_index(), p.next_index()), (0, 0));
        assert_eq!(SizeSpec::Fixed(128).describe(), "128");
    }
}
