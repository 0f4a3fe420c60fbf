//! Filter statistics a caller may keep between searches.
//!
//! A filtered search learns, per segment, the share of docs its
//! restriction keeps ([`crate::restrict`]); a [`FilterStats`] remembers that
//! share so the next search with the same restriction starts with the
//! strategy it calls for instead of learning it again. It steers cost
//! only: both strategies are exact, so hits are the same with or without
//! it, and with any contents.
//!
//! The caller owns the cache (a server keeps one for its lifetime; an
//! embedder may pass none) and names each restriction with a
//! [`FilterKey`]: the filter's and the text query's source text, a stable
//! identity that does not depend on how a parsed query prints itself. The
//! cache holds at most its capacity of (segment, side, key) entries and
//! evicts the oldest entry first, so a burst of new filters never wipes
//! what the common ones taught.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};

use tantivy::index::SegmentId;

/// A caller's stable name for a search's restriction: the source text of
/// its filter and of its text query (either may be absent).
///
/// ```
/// use ash_tantivy::FilterKey;
///
/// let a = FilterKey::new(Some("grade:[2 TO 4]"), None);
/// assert_eq!(a, FilterKey::new(Some("grade:[2 TO 4]"), None));
/// assert_ne!(a, FilterKey::new(Some("grade:[2 TO 4]"), Some("exudates")));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FilterKey {
    filter: Option<String>,
    text: Option<String>,
}

impl FilterKey {
    /// The key of a restriction by `filter` and `text`, as the caller wrote them.
    pub fn new(filter: Option<&str>, text: Option<&str>) -> Self {
        Self {
            filter: filter.map(str::to_owned),
            text: text.map(str::to_owned),
        }
    }
}

/// Which ranking a share was measured for: the same filter keeps a
/// different share of the Hamming neighbours, of the Hamming neighbours
/// that also match the text, and of the text query's matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Side {
    Hamming,
    HammingWithText,
    Text,
    /// The share of all the segment's docs the restriction matches, as an
    /// allow-list walk counted it: what the next walk will cost, whatever
    /// share the query's neighbours showed.
    Matches,
}

type Slot = (SegmentId, Side, FilterKey);

#[derive(Default)]
struct Entries {
    shares: HashMap<Slot, f64>,
    /// Slots in insertion order, each once: the front is evicted first.
    order: VecDeque<Slot>,
}

/// Shares filters kept in segments, remembered between searches; bounded,
/// oldest entry evicted first. See the module documentation.
///
/// ```
/// use ash_tantivy::{FilterKey, FilterStats, Remember};
///
/// let stats = FilterStats::new(1024);
/// let key = FilterKey::new(Some("eye:OS"), None);
/// let remember = Remember { stats: &stats, key: &key };
/// // Pass `Some(remember)` in a `hybrid::Request` or `knn::KnnRequest`.
/// assert!(stats.is_empty());
/// # let _ = remember;
/// ```
pub struct FilterStats {
    entries: Mutex<Entries>,
    capacity: usize,
}

impl Default for FilterStats {
    fn default() -> Self {
        Self::new(Self::DEFAULT_CAPACITY)
    }
}

impl FilterStats {
    /// The capacity of [`FilterStats::default`].
    pub const DEFAULT_CAPACITY: usize = 4096;

    /// An empty cache of at most `capacity` entries (at least one).
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: Mutex::default(),
            capacity: capacity.max(1),
        }
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.lock().shares.len()
    }

    /// True when nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(crate) fn get(&self, segment: SegmentId, side: Side, key: &FilterKey) -> Option<f64> {
        self.lock()
            .shares
            .get(&(segment, side, key.clone()))
            .copied()
    }

    pub(crate) fn put(&self, segment: SegmentId, side: Side, key: &FilterKey, share: f64) {
        let mut entries = self.lock();
        let slot = (segment, side, key.clone());
        if let Some(old) = entries.shares.get_mut(&slot) {
            *old = share;
            return;
        }
        while entries.shares.len() >= self.capacity {
            match entries.order.pop_front() {
                Some(oldest) => entries.shares.remove(&oldest),
                None => break,
            };
        }
        entries.order.push_back(slot.clone());
        entries.shares.insert(slot, share);
    }

    fn lock(&self) -> MutexGuard<'_, Entries> {
        // A panic while holding the lock cannot leave the entries inconsistent
        // in a way that matters: a share only steers cost.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What a search may remember: the caller's cache and its name for this
/// search's restriction.
#[derive(Clone, Copy)]
pub struct Remember<'a> {
    /// The cache.
    pub stats: &'a FilterStats,
    /// The restriction's stable name.
    pub key: &'a FilterKey,
}

impl Remember<'_> {
    pub(crate) fn get(&self, segment: SegmentId, side: Side) -> Option<f64> {
        self.stats.get(segment, side, self.key)
    }

    pub(crate) fn put(&self, segment: SegmentId, side: Side, share: f64) {
        self.stats.put(segment, side, self.key, share)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_per_segment_side_and_key() {
        let stats = FilterStats::default();
        let (s1, s2) = (SegmentId::generate_random(), SegmentId::generate_random());
        let f = FilterKey::new(Some("f"), None);
        let g = FilterKey::new(Some("g"), None);
        assert_eq!(stats.get(s1, Side::Hamming, &f), None);
        stats.put(s1, Side::Hamming, &f, 0.25);
        assert_eq!(stats.get(s1, Side::Hamming, &f), Some(0.25));
        assert_eq!(stats.get(s2, Side::Hamming, &f), None);
        assert_eq!(stats.get(s1, Side::Text, &f), None);
        assert_eq!(stats.get(s1, Side::Hamming, &g), None);
        stats.put(s1, Side::Hamming, &f, 0.5);
        assert_eq!(stats.get(s1, Side::Hamming, &f), Some(0.5));
        assert_eq!(stats.len(), 1);
    }

    #[test]
    fn a_full_cache_evicts_its_oldest_entry_only() {
        let stats = FilterStats::new(3);
        let s = SegmentId::generate_random();
        let keys: Vec<FilterKey> = (0..5)
            .map(|i| FilterKey::new(Some(&format!("f{i}")), None))
            .collect();
        for (i, key) in keys.iter().enumerate() {
            stats.put(s, Side::Hamming, key, i as f64);
        }
        assert_eq!(stats.len(), 3);
        assert_eq!(stats.get(s, Side::Hamming, &keys[0]), None);
        assert_eq!(stats.get(s, Side::Hamming, &keys[1]), None);
        for (i, key) in keys.iter().enumerate().skip(2) {
            assert_eq!(stats.get(s, Side::Hamming, key), Some(i as f64));
        }
    }
}
