//! assemble: installs the site from $DESTINATION/src into /opt/app-root/web,
//! rendering Markdown and precompressing text assets (reusing the previous
//! build's outputs in an incremental build), and records metadata for `run`.
//!
//! The compressions run on every core: assemble hands them, in shards, to copies of itself
//! (`assemble --compress SHARD`) through `ws2i.spawn_all`, which runs as many at once as the
//! build's job budget allows.
use std::io;
use std::path::{Path, PathBuf};

use static_web::meta::Variant;
use static_web::site::Job;

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
    let sum = site::assemble_with(
        &src,
        &Layout::image(),
        artifacts.as_deref(),
        &opts,
        &mut |w| warn!("{w}"),
        &mut compress_in_parallel,
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

/// Jobs per child at least: a child costs an instantiation (a few ms).
const MIN_SHARD: usize = 16;
/// Children at most: more only adds instantiations once every core is busy.
const MAX_SHARDS: usize = 64;

/// Splits the jobs into shards (dealt round-robin, so big and small files mix), runs
/// `assemble --compress` on each through `ws2i.spawn_all`, and collects the variants. Few jobs,
/// or a host without `spawn_all`, and they run here.
fn compress_in_parallel(jobs: &[Job]) -> io::Result<Vec<Variant>> {
    let shards = (jobs.len() / MIN_SHARD).min(MAX_SHARDS);
    let me = std::env::args().next().unwrap_or_default();
    if shards < 2 || !me.starts_with('/') {
        return site::compress_here(jobs);
    }
    // One assemble runs per rootfs; a leftover from an interrupted run is replaced.
    // (std::env::temp_dir panics on WASI.)
    let dir = PathBuf::from("/tmp/static-web-compress");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let result = (|| {
        let mut cmds = Vec::new();
        for s in 0..shards {
            let mine: Vec<Job> = jobs.iter().skip(s).step_by(shards).cloned().collect();
            let file = dir.join(s.to_string());
            std::fs::write(&file, site::encode_jobs(&mine))?;
            let mut c = ws2i_sdk::Command::new(&me);
            c.arg("--compress").arg(file.display().to_string());
            cmds.push(c);
        }
        let statuses = match ws2i_sdk::Command::status_all(&cmds) {
            Ok(s) => s,
            Err(e) if e.kind() == io::ErrorKind::Unsupported => return site::compress_here(jobs),
            Err(e) => return Err(e),
        };
        let mut out = vec![Variant::NotTried; jobs.len()];
        for (s, status) in statuses.into_iter().enumerate() {
            let status = status?;
            if !status.success() {
                return Err(io::Error::other(format!("compressing shard {s} failed ({status})")));
            }
            let text = std::fs::read_to_string(dir.join(format!("{s}.out")))?;
            let vs = site::decode_variants(&text)
                .ok_or_else(|| io::Error::other(format!("shard {s}: unreadable results")))?;
            for (i, v) in (s..jobs.len()).step_by(shards).zip(vs) {
                out[i] = v;
            }
        }
        if out.iter().any(|v| *v == Variant::NotTried) {
            return Err(io::Error::other("a compression shard left jobs undone"));
        }
        Ok(out)
    })();
    // Not part of the image.
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// `assemble --compress SHARD`: a child of [`compress_in_parallel`].
fn compress_shard(shard: &Path) -> io::Result<()> {
    let bytes = std::fs::read(shard)?;
    let jobs = site::decode_jobs(&bytes)
        .ok_or_else(|| io::Error::other(format!("{}: not a job list", shard.display())))?;
    let done = site::compress_here(&jobs)?;
    let mut out = shard.as_os_str().to_owned();
    out.push(".out");
    std::fs::write(PathBuf::from(out), site::encode_variants(&done))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [flag, shard] if flag == "--compress" => ws2i_sdk::run(|| compress_shard(Path::new(shard))),
        _ => ws2i_sdk::run(assemble),
    }
}
