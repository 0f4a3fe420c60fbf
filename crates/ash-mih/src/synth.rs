//! Deterministic synthetic code sets for the demo, the tests and the
//! benchmarks: uniform codes, or clustered ones (random centres, each bit
//! flipped independently with a fixed probability), as hash codes of real
//! images are.

use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};
use rayon::prelude::*;

use crate::code::{words_for, BinaryCode, CodeError};

/// How codes are spread.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Spread {
    /// Every bit a fair coin.
    Uniform,
    /// `centres` random centres; each code is one of them with every bit
    /// flipped with probability `flip`.
    Clustered {
        /// Number of centres.
        centres: usize,
        /// Probability of each bit being flipped from its centre.
        flip: f64,
    },
}

/// Codes per parallel chunk; fixed so the output does not depend on the
/// thread count.
const CHUNK: usize = 1 << 14;

/// `n` codes of `bits` bits, the same for the same seed.
/// The centres of a clustered set depend only on `centre_seed`, so a
/// database and its queries can share centres but not codes.
pub fn generate(
    n: usize,
    bits: usize,
    spread: Spread,
    centre_seed: u64,
    seed: u64,
) -> Result<Vec<BinaryCode>, CodeError> {
    BinaryCode::zeros(bits)?;
    let w = words_for(bits);
    let centres: Vec<Vec<u64>> = match spread {
        Spread::Uniform => Vec::new(),
        Spread::Clustered { centres, .. } => {
            let mut rng = Xoshiro256PlusPlus::seed_from_u64(centre_seed);
            (0..centres.max(1))
                .map(|_| (0..w).map(|_| rng.random::<u64>()).collect())
                .collect()
        }
    };
    // Flip a bit when a 16-bit draw falls below flip * 2^16.
    let threshold = match spread {
        Spread::Clustered { flip, .. } => (flip.clamp(0.0, 1.0) * 65536.0).round() as u32,
        Spread::Uniform => 0,
    };
    let codes = (0..n.div_ceil(CHUNK))
        .into_par_iter()
        .flat_map_iter(|chunk| {
            let mut rng = Xoshiro256PlusPlus::seed_from_u64(
                seed ^ (chunk as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
            );
            let count = CHUNK.min(n - chunk * CHUNK);
            let centres = &centres;
            (0..count)
                .map(move |_| {
                    let words: Vec<u64> = if centres.is_empty() {
                        (0..w).map(|_| rng.random::<u64>()).collect()
                    } else {
                        let c = &centres[rng.random_range(0..centres.len())];
                        c.iter()
                            .map(|&cw| cw ^ flip_mask(&mut rng, threshold))
                            .collect()
                    };
                    BinaryCode::from_words(&words, bits).expect("bits checked above")
                })
                .collect::<Vec<_>>()
        })
        .collect();
    Ok(codes)
}

fn flip_mask(rng: &mut Xoshiro256PlusPlus, threshold: u32) -> u64 {
    let mut mask = 0u64;
    for quarter in 0..16 {
        let r: u64 = rng.random();
        for lane in 0..4 {
            if ((r >> (16 * lane)) & 0xffff) < threshold as u64 {
                mask |= 1 << (quarter * 4 + lane);
            }
        }
    }
    mask
}
