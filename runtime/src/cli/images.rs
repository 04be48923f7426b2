//! Image commands: pull, push, copy, images, inspect, tag, rmi, prune.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};

use super::{Global, OutputFormat};
use crate::image::auth::Credentials;
use crate::image::{ManifestFormat, Platform};
use crate::image::reference::{ImageRef, LocalRef, NameTag};
use crate::image::registry::RegistryOptions;
use crate::image::store::Store;
use crate::image::transport::{self, CopyOptions};

#[derive(clap::Args, Debug, Clone)]
pub struct TransportFlags {
    /// Manifest format to write (default: keep the source's).
    #[arg(long, value_enum)]
    pub format: Option<ManifestFormat>,
    /// Registry credentials USER:PASS.
    #[arg(long)]
    pub creds: Option<String>,
    /// Auth file (containers auth.json / docker config.json format).
    #[arg(long)]
    pub authfile: Option<PathBuf>,
    /// Verify TLS (default: yes, except plain HTTP for localhost/127.0.0.1).
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub tls_verify: Option<bool>,
    /// Platform to pick from a multi-platform image, OS/ARCH[/VARIANT] (default linux/amd64).
    #[arg(long)]
    pub platform: Option<String>,
    /// Copy a multi-platform image whole: every platform's manifest and blobs, then the index
    /// (skopeo's --all). Without it, only the --platform image is copied.
    #[arg(long, conflicts_with = "platform")]
    pub all: bool,
    /// REGISTRY/REPOSITORY likely to hold some of the blobs (e.g. the base
    /// image's): blobs missing at a registry destination are mounted from
    /// it when on the same registry. Repeatable.
    #[arg(long, value_name = "REPO")]
    pub mount_from: Vec<String>,
}

impl TransportFlags {
    /// Copies `src` to `dst`, the whole index with `--all`.
    fn copy(&self, g: &Global, src: &ImageRef, dst: &ImageRef) -> Result<transport::CopyReport> {
        let opts = self.options(g)?;
        if self.all {
            transport::copy_all_report(src, dst, &opts)
        } else {
            transport::copy_report(src, dst, &opts)
        }
    }

    pub(super) fn options(&self, g: &Global) -> Result<CopyOptions> {
        Ok(CopyOptions {
            format: self.format,
            platform: match &self.platform {
                Some(p) => Platform::parse(p)?,
                None => Platform::host_default(),
            },
            registry: RegistryOptions {
                tls_verify: self.tls_verify,
                creds: self
                    .creds
                    .as_deref()
                    .map(Credentials::parse_creds)
                    .transpose()?,
                authfile: self.authfile.clone(),
                attempts: None,
            },
            store_root: None,
            progress: crate::progress::enabled(g.quiet),
            mount_from: self.mount_from.clone(),
        })
    }
}

#[derive(clap::Subcommand, Debug)]
pub enum ImageCommand {
    /// Copy an image from a registry (or any transport) into the local store.
    Pull {
        src: String,
        #[command(flatten)]
        flags: TransportFlags,
    },
    /// Copy a local image to a registry (or any transport).
    Push {
        src: String,
        dest: String,
        #[command(flatten)]
        flags: TransportFlags,
        /// Write the manifest digest of what was copied to FILE once it is all there (as
        /// `skopeo copy --digestfile`; a Tekton result path, say).
        #[arg(long = "digest-file", value_name = "FILE")]
        digest_file: Option<PathBuf>,
    },
    /// Copy an image between any two transports.
    Copy {
        src: String,
        dest: String,
        #[command(flatten)]
        flags: TransportFlags,
        /// Write the manifest digest of what was copied to FILE once it is all there (as
        /// `skopeo copy --digestfile`; a Tekton result path, say).
        #[arg(long = "digest-file", value_name = "FILE")]
        digest_file: Option<PathBuf>,
    },
    /// List images in the local store.
    Images,
    /// Show an image's config, labels, layers and digest (and the platforms of an index).
    Inspect {
        reference: String,
        /// Print the manifest or image index as stored, byte for byte (as skopeo inspect --raw).
        #[arg(long)]
        raw: bool,
        #[command(flatten)]
        flags: TransportFlags,
    },
    /// Give a local image another NAME[:TAG]; on an image stream (docs/pipelines.md), make SRC
    /// (IS:TAG, IS@sha256:…, a store image) the current image of stream tag DST.
    Tag {
        src: String,
        new: String,
        /// DST tracks SRC (same stream).
        #[arg(long)]
        alias: bool,
        #[command(flatten)]
        ns: super::pipeline::NsArg,
    },
    /// Remove local image tags (blobs are freed by `prune`).
    Rmi {
        #[arg(required = true)]
        refs: Vec<String>,
    },
    /// Delete blobs no tagged image uses; `prune builds|images` prunes pipeline history.
    Prune {
        #[command(subcommand)]
        pipeline: Option<super::pipeline::PruneWhat>,
    },
}

fn parse_ref(s: &str) -> Result<ImageRef> {
    Ok(s.parse::<ImageRef>()?)
}

fn parse_local(s: &str) -> Result<LocalRef> {
    Ok(s.parse::<LocalRef>()?)
}

/// The local name a pulled image gets.
fn local_name_for(src: &ImageRef) -> Result<NameTag> {
    match src {
        ImageRef::Docker(d) => Ok(d.local_name()),
        ImageRef::OciDir { tag: Some(t), .. } | ImageRef::OciArchive { tag: Some(t), .. } => {
            t.parse::<NameTag>().with_context(|| {
                format!("cannot name the pulled image after {t:?}; use `ws2i copy {src} NAME:TAG`")
            })
        }
        ImageRef::DockerArchive { name: Some(n), .. } => Ok(n.clone()),
        ImageRef::Local(_) => bail!("{src} is already in the local store"),
        _ => bail!("{src} carries no name; use `ws2i copy {src} NAME:TAG`"),
    }
}

fn human_size(n: u64) -> String {
    const U: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1024.0 && i < U.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{n}B")
    } else {
        format!("{v:.1}{}", U[i])
    }
}

pub fn run(g: &Global, c: ImageCommand) -> Result<ExitCode> {
    let json = g.output == OutputFormat::Json;
    let say = |s: String| {
        if !g.quiet {
            println!("{s}");
        }
    };
    if let ImageCommand::Inspect { flags: TransportFlags { all: true, .. }, .. } = &c {
        bail!("--all applies to push, pull and copy; inspect --raw shows a whole index");
    }
    match c {
        ImageCommand::Pull { src, flags } => {
            let src = parse_ref(&src)?;
            let dst = ImageRef::Local(LocalRef::Tagged(local_name_for(&src)?));
            let d = flags.copy(g, &src, &dst)?.digest;
            if json {
                println!(
                    "{}",
                    serde_json::json!({"image": dst.to_string(), "digest": d})
                );
            } else {
                say(format!("{dst} {d}"));
            }
        }
        ImageCommand::Push { src, dest, flags, digest_file }
        | ImageCommand::Copy { src, dest, flags, digest_file } => {
            let (src, dest) = (parse_ref(&src)?, parse_ref(&dest)?);
            let rep = flags.copy(g, &src, &dest)?;
            if let Some(path) = &digest_file {
                super::write_digest_file(path, &rep.digest.to_string())?;
            }
            if json {
                println!(
                    "{}",
                    serde_json::json!({
                        "destination": dest.to_string(),
                        "digest": rep.digest,
                        "mounted": rep.mounted,
                        "copied": rep.copied,
                    })
                );
            } else {
                // stderr: stdout stays the bare digest for scripts.
                if !g.quiet {
                    for m in &rep.mounted {
                        eprintln!("mounted blob {} from {}", m.digest, m.from);
                    }
                }
                say(rep.digest.to_string());
            }
        }
        ImageCommand::Images => {
            let list = Store::open(Store::default_root()?)?.list()?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                println!(
                    "{:<40} {:<20} {:<20} {:>10} CREATED",
                    "NAME", "TAG", "DIGEST", "SIZE"
                );
                for i in list {
                    println!(
                        "{:<40} {:<20} {:<20} {:>10} {}",
                        i.name,
                        i.tag,
                        i.digest.short(),
                        human_size(i.size),
                        i.created.unwrap_or_default()
                    );
                }
            }
        }
        ImageCommand::Inspect { reference, raw: true, flags } => {
            let (bytes, _) = transport::raw_manifest(&parse_ref(&reference)?, &flags.options(g)?)?;
            use std::io::Write;
            std::io::stdout().write_all(&bytes)?;
            println!();
        }
        ImageCommand::Inspect { reference, raw: false, flags } => {
            let info = transport::inspect(&parse_ref(&reference)?, &flags.options(g)?)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&info)?);
            } else {
                println!("Reference:    {}", info.reference);
                println!("Digest:       {}", info.digest);
                println!("MediaType:    {}", info.media_type);
                println!("Platform:     {}/{}", info.os, info.architecture);
                if let Some(idx) = &info.index {
                    println!("Index:        {} ({})", idx.digest, idx.media_type);
                    println!("Platforms:");
                    for m in &idx.manifests {
                        let p = m.platform.as_ref().map_or("-".into(), ToString::to_string);
                        let picked = if m.digest == info.digest { " (shown below)" } else { "" };
                        println!("  {p:<20} {}{picked}", m.digest);
                    }
                }
                println!("Created:      {}", info.created.as_deref().unwrap_or("-"));
                if let Some(c) = &info.config {
                    println!("Env:          {:?}", c.env.clone().unwrap_or_default());
                    println!(
                        "Entrypoint:   {:?}",
                        c.entrypoint.clone().unwrap_or_default()
                    );
                    println!("Cmd:          {:?}", c.cmd.clone().unwrap_or_default());
                    println!("WorkingDir:   {}", c.working_dir.as_deref().unwrap_or(""));
                    println!("User:         {}", c.user.as_deref().unwrap_or(""));
                }
                println!("Labels:");
                for (k, v) in &info.labels {
                    println!("  {k}={v}");
                }
                println!("Layers:");
                for l in &info.layers {
                    println!("  {} {:>10} {}", l.digest, human_size(l.size), l.media_type);
                }
            }
        }
        ImageCommand::Tag { src, new, alias, ns } => {
            if let Some(code) = super::pipeline::stream_tag(g, &src, &new, alias, &ns)? {
                return Ok(code);
            }
            let store = Store::open(Store::default_root()?)?;
            let r = store.resolve(&parse_local(&src)?)?;
            let nt: NameTag = new.parse()?;
            store.tag(&nt, &r.manifest_digest)?;
            say(format!("{nt} {}", r.manifest_digest));
        }
        ImageCommand::Rmi { refs } => {
            let store = Store::open(Store::default_root()?)?;
            for r in refs {
                let l = parse_local(&r)?;
                store.remove(&l)?;
                say(format!("untagged {l}"));
            }
        }
        ImageCommand::Prune { pipeline: Some(what) } => return super::pipeline::prune(g, what),
        ImageCommand::Prune { pipeline: None } => {
            let (n, bytes) = Store::open(Store::default_root()?)?.prune()?;
            if json {
                println!("{}", serde_json::json!({"blobs": n, "bytes": bytes}));
            } else {
                say(format!("removed {n} blobs, {}", human_size(bytes)));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
