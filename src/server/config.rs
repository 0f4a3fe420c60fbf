//! `serve.json`: where the server listens and what it allows. Unknown keys
//! are errors, so a misspelt limit is not silently ignored.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// The environment variable that holds the bearer token for `POST /ingest`
/// (it wins over the config file, so the secret need not be in a file).
pub const TOKEN_ENV: &str = "ASH_SERVE_TOKEN";

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServeConfig {
    pub addr: SocketAddr,
    /// Bearer token required by `POST /ingest`.
    pub token: Option<String>,
    /// Directories images may be served from (and ingested from over HTTP).
    pub image_roots: Vec<PathBuf>,
    /// Largest request body (an uploaded image or a JSONL batch).
    pub max_body_bytes: usize,
    /// Largest uploaded or thumbnailed image side, in pixels.
    pub max_image_side: u32,
    pub request_timeout_ms: u64,
    pub max_k: usize,
    /// Origins allowed to call the API from a browser; none by default.
    pub cors_origins: Vec<String>,
    /// Encoder sessions: how many uploads encode at once.
    pub sessions: usize,
    /// How often the reader looks for commits made by other processes.
    pub reload_ms: u64,
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            token: None,
            image_roots: Vec::new(),
            max_body_bytes: 32 << 20,
            max_image_side: 16_384,
            request_timeout_ms: 30_000,
            max_k: 1_000,
            cors_origins: Vec::new(),
            sessions: 2,
            reload_ms: 1_000,
        }
    }
}

impl ServeConfig {
    /// Reads a config file (relative image roots are taken from its folder).
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut config: ServeConfig =
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        for root in &mut config.image_roots {
            if root.is_relative() {
                *root = base.join(&*root);
            }
        }
        Ok(config)
    }

    /// The token from the environment wins; an empty one counts as none.
    pub fn with_env_token(mut self) -> Self {
        if let Ok(t) = std::env::var(TOKEN_ENV) {
            self.token = Some(t);
        }
        self.token = self.token.filter(|t| !t.is_empty());
        self
    }

    /// Refuses what would be unsafe or cannot work: a write endpoint open
    /// to the network without a token, image roots that do not exist.
    pub fn check(&mut self) -> Result<(), String> {
        if self.token.is_none() && !self.addr.ip().is_loopback() {
            return Err(format!(
                "refusing to serve POST /ingest on {} without a token: set \"token\" in the \
                 config or {TOKEN_ENV}, or bind to 127.0.0.1",
                self.addr
            ));
        }
        for root in &mut self.image_roots {
            *root = root
                .canonicalize()
                .map_err(|e| format!("image root {}: {e}", root.display()))?;
        }
        if self.max_k == 0 || self.sessions == 0 || self.max_body_bytes == 0 {
            return Err("max_k, sessions and max_body_bytes must be at least 1".into());
        }
        Ok(())
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms.max(1))
    }
}
