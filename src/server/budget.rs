//! The memory that image work (uploads, thumbnails, DICOM renderings) may
//! hold at once, so that N hostile uploads cannot add up to N times the
//! per-image limit.
//!
//! How it works: before an image is decoded, its decoded size is read from
//! its header (`ash_image::decoded_bytes`, which checks the
//! declared size against the limits first) and the work's peak is reserved
//! from the budget: the file's bytes plus three times the decoded picture
//! (the decoder's buffer, the converted picture, its 8-bit copy). A
//! reservation larger than the whole budget is refused at once (413); one
//! that does not fit now waits up to `image_queue_ms` for others to finish,
//! then is answered 503 with `Retry-After`. The reservation is returned when
//! the work's guard drops.

use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use axum::http::StatusCode;

use super::error::ApiError;

/// Bytes of image work in flight, bounded.
#[derive(Debug)]
pub struct MemoryBudget {
    total: u64,
    used: Mutex<u64>,
    freed: Condvar,
}

/// Held while the reserved work runs; gives the bytes back when dropped.
#[derive(Debug)]
pub struct Reservation<'a> {
    budget: &'a MemoryBudget,
    bytes: u64,
}

impl MemoryBudget {
    /// A budget of `total` bytes.
    pub fn new(total: u64) -> Self {
        Self {
            total,
            used: Mutex::new(0),
            freed: Condvar::new(),
        }
    }

    /// The peak memory of decoding an image of `file_bytes` bytes whose
    /// decoded picture takes `decoded` bytes.
    pub fn peak(file_bytes: u64, decoded: u64) -> u64 {
        file_bytes.saturating_add(decoded.saturating_mul(3))
    }

    /// Reserves `bytes`, waiting up to `wait` for them to be free.
    pub fn reserve(&self, bytes: u64, wait: Duration) -> Result<Reservation<'_>, ApiError> {
        if bytes > self.total {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!(
                    "decoding this image needs about {} MiB, over the server's image memory \
                     budget of {} MiB",
                    bytes.div_ceil(1 << 20),
                    self.total >> 20
                ),
            ));
        }
        let deadline = Instant::now() + wait;
        let mut used = self.used.lock().unwrap_or_else(|e| e.into_inner());
        while *used + bytes > self.total {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "busy",
                    "the server's image memory is taken by other images; try again shortly",
                )
                .retry_after(1));
            }
            used = self
                .freed
                .wait_timeout(used, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        *used += bytes;
        Ok(Reservation {
            budget: self,
            bytes,
        })
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        let mut used = self.budget.used.lock().unwrap_or_else(|e| e.into_inner());
        *used -= self.bytes;
        self.budget.freed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_add_up_to_the_budget_and_no_further() {
        let budget = MemoryBudget::new(100);
        let wait = Duration::from_millis(20);
        let a = budget.reserve(60, wait).unwrap();
        let refused = budget.reserve(50, wait).unwrap_err();
        assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE);
        let b = budget.reserve(40, wait).unwrap();
        drop(a);
        let c = budget.reserve(50, wait).unwrap();
        drop((b, c));
        let too_big = budget.reserve(101, wait).unwrap_err();
        assert_eq!(too_big.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert!(budget.reserve(100, wait).is_ok());
    }
}
