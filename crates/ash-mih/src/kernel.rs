//! What the CPU is asked for directly, and the crate's only `unsafe` but
//! the memory map's (`file`): the popcount scan kernel, Hamming distances
//! of a block of consecutive codes to one query, and the prefetch hint of a
//! bucket walk. The kernel's loop is compiled three times, for AVX-512
//! VPOPCNTDQ (a vector popcount), AVX2 (a shuffle-based one) and the
//! x86-64-v2 baseline (scalar POPCNT), and the widest one the CPU has is
//! chosen at run time; each `unsafe` call is to a function compiled for a
//! feature the CPU was seen to have.

use super::format::get_u64;

/// Hints the CPU to fetch the cache line at `data[at]`; a no-op past the
/// end and on other architectures.
#[inline(always)]
pub(crate) fn prefetch(data: &[u8], at: usize) {
    #[cfg(target_arch = "x86_64")]
    if at < data.len() {
        // SAFETY: a prefetch is only a hint and never faults; the address
        // is inside `data` all the same.
        unsafe {
            core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(
                data.as_ptr().add(at).cast::<i8>(),
            )
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (data, at);
}

/// Codes per kernel call: large enough to amortise the call, small enough
/// that the distances stay in L1.
pub const BLOCK: usize = 256;

/// `out[i]` = distance of code `i` of `codes` (W words each) to `q`.
type Kernel<const W: usize> = fn(&[u8], &[u64; W], &mut [u32]);

#[inline(always)]
fn distances_body<const W: usize>(codes: &[u8], q: &[u64; W], out: &mut [u32]) {
    for (d, code) in out.iter_mut().zip(codes.chunks_exact(W * 8)) {
        *d = q
            .iter()
            .enumerate()
            .map(|(k, qw)| (get_u64(code, k * 8) ^ qw).count_ones())
            .sum();
    }
}

fn distances_baseline<const W: usize>(codes: &[u8], q: &[u64; W], out: &mut [u32]) {
    distances_body::<W>(codes, q, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vpopcntdq")]
fn distances_avx512<const W: usize>(codes: &[u8], q: &[u64; W], out: &mut [u32]) {
    distances_body::<W>(codes, q, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn distances_avx2<const W: usize>(codes: &[u8], q: &[u64; W], out: &mut [u32]) {
    distances_body::<W>(codes, q, out)
}

/// The fastest kernel this CPU runs.
pub fn select<const W: usize>() -> Kernel<W> {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512vpopcntdq")
            && std::arch::is_x86_feature_detected!("avx512bw")
            && std::arch::is_x86_feature_detected!("avx512vl")
        {
            // SAFETY: the features it is compiled for were detected above.
            return |c, q, o| unsafe { distances_avx512::<W>(c, q, o) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: AVX2 was detected above.
            return |c, q, o| unsafe { distances_avx2::<W>(c, q, o) };
        }
    }
    distances_baseline::<W>
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kernel_agrees_with_the_baseline() {
        let codes: Vec<u8> = (0..BLOCK * 16).map(|i| (i * 37 % 251) as u8).collect();
        let q = [0x0123_4567_89ab_cdef_u64, 0xfedc_ba98_7654_3210];
        let mut want = vec![0u32; BLOCK];
        distances_baseline::<2>(&codes, &q, &mut want);
        let mut got = vec![0u32; BLOCK];
        select::<2>()(&codes, &q, &mut got);
        assert_eq!(got, want);
        // Each compiled kernel on its own, not only the one selected here:
        // a machine with AVX-512 still checks the AVX2 path.
        #[cfg(target_arch = "x86_64")]
        {
            let mut ran = 0;
            if std::arch::is_x86_feature_detected!("avx2") {
                let mut avx2 = vec![0u32; BLOCK];
                // SAFETY: AVX2 was detected above.
                unsafe { distances_avx2::<2>(&codes, &q, &mut avx2) };
                assert_eq!(avx2, want, "AVX2 kernel");
                ran += 1;
            }
            if std::arch::is_x86_feature_detected!("avx512vpopcntdq")
                && std::arch::is_x86_feature_detected!("avx512bw")
                && std::arch::is_x86_feature_detected!("avx512vl")
            {
                let mut avx512 = vec![0u32; BLOCK];
                // SAFETY: the features were detected above.
                unsafe { distances_avx512::<2>(&codes, &q, &mut avx512) };
                assert_eq!(avx512, want, "AVX-512 kernel");
                ran += 1;
            }
            eprintln!("{ran} vector kernels checked against the baseline");
        }
        assert_eq!(want[0], {
            let w0 = u64::from_le_bytes(codes[0..8].try_into().unwrap());
            let w1 = u64::from_le_bytes(codes[8..16].try_into().unwrap());
            (w0 ^ q[0]).count_ones() + (w1 ^ q[1]).count_ones()
        });
    }
}
