//! The `oc`-like commands over [`crate::pipeline`]: apply, get, describe, start-build, logs,
//! cancel-build, tag (of stream tags), delete, prune builds|images. Each parses, calls one
//! library function and prints; build logs stream to stderr prefixed by the build name.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Subcommand, ValueEnum};
use serde::Serialize;

use super::{Global, OutputFormat};
use crate::image::Store;
use crate::pipeline::logs::Echo;
use crate::pipeline::objects::{EnvVar, DEFAULT_NAMESPACE};
use crate::pipeline::{load, print, Events, ImportOptions, Pipeline, Report, StartOptions};

#[derive(clap::Args, Debug, Clone)]
pub struct NsArg {
    /// The namespace of the objects (default: `default`; its streams are store repositories
    /// without a prefix, others are NS/IS).
    #[arg(short = 'n', long = "namespace", default_value = DEFAULT_NAMESPACE)]
    pub namespace: String,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Yaml,
    Name,
    Wide,
}

#[derive(Subcommand, Debug)]
pub enum PipelineCommand {
    /// Create or update ImageStreams and BuildConfigs from a file or directory (YAML or JSON),
    /// then run the builds their triggers start, and the cascade after them.
    Apply {
        /// A file, or a directory of *.yaml, *.yml, *.json.
        #[arg(short = 'f', long = "filename", required = true)]
        files: Vec<PathBuf>,
        #[command(flatten)]
        ns: NsArg,
    },
    /// List objects: bc, builds, is, istag, secret, configmap (oc's columns; secret values are
    /// never shown).
    Get {
        kind: String,
        name: Option<String>,
        /// json, yaml, name or wide.
        #[arg(short = 'o', value_enum)]
        format: Option<Format>,
        #[command(flatten)]
        ns: NsArg,
    },
    /// Show one object in detail: bc, build, is (with its tag history), istag.
    Describe {
        kind: String,
        name: String,
        #[command(flatten)]
        ns: NsArg,
    },
    /// Start a build of a BuildConfig and run it (and what it triggers) to the end.
    StartBuild {
        /// The BuildConfig (not with --from-build).
        #[arg(required_unless_present = "from_build")]
        buildconfig: Option<String>,
        /// Stream the log (ws2i always does unless --quiet; accepted for oc's sake).
        #[arg(short = 'F', long)]
        follow: bool,
        /// Exit with the build's status (ws2i runs the build in this process, so it always waits).
        #[arg(short = 'w', long)]
        wait: bool,
        /// A binary build: this directory is the source.
        #[arg(long)]
        from_dir: Option<PathBuf>,
        /// Build this commit of the git source.
        #[arg(long)]
        commit: Option<String>,
        /// Environment for the build, K=V (repeatable; replaces the strategy's entry).
        #[arg(short = 'e', long = "env", value_parser = parse_env)]
        env: Vec<EnvVar>,
        /// Rerun a build with the same pinned inputs.
        #[arg(long)]
        from_build: Option<String>,
        #[command(flatten)]
        ns: NsArg,
    },
    /// Print a build's log: build/NAME-N, NAME-N or bc/NAME (its latest build).
    Logs {
        target: String,
        /// Keep printing until the build ends.
        #[arg(short = 'f', long)]
        follow: bool,
        #[command(flatten)]
        ns: NsArg,
    },
    /// Cancel builds: NAME-N… or bc/NAME (all its unfinished builds).
    CancelBuild {
        #[arg(required = true)]
        targets: Vec<String>,
        #[command(flatten)]
        ns: NsArg,
    },
    /// Import a DockerImage into an image-stream tag (oc import-image): pin it by digest, pull
    /// it into the store, fire the triggers that watch the tag when the digest is new.
    ImportImage {
        /// IS or IS:TAG (default tag: latest).
        target: String,
        /// The image to import (HOST/REPO:TAG of a registry, or a store image); default: the
        /// tag's spec `from`.
        #[arg(long)]
        from: Option<String>,
        /// Create the stream or tag if missing, or change the tag's import source.
        #[arg(long)]
        confirm: bool,
        /// Import every tag of the stream whose from is a DockerImage.
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        ns: NsArg,
    },
    /// Delete a BuildConfig (and its builds), a build, or an image stream.
    Delete {
        kind: String,
        name: String,
        #[command(flatten)]
        ns: NsArg,
    },
}

/// `ws2i prune builds|images`.
#[derive(Subcommand, Debug, Clone)]
pub enum PruneWhat {
    /// Keep the newest N complete and N failed builds of each BuildConfig.
    Builds {
        #[arg(long, default_value_t = 5)]
        keep: u32,
        #[command(flatten)]
        ns: NsArg,
    },
    /// Keep the newest N history items of each image-stream tag.
    Images {
        #[arg(long, default_value_t = 3)]
        keep: u32,
        #[command(flatten)]
        ns: NsArg,
    },
}

fn parse_env(s: &str) -> Result<EnvVar, String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok(EnvVar {
            name: k.into(),
            value: v.into(),
        }),
        _ => Err(format!("expected K=V, got {s:?}")),
    }
}

/// Build log lines and events on stderr (stdout carries only results); `--quiet` keeps warnings.
struct Console {
    quiet: bool,
}

impl Echo for Console {
    fn line(&self, build: &str, line: &str) {
        if !self.quiet {
            eprintln!("{build}: {line}");
        }
    }
}

impl Events for Console {
    fn event(&self, msg: &str) {
        if !self.quiet {
            eprintln!("{msg}");
        }
    }
    fn warning(&self, msg: &str) {
        eprintln!("warning: {msg}");
    }
}

fn open<'a>(ns: &NsArg, console: &'a Console) -> Result<Pipeline<'a>> {
    let home = Store::default_root()?;
    let cache = crate::sandbox::default_cache_dir();
    Pipeline::open(&home, &cache, &ns.namespace, console)
}

fn exit(report: &Report) -> ExitCode {
    if report.any_failed() {
        for b in report.builds.iter().filter(|b| b.status.phase.is_failure()) {
            eprintln!(
                "error: the build {}/{} status is {:?}",
                b.metadata.namespace(),
                b.metadata.name,
                b.status.phase.as_str()
            );
        }
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

pub fn run(g: &Global, cmd: PipelineCommand) -> Result<ExitCode> {
    let console = Console { quiet: g.quiet };
    match cmd {
        PipelineCommand::Apply { files, ns } => {
            let mut loaded = load::Loaded::default();
            for f in &files {
                let l = load::load_path(f)?;
                loaded.objects.extend(l.objects);
                loaded.warnings.extend(l.warnings);
            }
            let mut p = open(&ns, &console)?;
            let (results, report) = p.apply(loaded)?;
            if g.output == OutputFormat::Json {
                let v: Vec<_> = results
                    .iter()
                    .map(|(q, w)| serde_json::json!({"object": q, "result": w.as_str()}))
                    .collect();
                println!(
                    "{}",
                    serde_json::json!({"objects": v, "builds": report.builds})
                );
            }
            Ok(exit(&report))
        }
        PipelineCommand::Get {
            kind,
            name,
            format,
            ns,
        } => {
            let mut p = open(&ns, &console)?;
            let format = format.or((g.output == OutputFormat::Json).then_some(Format::Json));
            get(&mut p, &kind, name.as_deref(), format)?;
            Ok(ExitCode::SUCCESS)
        }
        PipelineCommand::Describe { kind, name, ns } => {
            let mut p = open(&ns, &console)?;
            let text = match kind.as_str() {
                "bc" | "buildconfig" | "buildconfigs" => {
                    let bc = p.build_config(&name)?;
                    print::describe_bc(&bc, &p.builds(Some(&name))?)
                }
                "build" | "builds" => {
                    let b = p.build(&name)?;
                    let mut tail = Vec::new();
                    p.logs(&name, false, &mut |l| tail.push(l.to_string()))?;
                    let start = tail.len().saturating_sub(10);
                    print::describe_build(&b, &tail[start..].join("\n"))
                }
                "is" | "imagestream" | "imagestreams" => {
                    print::describe_stream(&p.image_stream(&name)?)
                }
                "istag" | "imagestreamtag" | "imagestreamtags" => {
                    let t = p.image_stream_tags(Some(&name))?;
                    print::describe_istag(&t[0])
                }
                other => bail!("cannot describe {other:?}: use bc, build, is or istag"),
            };
            print!("{text}");
            Ok(ExitCode::SUCCESS)
        }
        PipelineCommand::StartBuild {
            buildconfig,
            follow: _,
            wait: _,
            from_dir,
            commit,
            env,
            from_build,
            ns,
        } => {
            let mut p = open(&ns, &console)?;
            let opts = StartOptions {
                commit,
                env,
                from_dir,
                from_build,
            };
            let (name, report) = p.start_build(buildconfig.as_deref().unwrap_or_default(), opts)?;
            if g.output == OutputFormat::Json {
                println!("{}", serde_json::to_string(&report.build(&name))?);
            } else {
                println!("build.build.openshift.io/{name}");
            }
            Ok(exit(&report))
        }
        PipelineCommand::Logs { target, follow, ns } => {
            let mut p = open(&ns, &console)?;
            p.logs(&target, follow, &mut |l| println!("{l}"))?;
            Ok(ExitCode::SUCCESS)
        }
        PipelineCommand::CancelBuild { targets, ns } => {
            let mut p = open(&ns, &console)?;
            let names = p.cancel(&targets)?;
            if names.is_empty() {
                eprintln!("no unfinished build matched");
            }
            for n in names {
                println!("build.build.openshift.io/{n} cancelled");
            }
            Ok(ExitCode::SUCCESS)
        }
        PipelineCommand::ImportImage {
            target,
            from,
            confirm,
            all,
            ns,
        } => {
            let mut p = open(&ns, &console)?;
            let opts = ImportOptions { from, confirm, all };
            let (msgs, report) = p
                .import_image(&target, &opts)
                .with_context(|| format!("ws2i import-image {target}"))?;
            for m in msgs {
                println!("{m}");
            }
            Ok(exit(&report))
        }
        PipelineCommand::Delete { kind, name, ns } => {
            let mut p = open(&ns, &console)?;
            println!("{}", p.delete(&kind, &name)?);
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn emit<T: Serialize>(items: &[T], single: bool, format: Format, names: &[String]) -> Result<()> {
    match format {
        Format::Name => {
            for n in names {
                println!("{n}");
            }
        }
        Format::Json | Format::Yaml => {
            let v = if single {
                serde_json::to_value(&items[0])?
            } else {
                serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items})
            };
            if format == Format::Json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                print!("{}", serde_yaml::to_string(&v)?);
            }
        }
        Format::Wide => unreachable!("tables are printed by the caller"),
    }
    Ok(())
}

fn get(p: &mut Pipeline<'_>, kind: &str, name: Option<&str>, format: Option<Format>) -> Result<()> {
    let wide = format == Some(Format::Wide);
    let structured = format.filter(|f| *f != Format::Wide);
    match kind {
        "bc" | "buildconfig" | "buildconfigs" => {
            let items = match name {
                Some(n) => vec![p.build_config(n)?],
                None => p.build_configs()?,
            };
            let names: Vec<String> = items
                .iter()
                .map(|b| format!("buildconfig.build.openshift.io/{}", b.metadata.name))
                .collect();
            match structured {
                Some(f) => emit(&items, name.is_some(), f, &names)?,
                None => print!("{}", print::bcs_table(&items, wide)),
            }
        }
        "build" | "builds" => {
            let items = match name {
                Some(n) => vec![p.build(n)?],
                None => p.builds(None)?,
            };
            let names: Vec<String> = items
                .iter()
                .map(|b| format!("build.build.openshift.io/{}", b.metadata.name))
                .collect();
            match structured {
                Some(f) => emit(&items, name.is_some(), f, &names)?,
                None => print!("{}", print::builds_table(&items, wide)),
            }
        }
        "is" | "imagestream" | "imagestreams" => {
            let items = match name {
                Some(n) => vec![p.image_stream(n)?],
                None => p.image_streams()?,
            };
            let names: Vec<String> = items
                .iter()
                .map(|s| format!("imagestream.image.openshift.io/{}", s.metadata.name))
                .collect();
            match structured {
                Some(f) => emit(&items, name.is_some(), f, &names)?,
                None => print!("{}", print::streams_table(&items)),
            }
        }
        "istag" | "imagestreamtag" | "imagestreamtags" => {
            let items = p.image_stream_tags(name)?;
            let names: Vec<String> = items
                .iter()
                .map(|t| format!("imagestreamtag.image.openshift.io/{}", t.metadata.name))
                .collect();
            match structured {
                Some(f) => emit(&items, name.is_some(), f, &names)?,
                None => print!("{}", print::istags_table(&items, wide)),
            }
        }
        "secret" | "secrets" => {
            // Values never leave the database: -o json|yaml shows each key's size.
            let items: Vec<_> = p.secrets(name)?.iter().map(|x| x.redacted()).collect();
            let names: Vec<String> = items
                .iter()
                .map(|x| format!("secret/{}", x.metadata.name))
                .collect();
            match structured {
                Some(f) => emit(&items, name.is_some(), f, &names)?,
                None => print!("{}", print::secrets_table(&items)),
            }
        }
        "cm" | "configmap" | "configmaps" => {
            let items = p.config_maps(name)?;
            let names: Vec<String> = items
                .iter()
                .map(|x| format!("configmap/{}", x.metadata.name))
                .collect();
            match structured {
                Some(f) => emit(&items, name.is_some(), f, &names)?,
                None => print!("{}", print::config_maps_table(&items)),
            }
        }
        other => {
            bail!("unknown resource type {other:?}: use bc, builds, is, istag, secret or configmap")
        }
    }
    Ok(())
}

/// `ws2i tag SRC DST`: on image streams when DST's stream exists (or SRC is `IS@sha256:…`, or
/// `--alias`), else `None` and the caller tags in the store as before.
pub fn stream_tag(
    g: &Global,
    src: &str,
    dst: &str,
    alias: bool,
    ns: &NsArg,
) -> Result<Option<ExitCode>> {
    let console = Console { quiet: g.quiet };
    if !alias && !crate::pipeline::db::Db::path(&Store::default_root()?).exists() {
        return Ok(None); // no pipeline state: a plain store tag
    }
    let mut p = open(ns, &console)?;
    let dst_stream = crate::pipeline::objects::split_istag(dst).map(|(s, _)| s.to_string());
    let is_stream = |p: &mut Pipeline<'_>, s: &str| p.image_stream(s).is_ok();
    let src_stream = src.split(['@', ':']).next().unwrap_or_default().to_string();
    let pipeline = alias
        || dst_stream.as_deref().is_some_and(|s| is_stream(&mut p, s))
        || (src.contains("@sha256:") && is_stream(&mut p, &src_stream))
        || (!src.contains('@') && is_stream(&mut p, &src_stream));
    if !pipeline {
        return Ok(None);
    }
    let (msg, report) = p
        .tag(src, dst, alias)
        .with_context(|| format!("ws2i tag {src} {dst}"))?;
    println!("{msg}");
    Ok(Some(exit(&report)))
}

pub fn prune(g: &Global, what: PruneWhat) -> Result<ExitCode> {
    let console = Console { quiet: g.quiet };
    match what {
        PruneWhat::Builds { keep, ns } => {
            let gone = open(&ns, &console)?.prune_builds(keep)?;
            for b in gone {
                println!("build.build.openshift.io/{b} deleted");
            }
        }
        PruneWhat::Images { keep, ns } => {
            let n = open(&ns, &console)?.prune_images(keep)?;
            println!("removed {n} tag history items");
        }
    }
    Ok(ExitCode::SUCCESS)
}
