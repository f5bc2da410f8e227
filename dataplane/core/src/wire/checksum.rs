//! The Internet checksum (RFC 1071) computed from scratch, and updated
//! incrementally after a field changes (RFC 1624, equation 3:
//! `HC' = ~(~HC + ~m + m')`).

/// Adds `data` as big-endian 16-bit words to a running 32-bit sum (an odd
/// trailing byte is padded with zero). The result is congruent to the
/// 16-bit ones' complement sum modulo 0xffff and zero only when `acc` and
/// `data` are all zeros; [`fold`] makes it the 16-bit sum.
///
/// It reads 8 bytes at a time into a 64-bit accumulator: a big-endian
/// 32-bit word `hi * 2^16 + lo` is congruent to `hi + lo` modulo 0xffff
/// (2^16 is 1 there), and folding 64 bits into 32 with end-around carry
/// keeps the sum modulo 2^32 - 1, a multiple of 0xffff. A 20-byte IPv4
/// header takes a handful of additions instead of ten 16-bit steps.
#[inline]
pub fn sum(data: &[u8], acc: u32) -> u32 {
    let mut wide = u64::from(acc);
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_be_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        // At most 2^33 per step: no overflow below 2^31 steps (16 GiB).
        wide += (w >> 32) + (w & 0xffff_ffff);
    }
    let mut rest = chunks.remainder();
    if let [a, b, c, d, tail @ ..] = rest {
        wide += u64::from(u32::from_be_bytes([*a, *b, *c, *d]));
        rest = tail;
    }
    if let [a, b, tail @ ..] = rest {
        wide += u64::from(u16::from_be_bytes([*a, *b]));
        rest = tail;
    }
    if let [b] = rest {
        wide += u64::from(*b) << 8;
    }
    while wide >> 32 != 0 {
        wide = (wide & 0xffff_ffff) + (wide >> 32);
    }
    wide as u32
}

/// Folds a 32-bit sum into 16 bits with end-around carry.
#[inline]
pub fn fold(mut acc: u32) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

/// The Internet checksum of `data` (the value to store in the header).
#[inline]
pub fn checksum(data: &[u8]) -> u16 {
    !fold(sum(data, 0))
}

/// Updates checksum `hc` after a 16-bit word changed from `old` to `new`.
#[inline(always)]
pub fn update16(hc: u16, old: u16, new: u16) -> u16 {
    let s = (!hc as u32) + (!old as u32) + new as u32;
    !fold(s)
}

/// Updates checksum `hc` after a 32-bit field (two words) changed.
#[inline(always)]
pub fn update32(hc: u16, old: u32, new: u32) -> u16 {
    let s = (!hc as u32)
        + (!(old >> 16) as u16 as u32)
        + (!(old as u16) as u32)
        + (new >> 16)
        + (new & 0xffff);
    !fold(s)
}

/// Whether `data` (which includes its checksum field) sums to all-ones.
#[inline]
pub fn verify(data: &[u8]) -> bool {
    fold(sum(data, 0)) == 0xffff
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rfc1071_example() {
        // RFC 1071 section 3: 0001 f203 f4f5 f6f7 sums to ddf2.
        let d = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold(sum(&d, 0)), 0xddf2);
        assert_eq!(checksum(&d), !0xddf2);
    }

    #[test]
    fn odd_length_pads_with_zero() {
        assert_eq!(fold(sum(&[0x12, 0x34, 0x56], 0)), 0x1234 + 0x5600);
    }

    proptest! {
        /// The checksum of any bytes, after any running sum, is the one
        /// the independent oracle computes 16 bits at a time.
        #[test]
        fn sum_matches_the_oracle(data in proptest::collection::vec(any::<u8>(), 0..200),
                                  acc in prop_oneof![Just(0u32), any::<u32>()],
                                  split in 0usize..200) {
            let oracle = |d: &[u8], acc: u32| {
                let mut s = u64::from(acc);
                for c in d.chunks(2) {
                    s += u64::from(c[0]) << 8 | u64::from(*c.get(1).unwrap_or(&0));
                }
                while s > 0xffff {
                    s = (s & 0xffff) + (s >> 16);
                }
                s as u16
            };
            prop_assert_eq!(fold(sum(&data, acc)), oracle(&data, acc));
            // Summed in two parts (the first of even length), the same.
            let cut = (split.min(data.len())) & !1;
            let two = sum(&data[cut..], sum(&data[..cut], acc));
            prop_assert_eq!(fold(two), oracle(&data, acc));
        }

        #[test]
        fn incremental16_matches_full(mut data in proptest::collection::vec(any::<u8>(), 4..64),
                                      idx in 0usize..30, new in any::<u16>()) {
            if data.len() % 2 == 1 { data.pop(); }
            let words = data.len() / 2 - 1; // word 0 holds the checksum
            let w = 1 + idx % words;
            data[0] = 0; data[1] = 0;
            let c = checksum(&data);
            data[0..2].copy_from_slice(&c.to_be_bytes());
            prop_assert!(verify(&data));
            let old = u16::from_be_bytes([data[2*w], data[2*w+1]]);
            data[2*w..2*w+2].copy_from_slice(&new.to_be_bytes());
            let inc = update16(c, old, new);
            data[0..2].copy_from_slice(&inc.to_be_bytes());
            prop_assert!(verify(&data));
        }

        #[test]
        fn incremental32_matches_full(mut data in proptest::collection::vec(any::<u8>(), 8..64),
                                      new in any::<u32>()) {
            if data.len() % 2 == 1 { data.pop(); }
            data[0] = 0; data[1] = 0;
            let c = checksum(&data);
            data[0..2].copy_from_slice(&c.to_be_bytes());
            let old = u32::from_be_bytes([data[2], data[3], data[4], data[5]]);
            data[2..6].copy_from_slice(&new.to_be_bytes());
            let inc = update32(c, old, new);
            data[0..2].copy_from_slice(&inc.to_be_bytes());
            prop_assert!(verify(&data));
        }
    }
}
