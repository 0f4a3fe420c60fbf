//! An index directory: the tantivy index (with the `binary_hash` plugin)
//! and `ash-index.json`, the configuration it was made from, including the
//! encoder its codes come from (pinned by manifest digest, so that codes of
//! another model are never mixed in).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use tantivy::schema::Field;

use crate::config::{ConfigError, EncoderRef, IndexConfig, ID_FIELD};
use crate::error::ErrorKind;
use ash_encoder::manifest::{read_plugin, EncoderPin};
use ash_encoder::{Encoder, EncoderError, EncoderOptions, Mismatch};
use ash_tantivy::{HashIndex, IndexError};

/// The configuration file inside an index directory.
pub const CONFIG_FILE: &str = "ash-index.json";

/// Why an index directory could not be made, opened or changed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The directory holds no `ash-index.json`.
    #[error("{}: not an ash-search index ({source}); create one with `ash-search init`", dir.display())]
    NotAnIndex {
        /// The directory.
        dir: PathBuf,
        /// Why the configuration could not be read.
        source: std::io::Error,
    },
    /// `init` into a directory that already holds an index.
    #[error("{}: an index already exists here", .0.display())]
    AlreadyExists(PathBuf),
    /// `init` into a directory holding a tantivy index it did not make.
    #[error("{}: holds a tantivy index ({TANTIVY_META}) that is not empty (or not readable) \
             but no {CONFIG_FILE}; it was not made by `ash-search init`, so it is left alone", .0.display())]
    ForeignIndex(PathBuf),
    /// A configuration (given to `init`, or the index's own) is refused.
    #[error("{}: {source}", path.display())]
    Config {
        /// The configuration file.
        path: PathBuf,
        /// What is wrong with it.
        source: ConfigError,
    },
    /// The index has no encoder and none was given.
    #[error("{}: this index has no encoder yet; give one with --encoder DIR \
             (an encoder plugin, e.g. plugin/models/ash-synfundus-48)", .0.display())]
    NoEncoder(PathBuf),
    /// Reading or writing a file of the index failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The failure.
        source: std::io::Error,
    },
    /// The tantivy index or its code tables failed.
    #[error(transparent)]
    Index(#[from] IndexError),
    /// The encoder could not be read, or is not the index's.
    #[error(transparent)]
    Encoder(#[from] EncoderError),
}

impl StoreError {
    /// The class of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            StoreError::NotAnIndex { .. } => ErrorKind::NotFound,
            StoreError::AlreadyExists(_) | StoreError::ForeignIndex(_) => ErrorKind::Conflict,
            StoreError::Config { .. } | StoreError::NoEncoder(_) => ErrorKind::InvalidInput,
            StoreError::Io { .. } => ErrorKind::Io,
            StoreError::Index(e) => e.kind().into(),
            StoreError::Encoder(e) => e.kind().into(),
        }
    }
}

impl From<tantivy::TantivyError> for StoreError {
    fn from(e: tantivy::TantivyError) -> Self {
        StoreError::Index(e.into())
    }
}

fn io_at(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_owned(),
        source,
    }
}

/// An opened index directory.
pub struct Store {
    pub dir: PathBuf,
    /// The configuration as read when the index was opened.
    pub config: IndexConfig,
    pub index: HashIndex,
    pub id_field: Field,
    /// The pinned encoder; changes once, when an ingest pins one.
    pin: Mutex<Option<EncoderPin>>,
}

impl Store {
    /// Creates an index in `dir` (created if missing; must hold no index).
    /// An encoder given as a directory is read and pinned now.
    ///
    /// `ash-index.json` is written last: it is what makes a directory an
    /// index. A directory that has tantivy's files but no `ash-index.json`
    /// is an `init` that was interrupted; when it holds no documents it is
    /// made again, so `init` can always be redone.
    pub fn init(dir: &Path, mut config: IndexConfig) -> Result<Self, StoreError> {
        let schema = config.schema()?;
        if let Some(EncoderRef::Dir(plugin)) = &config.hash.encoder {
            let plugin = read_plugin(Path::new(plugin))?;
            check_bits(&plugin.pin, config.hash.bits)?;
            config.hash.encoder = Some(EncoderRef::Pinned(plugin.pin));
        }
        fs::create_dir_all(dir).map_err(io_at(dir))?;
        if dir.join(CONFIG_FILE).exists() {
            return Err(StoreError::AlreadyExists(dir.to_owned()));
        }
        if dir.join(TANTIVY_META).exists() {
            clear_unfinished_init(dir)?;
        }
        let index = HashIndex::create_in_dir(dir, schema)?;
        write_config(dir, &config)?;
        Self::wrap(dir, config, index)
    }

    /// Opens an index directory made by [`Store::init`].
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let config = read_config(dir)?;
        let index = HashIndex::open_in_dir(dir)?;
        Self::wrap(dir, config, index)
    }

    fn wrap(dir: &Path, config: IndexConfig, index: HashIndex) -> Result<Self, StoreError> {
        let id_field = index.schema().get_field(ID_FIELD)?;
        let pin = match &config.hash.encoder {
            Some(EncoderRef::Pinned(pin)) => Some(pin.clone()),
            _ => None,
        };
        Ok(Self {
            dir: dir.to_owned(),
            config,
            index,
            id_field,
            pin: Mutex::new(pin),
        })
    }
}

impl Store {
    /// Bytes on disk per file extension (`mih`, `store`, `json`, ...).
    pub fn bytes_by_extension(&self) -> Result<BTreeMap<String, u64>, StoreError> {
        let mut by_ext = BTreeMap::new();
        for entry in fs::read_dir(&self.dir).map_err(io_at(&self.dir))? {
            let entry = entry.map_err(io_at(&self.dir))?;
            let meta = entry.metadata().map_err(io_at(&entry.path()))?;
            if meta.is_file() {
                let name = entry.file_name().to_string_lossy().to_string();
                let ext = name.rsplit_once('.').map_or(name.as_str(), |(_, e)| e);
                *by_ext.entry(ext.to_string()).or_default() += meta.len();
            }
        }
        Ok(by_ext)
    }

    /// The encoder this index's codes come from, once pinned.
    pub fn encoder_pin(&self) -> Option<EncoderPin> {
        self.pin.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Loads the encoder for this index: `explicit` or the pinned plugin
    /// directory. Another encoder than the pinned one is refused. An index
    /// without a pin records the encoder at its first ingest
    /// ([`Store::pin_encoder`]), under the writer lock.
    pub fn open_encoder(
        &self,
        explicit: Option<&Path>,
        options: &EncoderOptions,
    ) -> Result<Encoder, StoreError> {
        let dir: PathBuf = match (explicit, &self.config.hash.encoder) {
            (Some(d), _) => d.to_owned(),
            (None, Some(EncoderRef::Pinned(p))) => p.dir.clone(),
            (None, Some(EncoderRef::Dir(d))) => PathBuf::from(d),
            (None, None) => return Err(StoreError::NoEncoder(self.dir.clone())),
        };
        // Refuse a mismatch before paying for ONNX Runtime.
        let plugin = read_plugin(&dir)?;
        self.check_encoder(&plugin.pin)?;
        Ok(Encoder::from_plugin(plugin, options)?)
    }

    /// Refuses an encoder whose codes this index cannot hold.
    pub fn check_encoder(&self, pin: &EncoderPin) -> Result<(), StoreError> {
        check_bits(pin, self.config.hash.bits)?;
        if let Some(own) = self.encoder_pin() {
            own.check_same(pin)?;
        }
        Ok(())
    }

    /// Records `pin` as the index's encoder unless one is pinned already
    /// (then it must be the same). The caller holds the index writer, which
    /// is tantivy's lock on the directory: the configuration is read again
    /// from disk under it, so two ingests with different encoders cannot
    /// both pin theirs, and the loser is refused before it writes a code.
    pub fn pin_encoder(
        &self,
        pin: &EncoderPin,
        _writer: &tantivy::IndexWriter,
    ) -> Result<(), StoreError> {
        let mut held = self.pin.lock().unwrap_or_else(|e| e.into_inner());
        let mut on_disk = read_config(&self.dir)?;
        check_bits(pin, on_disk.hash.bits)?;
        if let Some(EncoderRef::Pinned(own)) = &on_disk.hash.encoder {
            own.check_same(pin)?;
            *held = Some(own.clone());
            return Ok(());
        }
        on_disk.hash.encoder = Some(EncoderRef::Pinned(pin.clone()));
        write_config(&self.dir, &on_disk)?;
        *held = Some(pin.clone());
        Ok(())
    }
}

fn check_bits(pin: &EncoderPin, bits: usize) -> Result<(), StoreError> {
    if pin.bits == bits {
        return Ok(());
    }
    Err(EncoderError::from(Mismatch::Bits {
        encoder: pin.label(),
        bits: pin.bits,
        index_bits: bits,
    })
    .into())
}

/// Reads and checks `ash-index.json`.
fn read_config(dir: &Path) -> Result<IndexConfig, StoreError> {
    let path = dir.join(CONFIG_FILE);
    let text = fs::read_to_string(&path).map_err(|source| StoreError::NotAnIndex {
        dir: dir.to_owned(),
        source,
    })?;
    IndexConfig::from_json(&text).map_err(|source| StoreError::Config { path, source })
}

/// Writes `ash-index.json` atomically and durably ([`ash_mih::fsio`]).
fn write_config(dir: &Path, config: &IndexConfig) -> Result<(), StoreError> {
    let text = serde_json::to_string_pretty(config).expect("config serialises");
    let path = dir.join(CONFIG_FILE);
    ash_mih::fsio::write_atomic(&path, text.as_bytes()).map_err(io_at(&path))
}

/// tantivy's index file, written when an index is created.
const TANTIVY_META: &str = "meta.json";

/// Removes what an interrupted `init` left (tantivy's files for an index
/// that never got its `ash-index.json`), provided it holds no segment: a
/// directory with documents in it is never touched.
fn clear_unfinished_init(dir: &Path) -> Result<(), StoreError> {
    let meta_path = dir.join(TANTIVY_META);
    let meta: serde_json::Value = fs::read(&meta_path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(serde_json::Value::Null);
    let empty = meta["segments"].as_array().is_some_and(|s| s.is_empty());
    if !empty {
        return Err(StoreError::ForeignIndex(dir.to_owned()));
    }
    for name in [TANTIVY_META, ".managed.json"] {
        match fs::remove_file(dir.join(name)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_at(&dir.join(name))(e)),
        }
    }
    Ok(())
}
