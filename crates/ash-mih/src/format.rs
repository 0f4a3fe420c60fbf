//! The `.mih` byte layout: constants, the header, and the checks that make an
//! opened file safe to search. `docs/FORMAT.md` is the prose version.

use crate::code::{check_bits, words_for};

/// First eight bytes of every `.mih` file.
pub const MAGIC: [u8; 8] = *b"ASH-MIH\n";
/// Last four bytes of every `.mih` file.
pub const FOOTER_MAGIC: [u8; 4] = *b"HIM\n";
/// The format version this code writes and reads.
pub const VERSION: u32 = 1;
/// Bytes of the fixed header part, before the table descriptors.
pub const FIXED_HEADER_LEN: usize = 64;
/// Bytes of one table descriptor.
pub const TABLE_DESC_LEN: usize = 48;
/// Bytes of the footer: body checksum and footer magic.
pub const FOOTER_LEN: usize = 8;
/// Longest substring; keys are `u32`.
pub const MAX_SUBSTRING_BITS: usize = 32;
/// Sections start at multiples of this.
pub const ALIGN: usize = 8;

/// How a table maps a substring value to its bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Directory {
    /// `offsets[key]..offsets[key + 1]`, one entry per possible key.
    Dense,
    /// Sorted distinct `keys`, found by binary search, with `offsets` beside them.
    Sparse,
}

/// Why a `.mih` file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    /// Fewer bytes than the smallest valid file.
    #[error("file is {0} bytes, too short to be a .mih file")]
    TooShort(usize),
    /// The first bytes are not `ASH-MIH\n`: another kind of file.
    #[error("not a .mih file (bad magic)")]
    BadMagic,
    /// A format version this build does not read.
    #[error(".mih format version {0} is not supported (this build reads version {VERSION})")]
    UnsupportedVersion(u32),
    /// The header's own checksum fails: the header is damaged.
    #[error("header checksum mismatch: the header is damaged")]
    HeaderChecksum,
    /// The whole-file checksum fails ([`crate::MihIndex::verify`]).
    #[error("body checksum mismatch: the file is damaged")]
    BodyChecksum,
    /// The file is longer or shorter than its header says.
    #[error("file length {actual} does not match the {expected} bytes the header records (truncated or padded)")]
    LengthMismatch {
        /// Bytes the header records.
        expected: u64,
        /// Bytes there are.
        actual: u64,
    },
    /// A header field is out of range or inconsistent; the text says which.
    #[error("invalid header: {0}")]
    InvalidHeader(String),
    /// A substring table's buckets are inconsistent.
    #[error("corrupt table {table}: {reason}")]
    CorruptTable {
        /// The table, from 0.
        table: usize,
        /// What is wrong with it.
        reason: String,
    },
}

/// One substring table as the header describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableDesc {
    /// First bit of the substring in code order.
    pub start_bit: u32,
    /// Substring length in bits (1..=32).
    pub len_bits: u32,
    /// How keys map to buckets.
    pub directory: Directory,
    /// Dense: `2^len_bits`. Sparse: number of distinct keys.
    pub num_keys: u64,
    /// Sparse only: `num_keys` sorted `u32` keys.
    pub keys_offset: u64,
    /// `num_keys + 1` `u32` bucket starts.
    pub offsets_offset: u64,
    /// `num_codes` ids of `id_bytes` bytes each, grouped by key.
    pub ids_offset: u64,
}

/// The parsed header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Code length in bits.
    pub bits: u32,
    /// Number of codes.
    pub num_codes: u64,
    /// Bytes per stored id (1 to 4).
    pub id_bytes: u32,
    /// Where the code array starts.
    pub codes_offset: u64,
    /// The whole file's length.
    pub file_len: u64,
    /// One descriptor per substring table.
    pub tables: Vec<TableDesc>,
}

impl Header {
    /// Total header length in bytes, descriptors and header checksum included.
    pub fn encoded_len(num_tables: usize) -> usize {
        FIXED_HEADER_LEN + num_tables * TABLE_DESC_LEN + 4
    }

    /// `u64` words per code in the code array.
    pub fn words_per_code(&self) -> usize {
        words_for(self.bits as usize)
    }

    /// Serialises the header, its checksum included.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(Self::encoded_len(self.tables.len()));
        out.extend_from_slice(&MAGIC);
        put_u32(&mut out, VERSION);
        put_u32(&mut out, Self::encoded_len(self.tables.len()) as u32);
        put_u32(&mut out, self.bits);
        put_u32(&mut out, self.words_per_code() as u32);
        put_u64(&mut out, self.num_codes);
        put_u32(&mut out, self.tables.len() as u32);
        put_u32(&mut out, self.id_bytes);
        put_u64(&mut out, self.codes_offset);
        put_u64(&mut out, self.file_len);
        put_u64(&mut out, 0);
        for t in &self.tables {
            put_u32(&mut out, t.start_bit);
            put_u32(&mut out, t.len_bits);
            put_u32(&mut out, t.directory as u32);
            put_u32(&mut out, 0);
            put_u64(&mut out, t.num_keys);
            put_u64(&mut out, t.keys_offset);
            put_u64(&mut out, t.offsets_offset);
            put_u64(&mut out, t.ids_offset);
        }
        let crc = crc32fast::hash(&out);
        put_u32(&mut out, crc);
        out
    }

    /// Parses and checks a header against the whole file's bytes. Cheap: it
    /// reads the header only, and checks every section lies inside the file,
    /// so that later reads need only per-bucket bounds checks.
    pub fn decode(data: &[u8]) -> Result<Self, FormatError> {
        let header_len = check_envelope(data)?;
        let fixed = FixedFields::read(data);
        let m = fixed.check(data.len() as u64, header_len)?;
        let mut tables = Vec::with_capacity(m);
        let mut next_bit = 0u32;
        for j in 0..m {
            let t = TableDesc::read(data, j)?;
            t.check(j, next_bit, &fixed)?;
            next_bit += t.len_bits;
            tables.push(t);
        }
        if next_bit != fixed.bits {
            return Err(invalid(format!(
                "substrings cover {next_bit} of {} bits",
                fixed.bits
            )));
        }
        Ok(Header {
            bits: fixed.bits,
            num_codes: fixed.num_codes,
            id_bytes: fixed.id_bytes,
            codes_offset: fixed.codes_offset,
            file_len: fixed.file_len,
            tables,
        })
    }
}

/// The magic, the version, the header's length and its CRC; returns the
/// header's length.
fn check_envelope(data: &[u8]) -> Result<usize, FormatError> {
    if data.len() < FIXED_HEADER_LEN + 4 + FOOTER_LEN {
        return Err(FormatError::TooShort(data.len()));
    }
    if data[..8] != MAGIC {
        return Err(FormatError::BadMagic);
    }
    let version = get_u32(data, 8);
    if version != VERSION {
        return Err(FormatError::UnsupportedVersion(version));
    }
    let header_len = get_u32(data, 12) as usize;
    if header_len < FIXED_HEADER_LEN + 4 || header_len > data.len() - FOOTER_LEN {
        return Err(invalid(format!("header length {header_len} out of range")));
    }
    let stored_crc = get_u32(data, header_len - 4);
    if crc32fast::hash(&data[..header_len - 4]) != stored_crc {
        return Err(FormatError::HeaderChecksum);
    }
    Ok(header_len)
}

/// The header's fields before the table descriptors.
struct FixedFields {
    bits: u32,
    words: u32,
    num_codes: u64,
    tables: usize,
    id_bytes: u32,
    codes_offset: u64,
    file_len: u64,
}

impl FixedFields {
    fn read(data: &[u8]) -> Self {
        Self {
            bits: get_u32(data, 16),
            words: get_u32(data, 20),
            num_codes: get_u64(data, 24),
            tables: get_u32(data, 32) as usize,
            id_bytes: get_u32(data, 36),
            codes_offset: get_u64(data, 40),
            file_len: get_u64(data, 48),
        }
    }

    /// Checks the fields against each other and the file; returns the
    /// number of tables.
    fn check(&self, data_len: u64, header_len: usize) -> Result<usize, FormatError> {
        let (bits, words, num_codes, id_bytes) =
            (self.bits, self.words, self.num_codes, self.id_bytes);
        if self.file_len != data_len {
            return Err(FormatError::LengthMismatch {
                expected: self.file_len,
                actual: data_len,
            });
        }
        if let Err(e) = check_bits(bits as usize) {
            return Err(invalid(e.to_string()));
        }
        if words as usize != words_for(bits as usize) {
            return Err(invalid(format!("{words} words per code for {bits} bits")));
        }
        if num_codes > u32::MAX as u64 {
            return Err(invalid(format!(
                "{num_codes} codes exceed the u32 doc id space"
            )));
        }
        if !(1..=4).contains(&id_bytes) || num_codes > 1u64 << (8 * id_bytes) {
            return Err(invalid(format!(
                "{id_bytes}-byte ids for {num_codes} codes"
            )));
        }
        let m = self.tables;
        if m == 0 || m > bits as usize || header_len != Header::encoded_len(m) {
            return Err(invalid(format!("{m} substrings for {bits} bits")));
        }
        let code_bytes = num_codes * words as u64 * 8;
        check_section(self.codes_offset, code_bytes, self.file_len, "code array")?;
        Ok(m)
    }
}

impl TableDesc {
    /// Table `j`'s descriptor.
    fn read(data: &[u8], j: usize) -> Result<Self, FormatError> {
        let at = FIXED_HEADER_LEN + j * TABLE_DESC_LEN;
        Ok(TableDesc {
            start_bit: get_u32(data, at),
            len_bits: get_u32(data, at + 4),
            directory: match get_u32(data, at + 8) {
                0 => Directory::Dense,
                1 => Directory::Sparse,
                other => return Err(invalid(format!("table {j}: directory kind {other}"))),
            },
            num_keys: get_u64(data, at + 16),
            keys_offset: get_u64(data, at + 24),
            offsets_offset: get_u64(data, at + 32),
            ids_offset: get_u64(data, at + 40),
        })
    }

    /// Checks that table `j` continues the partition at `next_bit` and that
    /// its sections lie inside the file.
    fn check(&self, j: usize, next_bit: u32, fixed: &FixedFields) -> Result<(), FormatError> {
        let (bits, num_codes, file_len) = (fixed.bits, fixed.num_codes, fixed.file_len);
        if self.start_bit != next_bit
            || self.len_bits == 0
            || self.len_bits as usize > MAX_SUBSTRING_BITS
            || self.start_bit + self.len_bits > bits
        {
            return Err(invalid(format!(
                "table {j}: substring bits {}..{} do not continue the partition of {bits} bits",
                self.start_bit,
                self.start_bit as u64 + self.len_bits as u64
            )));
        }
        match self.directory {
            Directory::Dense if self.num_keys != 1u64 << self.len_bits => {
                return Err(invalid(format!(
                    "table {j}: dense directory of {} keys",
                    self.num_keys
                )));
            }
            Directory::Dense => {}
            Directory::Sparse if self.num_keys > num_codes => {
                return Err(invalid(format!(
                    "table {j}: {} keys for {num_codes} codes",
                    self.num_keys
                )));
            }
            Directory::Sparse => {
                check_section(self.keys_offset, self.num_keys * 4, file_len, "keys")?
            }
        }
        check_section(
            self.offsets_offset,
            (self.num_keys + 1) * 4,
            file_len,
            "offsets",
        )?;
        check_section(
            self.ids_offset,
            num_codes * fixed.id_bytes as u64,
            file_len,
            "ids",
        )
    }
}

/// Checks the footer magic and the checksum of everything before it.
pub fn verify_body(data: &[u8]) -> Result<(), FormatError> {
    let body_len = data.len() - FOOTER_LEN;
    if data[body_len + 4..] != FOOTER_MAGIC {
        return Err(FormatError::BodyChecksum);
    }
    if crc32fast::hash(&data[..body_len]) != get_u32(data, body_len) {
        return Err(FormatError::BodyChecksum);
    }
    Ok(())
}

fn check_section(offset: u64, len: u64, file_len: u64, what: &str) -> Result<(), FormatError> {
    let end = offset.checked_add(len);
    match end {
        Some(end) if offset.is_multiple_of(ALIGN as u64) && end <= file_len - FOOTER_LEN as u64 => Ok(()),
        _ => Err(invalid(format!(
            "{what} section at {offset}+{len} lies outside the {file_len}-byte file or is misaligned"
        ))),
    }
}

fn invalid(reason: String) -> FormatError {
    FormatError::InvalidHeader(reason)
}

/// Appends a little-endian `u32`.
pub fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

/// Appends a little-endian `u64`.
pub fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

/// Reads a little-endian `u32`; callers have checked `at + 4 <= data.len()`.
#[inline(always)]
pub fn get_u32(data: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&data[at..at + 4]);
    u32::from_le_bytes(b)
}

/// Reads a little-endian `u64`; callers have checked `at + 8 <= data.len()`.
#[inline(always)]
pub fn get_u64(data: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&data[at..at + 8]);
    u64::from_le_bytes(b)
}
