//! An index directory: the tantivy index (with the `binary_hash` plugin)
//! and `ash-index.json`, the configuration it was made from, including the
//! encoder its codes come from (pinned by manifest digest, so that codes of
//! another model are never mixed in).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use tantivy::schema::Field;

use crate::encoder::manifest::{read_plugin, EncoderPin};
use crate::encoder::{Encoder, EncoderError, EncoderOptions};
use crate::index::config::{EncoderRef, IndexConfig, ID_FIELD};
use crate::index::{HashIndex, IndexError};

/// The configuration file inside an index directory.
pub const CONFIG_FILE: &str = "ash-index.json";

/// An opened index directory.
pub struct Store {
    pub dir: PathBuf,
    pub config: IndexConfig,
    pub index: HashIndex,
    pub id_field: Field,
}

impl Store {
    /// Creates an index in `dir` (created if missing; must hold no index).
    /// An encoder given as a directory is read and pinned now.
    pub fn init(dir: &Path, mut config: IndexConfig) -> Result<Self, IndexError> {
        let schema = config.schema()?;
        if let Some(EncoderRef::Dir(plugin)) = &config.hash.encoder {
            let plugin = read_plugin(Path::new(plugin))?;
            check_bits(&plugin.pin, config.hash.bits)?;
            config.hash.encoder = Some(EncoderRef::Pinned(plugin.pin));
        }
        fs::create_dir_all(dir)
            .map_err(|e| IndexError::Invalid(format!("{}: {e}", dir.display())))?;
        if dir.join(CONFIG_FILE).exists() || dir.join("meta.json").exists() {
            return Err(IndexError::Invalid(format!(
                "{}: an index already exists here",
                dir.display()
            )));
        }
        let index = HashIndex::create_in_dir(dir, schema)?;
        write_config(dir, &config)?;
        Self::wrap(dir, config, index)
    }

    /// Opens an index directory made by [`Store::init`].
    pub fn open(dir: &Path) -> Result<Self, IndexError> {
        let path = dir.join(CONFIG_FILE);
        let text = fs::read_to_string(&path).map_err(|e| {
            IndexError::Invalid(format!(
                "{}: not an ash-search index ({e}); create one with `ash-search init`",
                dir.display()
            ))
        })?;
        let config = IndexConfig::from_json(&text)
            .map_err(|e| IndexError::Invalid(format!("{}: {e}", path.display())))?;
        let index = HashIndex::open_in_dir(dir)?;
        Self::wrap(dir, config, index)
    }

    fn wrap(dir: &Path, config: IndexConfig, index: HashIndex) -> Result<Self, IndexError> {
        let id_field = index.schema().get_field(ID_FIELD)?;
        Ok(Self {
            dir: dir.to_owned(),
            config,
            index,
            id_field,
        })
    }
}

impl Store {
    /// Bytes on disk per file extension (`mih`, `store`, `json`, ...).
    pub fn bytes_by_extension(&self) -> Result<BTreeMap<String, u64>, IndexError> {
        let io = |e: std::io::Error| IndexError::Invalid(format!("{}: {e}", self.dir.display()));
        let mut by_ext = BTreeMap::new();
        for entry in fs::read_dir(&self.dir).map_err(io)? {
            let entry = entry.map_err(io)?;
            let meta = entry.metadata().map_err(io)?;
            if meta.is_file() {
                let name = entry.file_name().to_string_lossy().to_string();
                let ext = name.rsplit_once('.').map_or(name.as_str(), |(_, e)| e);
                *by_ext.entry(ext.to_string()).or_default() += meta.len();
            }
        }
        Ok(by_ext)
    }

    /// The encoder this index's codes come from, once pinned.
    pub fn encoder_pin(&self) -> Option<&EncoderPin> {
        match &self.config.hash.encoder {
            Some(EncoderRef::Pinned(pin)) => Some(pin),
            _ => None,
        }
    }

    /// Loads the encoder for this index: `explicit` or the pinned plugin
    /// directory. Another encoder than the pinned one is refused; with
    /// `pin`, an index without one records this one.
    pub fn open_encoder(
        &mut self,
        explicit: Option<&Path>,
        options: &EncoderOptions,
        pin: bool,
    ) -> Result<Encoder, IndexError> {
        let dir: PathBuf = match (explicit, &self.config.hash.encoder) {
            (Some(d), _) => d.to_owned(),
            (None, Some(EncoderRef::Pinned(p))) => p.dir.clone(),
            (None, Some(EncoderRef::Dir(d))) => PathBuf::from(d),
            (None, None) => {
                return Err(IndexError::Invalid(format!(
                    "{}: this index has no encoder yet; give one with --encoder DIR \
                     (an encoder plugin, e.g. plugin/models/ash-synfundus-48)",
                    self.dir.display()
                )))
            }
        };
        // Refuse a mismatch before paying for ONNX Runtime.
        let plugin = read_plugin(&dir)?;
        self.check_encoder(&plugin.pin)?;
        let encoder = Encoder::from_plugin(plugin, options)?;
        if pin && self.encoder_pin().is_none() {
            self.config.hash.encoder = Some(EncoderRef::Pinned(encoder.pin().clone()));
            write_config(&self.dir, &self.config)?;
        }
        Ok(encoder)
    }

    /// Refuses an encoder whose codes this index cannot hold.
    pub fn check_encoder(&self, pin: &EncoderPin) -> Result<(), IndexError> {
        check_bits(pin, self.config.hash.bits)?;
        if let Some(own) = self.encoder_pin() {
            own.check_same(pin)?;
        }
        Ok(())
    }
}

fn check_bits(pin: &EncoderPin, bits: usize) -> Result<(), IndexError> {
    if pin.bits == bits {
        return Ok(());
    }
    Err(EncoderError::Mismatch(format!(
        "encoder {} makes {}-bit codes; this index holds {bits}-bit codes",
        pin.label(),
        pin.bits
    ))
    .into())
}

/// Writes `ash-index.json` atomically (a crash leaves the old or the new).
fn write_config(dir: &Path, config: &IndexConfig) -> Result<(), IndexError> {
    let text = serde_json::to_string_pretty(config).expect("config serialises");
    let tmp = dir.join(format!("{CONFIG_FILE}.tmp"));
    let io = |e: std::io::Error| IndexError::Invalid(format!("{}: {e}", dir.display()));
    fs::write(&tmp, text).map_err(io)?;
    fs::rename(&tmp, dir.join(CONFIG_FILE)).map_err(io)
}
