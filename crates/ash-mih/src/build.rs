//! Building a `.mih` byte image from codes in doc-id order.
//!
//! Each substring table is a counting sort of the doc ids by their substring
//! value: one pass counts bucket sizes, a prefix sum turns counts into bucket
//! starts, a second pass scatters ids. Ids inside a bucket stay ascending.
//! Tables are independent and built in parallel.

use rayon::prelude::*;

use super::format::{
    put_u32, put_u64, Directory, Header, TableDesc, ALIGN, FOOTER_MAGIC, MAX_SUBSTRING_BITS,
};
use super::substring::Substring;
use super::MihError;
use crate::code::{bytes_for, check_bits, words_for, BinaryCode};

/// Builds `.mih` images. `MihBuilder::new(bits)?.build(&codes)?`.
#[derive(Debug, Clone)]
pub struct MihBuilder {
    bits: usize,
    substrings: Option<usize>,
}

/// Largest dense directory per code, in keys; above it a sparse one is smaller.
const DENSE_KEYS_PER_CODE: u64 = 4;
/// A dense directory of up to this many keys is always fine.
const DENSE_KEYS_FLOOR: u64 = 1 << 16;

impl MihBuilder {
    /// A builder for codes of `bits` bits (1..=256).
    pub fn new(bits: usize) -> Result<Self, MihError> {
        check_bits(bits)?;
        Ok(Self {
            bits,
            substrings: None,
        })
    }

    /// Overrides the number of substrings `m` (otherwise chosen from n).
    pub fn substrings(mut self, m: usize) -> Self {
        self.substrings = Some(m);
        self
    }

    /// Builds from codes that all have this builder's length.
    ///
    /// ```
    /// use ash_mih::{code::BinaryCode, MihBuilder, MihIndex};
    /// let codes = ash_mih::synth::generate(1_000, 48, ash_mih::synth::Spread::Uniform, 1, 2).unwrap();
    /// let table = MihBuilder::new(48).unwrap().build(&codes).unwrap();
    /// let index = MihIndex::open(&table[..]).unwrap();
    /// index.verify().unwrap();
    /// assert_eq!(index.code(7), Some(codes[7]));
    /// ```
    pub fn build(&self, codes: &[BinaryCode]) -> Result<Vec<u8>, MihError> {
        let w = words_for(self.bits);
        let mut words = Vec::with_capacity(codes.len() * w);
        for (i, c) in codes.iter().enumerate() {
            if c.bits() != self.bits {
                return Err(MihError::InvalidArgument(format!(
                    "code {i} has {} bits, the table {}",
                    c.bits(),
                    self.bits
                )));
            }
            words.extend_from_slice(c.words());
        }
        self.build_words(words)
    }

    /// Builds from rows of packed bytes (numpy `packbits` order), `bytes_for(bits)` each.
    pub fn build_packed(&self, packed: &[u8]) -> Result<Vec<u8>, MihError> {
        let row = bytes_for(self.bits);
        if !packed.len().is_multiple_of(row) {
            return Err(MihError::InvalidArgument(format!(
                "{} bytes is not a whole number of {row}-byte codes",
                packed.len()
            )));
        }
        let w = words_for(self.bits);
        let mut words = vec![0u64; packed.len() / row * w];
        words
            .par_chunks_mut(w)
            .zip(packed.par_chunks(row))
            .enumerate()
            .try_for_each(|(i, (out, bytes))| {
                let code = BinaryCode::from_packed(bytes, self.bits)
                    .map_err(|e| MihError::InvalidArgument(format!("code {i}: {e}")))?;
                out.copy_from_slice(code.words());
                Ok::<(), MihError>(())
            })?;
        self.build_words(words)
    }

    /// Builds from in-memory words, `words_for(bits)` per code, bits past the
    /// length zero.
    pub fn build_words(&self, words: Vec<u64>) -> Result<Vec<u8>, MihError> {
        let w = words_for(self.bits);
        let n = words.len() / w;
        if n > u32::MAX as usize {
            return Err(MihError::InvalidArgument(format!(
                "{n} codes exceed the u32 doc id space"
            )));
        }
        let m = match self.substrings {
            Some(m) => check_substrings(self.bits, m)?,
            None => default_substrings(self.bits, n),
        };
        let subs = Substring::partition(self.bits, m);
        let id_bytes = id_bytes_for(n);

        let tables: Vec<BuiltTable> = subs.par_iter().map(|s| build_table(&words, w, s)).collect();

        // Lay out sections after the header, each aligned.
        let header_len = Header::encoded_len(m) as u64;
        let mut at = align(header_len);
        let codes_offset = at;
        at = align(at + (n * w * 8) as u64);
        let mut descs = Vec::with_capacity(m);
        for (s, t) in subs.iter().zip(&tables) {
            let keys_offset = if t.keys.is_empty() { 0 } else { at };
            at = align(at + t.keys.len() as u64 * 4);
            let offsets_offset = at;
            at = align(at + t.offsets.len() as u64 * 4);
            let ids_offset = at;
            at = align(at + (n * id_bytes) as u64);
            descs.push(TableDesc {
                start_bit: s.start as u32,
                len_bits: s.len as u32,
                directory: t.directory,
                num_keys: t.offsets.len() as u64 - 1,
                keys_offset,
                offsets_offset,
                ids_offset,
            });
        }
        let file_len = at + 8;
        let header = Header {
            bits: self.bits as u32,
            num_codes: n as u64,
            id_bytes: id_bytes as u32,
            codes_offset,
            file_len,
            tables: descs,
        };

        let mut out = Vec::with_capacity(file_len as usize);
        out.extend_from_slice(&header.encode());
        pad(&mut out);
        for word in &words {
            put_u64(&mut out, *word);
        }
        pad(&mut out);
        for t in &tables {
            for &k in &t.keys {
                put_u32(&mut out, k);
            }
            pad(&mut out);
            for &o in &t.offsets {
                put_u32(&mut out, o);
            }
            pad(&mut out);
            for &id in &t.ids {
                out.extend_from_slice(&id.to_le_bytes()[..id_bytes]);
            }
            pad(&mut out);
        }
        debug_assert_eq!(out.len() as u64 + 8, file_len);
        let crc = crc32fast::hash(&out);
        put_u32(&mut out, crc);
        out.extend_from_slice(&FOOTER_MAGIC);
        Ok(out)
    }
}

/// Norouzi et al.'s choice, m ≈ bits / log2 n, kept so that every substring
/// fits a `u32` key and no substring has many more values than there are
/// codes. Buckets then hold about one code each.
pub fn default_substrings(bits: usize, n: usize) -> usize {
    let min_m = bits.div_ceil(MAX_SUBSTRING_BITS);
    let log_n = (n.max(2) as f64).log2();
    let mut m = ((bits as f64 / log_n).round() as usize)
        .clamp(min_m, bits)
        .max(1);
    // One more table when the longest substring has more values than there
    // are codes: its directory would outweigh its ids, for little speed.
    if m < bits && bits.div_ceil(m) as f64 > log_n.ceil() {
        m += 1;
    }
    m
}

fn check_substrings(bits: usize, m: usize) -> Result<usize, MihError> {
    let min_m = bits.div_ceil(MAX_SUBSTRING_BITS);
    if m < min_m || m > bits {
        return Err(MihError::InvalidArgument(format!(
            "{m} substrings for {bits} bits: need {min_m}..={bits} (substrings of at most {MAX_SUBSTRING_BITS} bits)"
        )));
    }
    Ok(m)
}

/// Smallest whole number of bytes that holds every doc id below n.
fn id_bytes_for(n: usize) -> usize {
    (1..=4).find(|&b| n as u64 <= 1u64 << (8 * b)).unwrap_or(4)
}

struct BuiltTable {
    directory: Directory,
    keys: Vec<u32>,
    offsets: Vec<u32>,
    ids: Vec<u32>,
}

fn build_table(words: &[u64], w: usize, sub: &Substring) -> BuiltTable {
    let n = words.len() / w;
    let keys: Vec<u32> = words.chunks_exact(w).map(|c| sub.extract(c)).collect();
    let space = 1u64 << sub.len;
    if space <= DENSE_KEYS_FLOOR.max(DENSE_KEYS_PER_CODE * n as u64) {
        let mut offsets = vec![0u32; space as usize + 1];
        for &k in &keys {
            offsets[k as usize + 1] += 1;
        }
        for i in 1..offsets.len() {
            offsets[i] += offsets[i - 1];
        }
        let mut next = offsets.clone();
        let mut ids = vec![0u32; n];
        for (id, &k) in keys.iter().enumerate() {
            let slot = &mut next[k as usize];
            ids[*slot as usize] = id as u32;
            *slot += 1;
        }
        BuiltTable {
            directory: Directory::Dense,
            keys: Vec::new(),
            offsets,
            ids,
        }
    } else {
        let mut pairs: Vec<(u32, u32)> = keys
            .iter()
            .enumerate()
            .map(|(i, &k)| (k, i as u32))
            .collect();
        pairs.sort_unstable();
        let mut distinct = Vec::new();
        let mut offsets = Vec::new();
        for (pos, &(k, _)) in pairs.iter().enumerate() {
            if distinct.last() != Some(&k) {
                distinct.push(k);
                offsets.push(pos as u32);
            }
        }
        offsets.push(n as u32);
        BuiltTable {
            directory: Directory::Sparse,
            keys: distinct,
            offsets,
            ids: pairs.into_iter().map(|(_, id)| id).collect(),
        }
    }
}

fn align(at: u64) -> u64 {
    at.div_ceil(ALIGN as u64) * ALIGN as u64
}

fn pad(out: &mut Vec<u8>) {
    out.resize(align(out.len() as u64) as usize, 0);
}
