//! Exact k-NN over several tables at once — the segments of one collection
//! — in lockstep, sharing one k-th distance.
//!
//! Searched one after another, each segment would run its multi-index
//! search from radius 0 to its own k-th nearest, which in a segment holding
//! an eighth of the codes lies far beyond the collection's. Here every
//! segment takes step t of its search (table t mod m at substring radius
//! t div m, m its own table count) before any takes step t + 1; after step
//! t each has met every code within distance t (the pigeonhole rule of the
//! single search), so the search ends at the first t where k hits lie
//! within t across all segments, or t reaches the limit. Hits go into one
//! collector whose k-th distance bounds every segment's candidates.
//!
//! A segment whose cost model prefers a scan (a small segment, a selective
//! filter) is scanned first, in full: its hits are then complete at every
//! distance, so the stopping rule holds for it at once. A segment whose
//! probing grows dearer than its scan switches to a scan mid-way, as the
//! single search does.

use super::{KnnHits, Searcher, Warm};
use crate::code::BinaryCode;
use crate::format::Header;
use crate::{MihError, SearchOptions, SearchStats, Strategy};

/// One hit of a search over several tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct SegmentHit {
    /// Hamming distance to the query. Ordered first.
    pub distance: u32,
    /// Which table, by its position in the search's list.
    pub segment: u32,
    /// The code's row in that table.
    pub doc: u32,
}

/// One table of a lockstep search: its bytes, header and options.
pub(crate) struct Part<'a> {
    pub(crate) data: &'a [u8],
    pub(crate) header: &'a Header,
    pub(crate) opts: &'a SearchOptions<'a>,
}

/// The k nearest codes to `query` across `parts`, by (distance, segment,
/// doc), within `limit`; and what the search did in each part.
pub(crate) fn knn_segments(
    parts: &[Part<'_>],
    query: &BinaryCode,
    k: usize,
    limit: u32,
) -> Result<(Vec<SegmentHit>, Vec<SearchStats>), MihError> {
    let Some(first) = parts.first() else {
        return Ok((Vec::new(), Vec::new()));
    };
    match first.header.words_per_code() {
        1 => knn_segments_w::<1>(parts, query, k, limit),
        2 => knn_segments_w::<2>(parts, query, k, limit),
        3 => knn_segments_w::<3>(parts, query, k, limit),
        _ => knn_segments_w::<4>(parts, query, k, limit),
    }
}

/// A segment's search in progress.
struct Lane<'a, const W: usize> {
    segment: u32,
    searcher: Searcher<'a, W>,
    rho: Vec<isize>,
    /// The last level any table reaches; past it the segment is exhausted.
    max_level: usize,
    strategy: Strategy,
    done: bool,
}

fn knn_segments_w<const W: usize>(
    parts: &[Part<'_>],
    query: &BinaryCode,
    k: usize,
    limit: u32,
) -> Result<(Vec<SegmentHit>, Vec<SearchStats>), MihError> {
    let mut hits: KnnHits<(u32, u32)> = KnnHits::new(k, limit);
    let mut bound = limit;
    let mut lanes: Vec<Lane<'_, W>> = Vec::with_capacity(parts.len());
    for (i, part) in parts.iter().enumerate() {
        let searcher = Searcher::<W>::new(part.data, part.header, query, part.opts);
        let segment = i as u32;
        let empty = searcher.n == 0 || searcher.allow.is_some_and(|a| a.is_empty());
        let mut lane = Lane {
            segment,
            rho: searcher.tables.iter().map(|t| t.sub.len as isize).collect(),
            max_level: searcher.tables.iter().map(|t| t.sub.len).max().unwrap_or(0),
            strategy: part.opts.strategy,
            done: k == 0 || empty,
            searcher,
        };
        if !lane.done && lane.searcher.prefers_scan(k, lane.strategy) {
            scan_lane(&mut lane, &mut hits, &mut bound, false);
        }
        lanes.push(lane);
    }
    let mut t = 0usize;
    while lanes.iter().any(|l| !l.done) {
        // Every lane's first misses of step t at once, a link of the
        // chain at a time, rather than one lane's after another's.
        for stage in [Warm::Entries, Warm::Ids, Warm::Codes] {
            for lane in lanes.iter().filter(|l| !l.done) {
                let m = lane.searcher.tables.len();
                lane.searcher.warm(t / m, t % m, stage);
            }
        }
        for lane in lanes.iter_mut().filter(|l| !l.done) {
            step_lane(lane, t, &mut hits, &mut bound)?;
        }
        if t >= limit as usize || hits.count_within(t) >= k {
            break;
        }
        t += 1;
    }
    let stats = lanes
        .into_iter()
        .map(|mut l| {
            if l.searcher.stats.strategy != Strategy::Scan {
                l.searcher.stats.strategy = Strategy::Mih;
            }
            l.searcher.stats
        })
        .collect();
    let best = hits
        .into_best()
        .into_iter()
        .map(|(distance, (segment, doc))| SegmentHit {
            distance,
            segment,
            doc,
        })
        .collect();
    Ok((best, stats))
}

/// Step `t` of one segment: table t mod m at substring radius t div m; or
/// a switch to a scan when the next level costs more than the rest of a
/// scan; or the end, once every table has been probed to its full length.
fn step_lane<const W: usize>(
    lane: &mut Lane<'_, W>,
    t: usize,
    hits: &mut KnnHits<(u32, u32)>,
    bound: &mut u32,
) -> Result<(), MihError> {
    let m = lane.searcher.tables.len();
    let (level, j) = (t / m, t % m);
    if level > lane.max_level {
        lane.done = true;
        return Ok(());
    }
    let s = &mut lane.searcher;
    if j == 0
        && level > 0
        && lane.strategy == Strategy::Auto
        && s.work_ns() + s.level_ns(level) > s.scan_ns()
    {
        scan_lane(lane, hits, bound, true);
        return Ok(());
    }
    if level <= s.tables[j].sub.len {
        let segment = lane.segment;
        s.step(level, j, &lane.rho, bound, &mut |doc, d| {
            hits.add((segment, doc), d)
        })?;
    }
    Ok(())
}

/// Scans the whole segment within the shared bound; the segment is then
/// complete at every distance.
fn scan_lane<const W: usize>(
    lane: &mut Lane<'_, W>,
    hits: &mut KnnHits<(u32, u32)>,
    bound: &mut u32,
    switched: bool,
) {
    let segment = lane.segment;
    // Codes met by the probing so far are met again by the scan: they are
    // dropped here, so each code is added once.
    let probed = lane.searcher.stats.probes > 0;
    let mut seen: std::collections::HashSet<u32> = std::collections::HashSet::new();
    if probed {
        for hits_at in &hits.by_distance {
            for &(seg, doc) in hits_at {
                if seg == segment {
                    seen.insert(doc);
                }
            }
        }
    }
    lane.searcher.scan(*bound, |doc, d| {
        if !seen.contains(&doc) {
            *bound = hits.add((segment, doc), d);
        }
        *bound
    });
    lane.searcher.stats.strategy = Strategy::Scan;
    lane.searcher.stats.switched = switched;
    lane.done = true;
}
