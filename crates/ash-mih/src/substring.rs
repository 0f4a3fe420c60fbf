//! Substrings: the disjoint bit ranges a code is cut into, one table each.

use crate::code::MAX_WORDS;

/// Bits `start..start + len` of a code, in code bit order (see `crate::code`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Substring {
    /// First bit.
    pub start: usize,
    /// Number of bits (1..=32).
    pub len: usize,
}

impl Substring {
    /// Cuts `bits` into `m` contiguous ranges whose lengths differ by at most
    /// one, the longer ones first.
    pub fn partition(bits: usize, m: usize) -> Vec<Substring> {
        let (base, extra) = (bits / m, bits % m);
        let mut start = 0;
        (0..m)
            .map(|j| {
                let len = base + usize::from(j < extra);
                let s = Substring { start, len };
                start += len;
                s
            })
            .collect()
    }

    /// The substring's value, first bit most significant. `len <= 32`.
    #[inline(always)]
    pub fn extract(&self, words: &[u64]) -> u32 {
        let (a, o) = (self.start / 64, self.start % 64);
        let hi = words[a] << o;
        let joined = if o + self.len <= 64 {
            hi
        } else {
            hi | words[a + 1] >> (64 - o)
        };
        (joined >> (64 - self.len)) as u32
    }

    /// The code words with exactly this range's bits set.
    pub fn mask(&self) -> [u64; MAX_WORDS] {
        let mut mask = [0u64; MAX_WORDS];
        for i in self.start..self.start + self.len {
            mask[i / 64] |= 1 << (63 - i % 64);
        }
        mask
    }
}

/// Every `len`-bit value at Hamming distance exactly `s` from `key`, in
/// increasing order of the flipped-bit mask (Gosper's hack).
pub fn neighbours(key: u32, len: usize, s: usize) -> impl Iterator<Item = u32> {
    let limit = 1u64 << len;
    let mut mask = if s == 0 {
        0
    } else if s > len {
        limit
    } else {
        (1u64 << s) - 1
    };
    let mut done = s > len;
    std::iter::from_fn(move || {
        if done {
            return None;
        }
        let out = key ^ mask as u32;
        if mask == 0 {
            done = true;
        } else {
            // Next larger integer with the same number of set bits.
            let c = mask & mask.wrapping_neg();
            let r = mask + c;
            mask = (((r ^ mask) >> 2) / c) | r;
            if mask >= limit {
                done = true;
            }
        }
        Some(out)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_covers_all_bits() {
        let p = Substring::partition(64, 3);
        assert_eq!(
            p,
            vec![
                Substring { start: 0, len: 22 },
                Substring { start: 22, len: 21 },
                Substring { start: 43, len: 21 }
            ]
        );
    }

    #[test]
    fn extract_across_word_boundary() {
        // bits 60..68 of a 128-bit code: last 4 of word 0, first 4 of word 1.
        let words = [0x0000_0000_0000_000a_u64, 0x5000_0000_0000_0000_u64];
        let s = Substring { start: 60, len: 8 };
        assert_eq!(s.extract(&words), 0xa5);
        assert_eq!(s.mask()[..2], [0xf, 0xf000_0000_0000_0000]);
    }

    #[test]
    fn neighbours_enumerate_each_value_once() {
        for len in [1usize, 5, 12] {
            for s in 0..=len + 1 {
                let got: Vec<u32> = neighbours(3 & ((1 << len) - 1), len, s).collect();
                let want: usize = if s > len { 0 } else { binomial(len, s) };
                assert_eq!(got.len(), want, "len {len} s {s}");
                let mut sorted = got.clone();
                sorted.sort_unstable();
                sorted.dedup();
                assert_eq!(sorted.len(), want);
                assert!(got
                    .iter()
                    .all(|&v| (v ^ (3 & ((1 << len) - 1))).count_ones() as usize == s));
            }
        }
    }

    fn binomial(n: usize, k: usize) -> usize {
        (0..k).fold(1, |acc, i| acc * (n - i) / (i + 1))
    }
}
