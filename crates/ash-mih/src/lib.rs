//! Multi-index hashing (MIH): exact Hamming range and k-nearest-neighbour
//! search over a byte image of binary codes. Knows bytes and codes only:
//! no tantivy, no HTTP, no images, no ONNX.
//!
//! - [`code`]: binary codes of 1..=256 bits and their Hamming distance;
//! - [`MihBuilder`], [`MihIndex`]: the `.mih` table, built and searched;
//! - [`npy`]: packed codes in numpy `.npy` files;
//! - [`synth`]: deterministic synthetic code sets;
//! - [`fsio`]: atomic, durable file writes.
//!
//! # How does it work?
//!
//! Each b-bit code is cut into m disjoint substrings, and for each substring
//! a table maps the substring's value to the ids of the codes that have it.
//! If two codes differ in at most r bits, then by the pigeonhole principle
//! one of their m substrings differs in at most ⌊r/m⌋ bits. So a radius-r
//! search only needs, in each table, the buckets whose key lies within
//! ⌊r/m⌋ of the query's substring: a few hundred lookups instead of a scan.
//! Every candidate is then checked against the full code (the code array
//! sits in the same file, in doc-id order), so the answer is exact.
//!
//! k-NN grows the search radius step by step: probing substring j at
//! radius s makes every code within distance `s·m + j` final (Norouzi,
//! Punjani, Fleet, TPAMI 2014). It stops as soon as k final results exist,
//! which keeps ties exact: hits are ordered by (distance, doc id).
//!
//! A code found in several tables is counted once without any per-query
//! memory: it is accepted only in the table and radius step where the search
//! met it first, which is known from its per-substring distances.
//!
//! At millions of codes every probe is a chain of memory misses: the key's
//! directory entry, then the bucket's ids, then each candidate's code,
//! anywhere in the code array. The probe loop keeps many chains in flight
//! at once: it asks for the directory entries of the next 16 keys, the ids
//! of the next 8 buckets and the codes of the next 6 buckets' first docs
//! while it checks the current one, and inside a bucket it asks for codes
//! 64 candidates ahead. A search over several tables (the segments of an
//! index) asks for every table's next entries, then their first ids, then
//! their first codes, before it probes any.
//!
//! A cost model compares the expected MIH work (bucket lookups and random
//! code checks) with a sequential popcount scan (of all codes, or of an
//! allow-list) and takes the cheaper; it also abandons MIH for a scan when a
//! k-NN search turns out costlier than predicted. Both paths return the same
//! hits.
//!
//! The byte image is described in `docs/FORMAT.md`. [`MihIndex`] works over
//! any `D: AsRef<[u8]>` (a `Vec<u8>`, an mmap, a tantivy `OwnedBytes`);
//! opening checks the header and section bounds only, [`MihIndex::verify`]
//! checks the whole-file checksum and the tables' consistency.
//!
//! ```
//! use ash_mih::code::BinaryCode;
//! use ash_mih::{MihBuilder, MihIndex, SearchOptions};
//!
//! let codes: Vec<BinaryCode> = ["0f0f0f", "0f0f0e", "f0f0f0", "0f0f00"]
//!     .iter()
//!     .map(|h| BinaryCode::from_hex(h, 24).unwrap())
//!     .collect();
//! let bytes = MihBuilder::new(24).unwrap().build(&codes).unwrap();
//! let index = MihIndex::open(bytes).unwrap();
//! let query = BinaryCode::from_hex("0f0f0f", 24).unwrap();
//! let hits = index.knn(&query, 2, &SearchOptions::default()).unwrap();
//! assert_eq!(hits.iter().map(|h| (h.doc, h.distance)).collect::<Vec<_>>(), [(0, 0), (1, 1)]);
//! let near = index.range(&query, 4, &SearchOptions::default()).unwrap();
//! assert_eq!(near.len(), 3);
//! ```

#![deny(missing_docs)]
#![deny(unsafe_code)]

pub mod code;
pub mod fsio;
pub mod npy;
pub mod synth;

mod batch;
mod build;
mod cost;
// The memory map: one `unsafe` call, its SAFETY argument beside it.
#[allow(unsafe_code)]
mod file;
mod format;
// CPU instructions (SIMD popcount, prefetch): each `unsafe` with its SAFETY argument.
#[allow(unsafe_code)]
mod kernel;
mod search;
mod substring;

pub use batch::{search_batch, BatchQuery};
pub use build::MihBuilder;
pub use file::{open_mmap, MihFileError};
pub use format::FormatError;
pub use search::{DocSet, NearestAmong, SearchOptions, SearchStats, SegmentHit, Strategy};
pub use substring::Substring;

use crate::code::{BinaryCode, CodeError};
use format::Header;

/// One search result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct Hit {
    /// Hamming distance to the query. Ordered first.
    pub distance: u32,
    /// Row number of the code in build order (a segment-local doc id).
    pub doc: u32,
}

/// Errors of the MIH engine.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MihError {
    /// The bytes are not a valid `.mih` image (damaged, truncated, another format).
    #[error(transparent)]
    Format(#[from] FormatError),
    /// A query code or an input code is not usable (length, characters).
    #[error(transparent)]
    Code(#[from] CodeError),
    /// A call's argument is out of range (bits, substrings, k); the text says which.
    #[error("{0}")]
    InvalidArgument(String),
}

/// An opened `.mih` image. Cheap to open; searches are `&self` and may run
/// from many threads at once.
pub struct MihIndex<D> {
    data: D,
    header: Header,
}

impl<D: AsRef<[u8]>> MihIndex<D> {
    /// Opens an image, checking the header, its checksum and that every
    /// section lies inside the data. Does not read the tables.
    ///
    /// ```
    /// use ash_mih::{FormatError, MihError, MihIndex};
    /// let refused = MihIndex::open(b"not a table".to_vec());
    /// assert!(matches!(refused, Err(MihError::Format(FormatError::TooShort(11)))));
    /// ```
    pub fn open(data: D) -> Result<Self, MihError> {
        let header = Header::decode(data.as_ref())?;
        Ok(Self { data, header })
    }

    /// Full check: the body checksum and the tables' internal consistency
    /// (bucket starts ascending, every id in range and listed once per table,
    /// sparse keys strictly ascending). Linear in the file size.
    pub fn verify(&self) -> Result<(), MihError> {
        let bytes = self.data.as_ref();
        format::verify_body(bytes)?;
        search::verify_tables(bytes, &self.header)?;
        Ok(())
    }

    /// Number of codes (doc ids `0..len()`).
    /// Number of codes in the table.
    pub fn len(&self) -> usize {
        self.header.num_codes as usize
    }

    /// Whether the table holds no code.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Code length in bits.
    pub fn bits(&self) -> usize {
        self.header.bits as usize
    }

    /// The substrings the tables index.
    pub fn substrings(&self) -> Vec<Substring> {
        self.header
            .tables
            .iter()
            .map(|t| Substring {
                start: t.start_bit as usize,
                len: t.len_bits as usize,
            })
            .collect()
    }

    /// Total bytes of the image.
    pub fn size_bytes(&self) -> usize {
        self.data.as_ref().len()
    }

    /// The code stored for `doc`, or `None` past the end.
    pub fn code(&self, doc: u32) -> Option<BinaryCode> {
        let w = self.header.words_per_code();
        let at = self.header.codes_offset as usize + doc as usize * w * 8;
        if doc as u64 >= self.header.num_codes {
            return None;
        }
        let bytes = self.data.as_ref().get(at..at + w * 8)?;
        let words: Vec<u64> = bytes
            .chunks_exact(8)
            .map(|c| format::get_u64(c, 0))
            .collect();
        BinaryCode::from_words(&words, self.bits()).ok()
    }

    /// Every doc within Hamming distance `radius` of `query`, ordered by
    /// (distance, doc).
    pub fn range(
        &self,
        query: &BinaryCode,
        radius: u32,
        opts: &SearchOptions,
    ) -> Result<Vec<Hit>, MihError> {
        Ok(self.range_with_stats(query, radius, opts)?.0)
    }

    /// The `k` nearest docs to `query`, ordered by (distance, doc); ties at
    /// the k-th distance go to the lower doc ids. Fewer than `k` when fewer
    /// docs pass the filters (or lie within `opts.max_distance`).
    pub fn knn(
        &self,
        query: &BinaryCode,
        k: usize,
        opts: &SearchOptions,
    ) -> Result<Vec<Hit>, MihError> {
        Ok(self.knn_with_stats(query, k, opts)?.0)
    }

    /// [`Self::range`], with what the search did.
    pub fn range_with_stats(
        &self,
        query: &BinaryCode,
        radius: u32,
        opts: &SearchOptions,
    ) -> Result<(Vec<Hit>, SearchStats), MihError> {
        self.check_query(query)?;
        search::range(self.data.as_ref(), &self.header, query, radius, opts)
    }

    /// [`Self::knn`], with what the search did.
    pub fn knn_with_stats(
        &self,
        query: &BinaryCode,
        k: usize,
        opts: &SearchOptions,
    ) -> Result<(Vec<Hit>, SearchStats), MihError> {
        self.check_query(query)?;
        search::knn(self.data.as_ref(), &self.header, query, k, opts)
    }

    /// A k-NN among docs the caller feeds in ascending blocks (a filter's
    /// matches), each checked against `query`: exact, and cheaper than an
    /// allow-list when the matches are few, since nothing is collected
    /// first. `opts.alive` and `opts.max_distance` apply; `opts.allow` and
    /// `opts.strategy` do not.
    ///
    /// ```
    /// use ash_mih::code::BinaryCode;
    /// use ash_mih::{MihBuilder, MihIndex, SearchOptions};
    ///
    /// let codes: Vec<BinaryCode> = ["0f", "0e", "f0", "0c"]
    ///     .iter()
    ///     .map(|h| BinaryCode::from_hex(h, 8).unwrap())
    ///     .collect();
    /// let table = MihIndex::open(MihBuilder::new(8).unwrap().build(&codes).unwrap()).unwrap();
    /// let query = BinaryCode::from_hex("0f", 8).unwrap();
    /// let mut walk = table.nearest_among(&query, 1, &SearchOptions::default()).unwrap();
    /// walk.feed(&[2, 3]); // doc 0 and doc 1 are not among them
    /// let (hits, _) = walk.finish();
    /// assert_eq!((hits[0].doc, hits[0].distance), (3, 2));
    /// ```
    pub fn nearest_among<'a>(
        &'a self,
        query: &BinaryCode,
        k: usize,
        opts: &SearchOptions<'a>,
    ) -> Result<NearestAmong<'a>, MihError> {
        self.check_query(query)?;
        Ok(NearestAmong::new(
            self.data.as_ref(),
            &self.header,
            query,
            k,
            opts,
        ))
    }

    fn check_query(&self, query: &BinaryCode) -> Result<(), MihError> {
        if query.bits() != self.bits() {
            return Err(CodeError::LengthMismatch(query.bits(), self.bits()).into());
        }
        Ok(())
    }
}
/// The `k` nearest codes to `query` across several tables — the segments
/// of one collection — searched in lockstep with one shared k-th distance,
/// each with its own options (allow-list, deletes, strategy); ordered by
/// (distance, table, doc). `max_distance` bounds every table. The tables
/// must hold codes of the query's length. Returns what the search did in
/// each table, in the order given.
///
/// ```
/// use ash_mih::code::BinaryCode;
/// use ash_mih::{knn_segments, MihBuilder, MihIndex, SearchOptions};
///
/// let table = |hexes: &[&str]| {
///     let codes: Vec<BinaryCode> =
///         hexes.iter().map(|h| BinaryCode::from_hex(h, 16).unwrap()).collect();
///     MihIndex::open(MihBuilder::new(16).unwrap().build(&codes).unwrap()).unwrap()
/// };
/// let (a, b) = (table(&["ffff", "0f0f"]), table(&["0f0e", "00ff"]));
/// let opts = SearchOptions::default();
/// let query = BinaryCode::from_hex("0f0f", 16).unwrap();
/// let (hits, _) = knn_segments(&[(&a, opts), (&b, opts)], &query, 2, None).unwrap();
/// let found: Vec<_> = hits.iter().map(|h| (h.segment, h.doc, h.distance)).collect();
/// assert_eq!(found, [(0, 1, 0), (1, 0, 1)]);
/// ```
pub fn knn_segments<D: AsRef<[u8]>>(
    tables: &[(&MihIndex<D>, SearchOptions<'_>)],
    query: &BinaryCode,
    k: usize,
    max_distance: Option<u32>,
) -> Result<(Vec<SegmentHit>, Vec<SearchStats>), MihError> {
    for (table, _) in tables {
        table.check_query(query)?;
    }
    let limit = max_distance
        .unwrap_or(query.bits() as u32)
        .min(query.bits() as u32);
    let parts: Vec<search::Part<'_>> = tables
        .iter()
        .map(|(table, opts)| search::Part {
            data: table.data.as_ref(),
            header: &table.header,
            opts,
        })
        .collect();
    search::knn_segments(&parts, query, k, limit)
}
