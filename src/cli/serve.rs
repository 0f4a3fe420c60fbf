//! `ash-search serve`: the HTTP API and web page over one index.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;

use super::encoder_args::EncoderArgs;
use super::CliError;
use ash_search::server::{self, App, ServeConfig};
use ash_search::store::Store;

#[derive(Debug, Args)]
pub struct ServeArgs {
    index: PathBuf,
    /// Address to listen on [default: 127.0.0.1:8080, or the config's].
    #[arg(long)]
    addr: Option<SocketAddr>,
    /// Server configuration (limits, token, image roots, CORS): serve.json.
    #[arg(long)]
    config: Option<PathBuf>,
    /// A directory images may be served from (repeatable; adds to the config's).
    #[arg(long = "image-root")]
    image_roots: Vec<PathBuf>,
    #[command(flatten)]
    encoder: EncoderArgs,
}

pub fn run(args: ServeArgs) -> Result<ExitCode, CliError> {
    let mut config = match &args.config {
        Some(path) => ServeConfig::load(path)?,
        None => ServeConfig::default(),
    }
    .with_env_token();
    if let Some(addr) = args.addr {
        config.addr = addr;
    }
    config.image_roots.extend(args.image_roots.iter().cloned());
    config.check()?;
    let store = Store::open(&args.index)?;
    let has_encoder = args.encoder.encoder.is_some() || store.config.hash.encoder.is_some();
    let encoder = if has_encoder {
        let mut options = args.encoder.options();
        options.sessions = config.sessions;
        Some(args.encoder.open(&store, &options)?)
    } else {
        say!("no encoder: searching by image is off (give --encoder DIR)");
        None
    };
    let app = Arc::new(App::new(store, encoder, config));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(server::serve(app))?;
    Ok(ExitCode::SUCCESS)
}
