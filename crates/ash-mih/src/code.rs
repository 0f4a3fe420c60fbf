//! Binary hash codes of 1 to 256 bits and their Hamming distance.
//!
//! # Bit order
//!
//! A code is a sequence of bits `b[0] … b[bits-1]`. Its external form is the
//! packed byte string that `numpy.packbits` produces (and FAISS reads): bit
//! `b[i]` is bit `7 - i % 8` of byte `i / 8`, so the first bit is the most
//! significant bit of the first byte, and the unused bits of the last byte are
//! zero. Hex strings are that byte string in hex.
//!
//! In memory a code is up to four `u64` words with the same order: `b[i]` is
//! bit `63 - i % 64` of word `i / 64`. A big-endian load of eight packed bytes
//! is therefore exactly one word, and bits beyond the length are always zero,
//! so the distance is a plain popcount of the XOR over all words.
//!
//! # Signs
//!
//! A real-valued network output `v` becomes bit 1 when `v >= 0` and bit 0
//! otherwise: zero maps to 1, as `numpy.packbits(x >= 0)` does. NaN is an
//! error, not a silent bit.

use std::fmt;

/// The longest code supported.
pub const MAX_BITS: usize = 256;
/// Words needed for the longest code.
pub const MAX_WORDS: usize = MAX_BITS / 64;

/// Why a code could not be made from its input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    /// A code length outside 1..=256 bits.
    #[error("code length must be between 1 and {MAX_BITS} bits, got {0}")]
    BitsOutOfRange(usize),
    /// The input has the wrong number of bytes, hex digits or values.
    #[error("expected {expected} {unit}, got {got}")]
    WrongLength {
        /// How many the code length needs.
        expected: usize,
        /// How many were given.
        got: usize,
        /// What was counted (`"bytes"`, `"hex digits"`, ...).
        unit: &'static str,
    },
    /// A character that does not belong in the input (hex or bit strings).
    #[error("invalid character {ch:?} at position {pos} (expected {expected})")]
    BadChar {
        /// Its position, from 0.
        pos: usize,
        /// The character.
        ch: char,
        /// What was expected there.
        expected: &'static str,
    },
    /// Packed bytes whose padding bits (beyond the code length) are set.
    #[error("the {0} unused trailing bits of the last byte must be zero")]
    TrailingBitsSet(usize),
    /// A real value to threshold that is NaN.
    #[error("value at position {0} is NaN; a sign bit needs a number")]
    NotANumber(usize),
    /// Two codes of different lengths were compared.
    #[error("codes of different lengths cannot be compared ({0} and {1} bits)")]
    LengthMismatch(usize, usize),
}

/// A binary code of 1..=256 bits, `Copy` and comparable; see the module docs
/// for the bit order.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct BinaryCode {
    bits: u16,
    words: [u64; MAX_WORDS],
}

/// Number of `u64` words a code of `bits` bits occupies.
pub const fn words_for(bits: usize) -> usize {
    bits.div_ceil(64)
}

/// Number of packed bytes a code of `bits` bits occupies.
pub const fn bytes_for(bits: usize) -> usize {
    bits.div_ceil(8)
}

/// The one check of a code length (1..=[`MAX_BITS`]), used wherever a
/// length is given: codes, builders, file headers, index fields.
///
/// ```
/// use ash_mih::code::{check_bits, CodeError};
/// assert!(check_bits(48).is_ok());
/// assert_eq!(check_bits(0), Err(CodeError::BitsOutOfRange(0)));
/// ```
pub fn check_bits(bits: usize) -> Result<(), CodeError> {
    if (1..=MAX_BITS).contains(&bits) {
        Ok(())
    } else {
        Err(CodeError::BitsOutOfRange(bits))
    }
}

impl BinaryCode {
    /// The all-zero code of `bits` bits.
    pub fn zeros(bits: usize) -> Result<Self, CodeError> {
        check_bits(bits)?;
        Ok(Self {
            bits: bits as u16,
            words: [0; MAX_WORDS],
        })
    }

    /// Builds a code from its bits, `true` meaning 1.
    pub fn from_bools(bits: &[bool]) -> Result<Self, CodeError> {
        let mut code = Self::zeros(bits.len())?;
        for (i, &b) in bits.iter().enumerate() {
            if b {
                code.words[i / 64] |= 1 << (63 - i % 64);
            }
        }
        Ok(code)
    }

    /// Builds a code from real values by their sign: `v >= 0` gives 1.
    pub fn from_signs(values: &[f32]) -> Result<Self, CodeError> {
        if let Some(pos) = values.iter().position(|v| v.is_nan()) {
            return Err(CodeError::NotANumber(pos));
        }
        let bools: Vec<bool> = values.iter().map(|&v| v >= 0.0).collect();
        Self::from_bools(&bools)
    }

    /// Parses a string of `0` and `1`, first bit first.
    pub fn from_bit_str(s: &str) -> Result<Self, CodeError> {
        let mut bools = Vec::with_capacity(s.len());
        for (pos, ch) in s.chars().enumerate() {
            match ch {
                '0' => bools.push(false),
                '1' => bools.push(true),
                _ => {
                    return Err(CodeError::BadChar {
                        pos,
                        ch,
                        expected: "'0' or '1'",
                    })
                }
            }
        }
        Self::from_bools(&bools)
    }

    /// Reads `bytes_for(bits)` bytes in numpy `packbits` order. The unused
    /// trailing bits must be zero, so that every code has one byte form.
    pub fn from_packed(bytes: &[u8], bits: usize) -> Result<Self, CodeError> {
        let mut code = Self::zeros(bits)?;
        let expected = bytes_for(bits);
        if bytes.len() != expected {
            return Err(CodeError::WrongLength {
                expected,
                got: bytes.len(),
                unit: "bytes",
            });
        }
        let unused = expected * 8 - bits;
        if unused > 0 && bytes[expected - 1] & ((1u8 << unused) - 1) != 0 {
            return Err(CodeError::TrailingBitsSet(unused));
        }
        for (w, chunk) in bytes.chunks(8).enumerate() {
            let mut buf = [0u8; 8];
            buf[..chunk.len()].copy_from_slice(chunk);
            code.words[w] = u64::from_be_bytes(buf);
        }
        Ok(code)
    }

    /// Parses the hex form of the packed bytes (two digits a byte, either case).
    pub fn from_hex(hex: &str, bits: usize) -> Result<Self, CodeError> {
        check_bits(bits)?;
        let expected = bytes_for(bits) * 2;
        if hex.len() != expected {
            return Err(CodeError::WrongLength {
                expected,
                got: hex.chars().count(),
                unit: "hex digits",
            });
        }
        let mut bytes = Vec::with_capacity(expected / 2);
        let digits: Vec<(usize, char)> = hex.chars().enumerate().collect();
        for pair in digits.chunks(2) {
            let mut byte = 0u8;
            for &(pos, ch) in pair {
                let v = ch.to_digit(16).ok_or(CodeError::BadChar {
                    pos,
                    ch,
                    expected: "a hex digit",
                })?;
                byte = byte << 4 | v as u8;
            }
            bytes.push(byte);
        }
        Self::from_packed(&bytes, bits)
    }

    /// Builds a code from its in-memory words (see the module docs). Bits
    /// beyond the length are cleared.
    pub fn from_words(words: &[u64], bits: usize) -> Result<Self, CodeError> {
        let mut code = Self::zeros(bits)?;
        let n = words_for(bits);
        if words.len() != n {
            return Err(CodeError::WrongLength {
                expected: n,
                got: words.len(),
                unit: "words",
            });
        }
        code.words[..n].copy_from_slice(words);
        let tail = bits % 64;
        if tail != 0 {
            code.words[n - 1] &= !0u64 << (64 - tail);
        }
        Ok(code)
    }

    /// Length in bits.
    pub fn bits(&self) -> usize {
        self.bits as usize
    }

    /// The in-memory words, `words_for(bits)` of them.
    pub fn words(&self) -> &[u64] {
        &self.words[..words_for(self.bits())]
    }

    /// Bit `i` (0 = first), or `None` past the end.
    pub fn bit(&self, i: usize) -> Option<bool> {
        (i < self.bits()).then(|| self.words[i / 64] >> (63 - i % 64) & 1 == 1)
    }

    /// The packed bytes in numpy `packbits` order.
    pub fn to_packed(&self) -> Vec<u8> {
        let mut out: Vec<u8> = self.words().iter().flat_map(|w| w.to_be_bytes()).collect();
        out.truncate(bytes_for(self.bits()));
        out
    }

    /// Lower-case hex of the packed bytes.
    pub fn to_hex(&self) -> String {
        hex(&self.to_packed())
    }

    /// The bits as a string of `0` and `1`.
    pub fn to_bit_str(&self) -> String {
        (0..self.bits())
            .map(|i| if self.bit(i) == Some(true) { '1' } else { '0' })
            .collect()
    }

    /// Hamming distance to a code of the same length.
    pub fn distance(&self, other: &Self) -> Result<u32, CodeError> {
        if self.bits != other.bits {
            return Err(CodeError::LengthMismatch(self.bits(), other.bits()));
        }
        Ok(hamming(&self.words, &other.words))
    }
}

/// Hamming distance between two word slices of equal length. Compiles to
/// POPCNT (see `.cargo/config.toml`).
#[inline(always)]
pub fn hamming(a: &[u64], b: &[u64]) -> u32 {
    a.iter().zip(b).map(|(x, y)| (x ^ y).count_ones()).sum()
}

impl fmt::Debug for BinaryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BinaryCode({} bits, {})", self.bits, self.to_hex())
    }
}

impl fmt::Display for BinaryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// Lower-case hex, two digits a byte: the one hex encoder of the workspace
/// (codes, digests, tokens), so that every place prints the same form.
///
/// ```
/// assert_eq!(ash_mih::code::hex(&[0x0f, 0xa0]), "0fa0");
/// ```
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packbits_order_first_bit_is_msb() {
        let c = BinaryCode::from_bit_str("1000000001").unwrap();
        assert_eq!(c.to_packed(), vec![0x80, 0x40]);
        assert_eq!(c.to_hex(), "8040");
        assert_eq!(BinaryCode::from_hex("8040", 10).unwrap(), c);
    }

    #[test]
    fn round_trips_at_every_supported_boundary() {
        for bits in [1, 7, 8, 12, 63, 64, 65, 128, 200, 256] {
            let bools: Vec<bool> = (0..bits).map(|i| (i * 7 + 3) % 5 < 2).collect();
            let c = BinaryCode::from_bools(&bools).unwrap();
            assert_eq!(BinaryCode::from_packed(&c.to_packed(), bits).unwrap(), c);
            assert_eq!(BinaryCode::from_hex(&c.to_hex(), bits).unwrap(), c);
            assert_eq!(BinaryCode::from_bit_str(&c.to_bit_str()).unwrap(), c);
            assert_eq!(BinaryCode::from_words(c.words(), bits).unwrap(), c);
        }
    }

    #[test]
    fn signs_map_zero_to_one_and_reject_nan() {
        let c = BinaryCode::from_signs(&[0.5, -0.1, 0.0, -0.0, -3.0]).unwrap();
        assert_eq!(c.to_bit_str(), "10110");
        assert_eq!(
            BinaryCode::from_signs(&[1.0, f32::NAN]),
            Err(CodeError::NotANumber(1))
        );
    }

    #[test]
    fn bad_inputs_are_errors() {
        assert!(matches!(
            BinaryCode::from_hex("80", 12),
            Err(CodeError::WrongLength { .. })
        ));
        assert!(matches!(
            BinaryCode::from_hex("8g40", 16),
            Err(CodeError::BadChar { pos: 1, .. })
        ));
        assert!(matches!(
            BinaryCode::from_hex("ééé", 12),
            Err(CodeError::WrongLength { .. })
        ));
        assert_eq!(
            BinaryCode::from_packed(&[0x80, 0x41], 10),
            Err(CodeError::TrailingBitsSet(6))
        );
        assert_eq!(BinaryCode::zeros(0), Err(CodeError::BitsOutOfRange(0)));
        assert_eq!(BinaryCode::zeros(257), Err(CodeError::BitsOutOfRange(257)));
        assert!(matches!(
            BinaryCode::from_bit_str("01x"),
            Err(CodeError::BadChar { pos: 2, .. })
        ));
    }

    #[test]
    fn distance_counts_differing_bits() {
        let a = BinaryCode::from_bit_str(&"1".repeat(130)).unwrap();
        let b = BinaryCode::zeros(130).unwrap();
        assert_eq!(a.distance(&b), Ok(130));
        let c = BinaryCode::zeros(129).unwrap();
        assert_eq!(b.distance(&c), Err(CodeError::LengthMismatch(130, 129)));
    }
}
