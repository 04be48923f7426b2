//! assemble: installs the site from $DESTINATION/src into /opt/app-root/web,
//! rendering Markdown and precompressing text assets (reusing the previous
//! build's outputs in an incremental build), and records metadata for `run`.
use std::io;
use std::path::{Path, PathBuf};

use static_web::layout;
use static_web::path::WebPath;
use static_web::site::{self, Layout, Options};
use ws2i_sdk::{info, step, warn};

/// The settings assemble records for the run hook.
const SETTINGS: [&str; 4] = [
    "WEB_INDEX",
    "WEB_SPA_FALLBACK",
    "WEB_CSP",
    "WEB_CACHE_CONTROL",
];

fn assemble() -> io::Result<()> {
    let src = ws2i_sdk::source_dir();
    let mut opts = Options::default();
    let set: Vec<(&str, String)> = SETTINGS
        .iter()
        .filter_map(|k| ws2i_sdk::env::var(k).map(|v| (*k, v)))
        .collect();
    for k in opts.config.apply(set.iter().map(|(k, v)| (*k, v.as_str()))) {
        warn!("ignoring {k}: not a valid value (see `ws2i usage`)");
    }
    opts.precompress = !matches!(
        ws2i_sdk::env::var_or("WEB_PRECOMPRESS", "1")
            .trim()
            .to_ascii_lowercase()
            .as_str(),
        "0" | "false" | "no" | "off"
    );
    let (policy, rejected) = site::CompressionPolicy::from_vars(
        ws2i_sdk::env::var("WEB_GZIP_LEVEL").as_deref(),
        ws2i_sdk::env::var("WEB_BROTLI_QUALITY").as_deref(),
    );
    for k in rejected {
        warn!("ignoring {k}: not a valid level (WEB_GZIP_LEVEL 1-9, WEB_BROTLI_QUALITY 0-11)");
    }
    opts.compression = policy;
    if let Some(t) = template_path(&src)? {
        opts.template = std::fs::read_to_string(&t)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", t.display())))?;
        info!(
            "Markdown template: {}",
            t.strip_prefix(&src).unwrap_or(&t).display()
        );
    }

    let artifacts = ws2i_sdk::artifacts();
    if artifacts.is_some() {
        step!("Restoring build artifacts (compressed assets by content hash)...");
    }
    step!("Installing site into {}...", layout::WEB_ROOT);
    let sum = site::assemble(
        &src,
        &Layout::image(),
        artifacts.as_deref(),
        &opts,
        &mut |w| warn!("{w}"),
    )?;
    if sum.markdown > 0 {
        info!("rendered {} Markdown page(s)", sum.markdown);
    }
    if artifacts.is_some() {
        step!(
            "Reused {} precompressed file(s) from the previous build, compressed {}",
            sum.reused,
            sum.compressed
        );
    }
    info!(
        "index: {}, SPA fallback: {}",
        opts.config.index.rel(),
        opts.config
            .spa_fallback
            .as_ref()
            .map_or("off".to_string(), WebPath::rel)
    );
    step!("Summary: {}", sum.line());
    Ok(())
}

/// `WEB_MARKDOWN_TEMPLATE` (a path in the source), else `.s2i/template.html`
/// when the source has one.
fn template_path(src: &Path) -> io::Result<Option<PathBuf>> {
    match ws2i_sdk::env::var("WEB_MARKDOWN_TEMPLATE").filter(|v| !v.is_empty()) {
        Some(rel) => {
            let p = WebPath::relative(&rel).map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("WEB_MARKDOWN_TEMPLATE={rel}: {e}"),
                )
            })?;
            Ok(Some(src.join(p.rel())))
        }
        None => {
            let default = src.join(".s2i/template.html");
            Ok(default.is_file().then_some(default))
        }
    }
}

fn main() {
    ws2i_sdk::run(assemble)
}
