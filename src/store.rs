//! An index directory: the tantivy index (with the `binary_hash` plugin)
//! and `ash-index.json`, the configuration it was made from.

use std::fs;
use std::path::{Path, PathBuf};

use tantivy::schema::Field;

use crate::index::config::{IndexConfig, ID_FIELD};
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
    pub fn init(dir: &Path, config: IndexConfig) -> Result<Self, IndexError> {
        let schema = config.schema()?;
        fs::create_dir_all(dir)
            .map_err(|e| IndexError::Invalid(format!("{}: {e}", dir.display())))?;
        if dir.join(CONFIG_FILE).exists() || dir.join("meta.json").exists() {
            return Err(IndexError::Invalid(format!(
                "{}: an index already exists here",
                dir.display()
            )));
        }
        let index = HashIndex::create_in_dir(dir, schema)?;
        let text = serde_json::to_string_pretty(&config).expect("config serialises");
        fs::write(dir.join(CONFIG_FILE), text)
            .map_err(|e| IndexError::Invalid(format!("{}: {e}", dir.display())))?;
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
