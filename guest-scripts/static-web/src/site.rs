//! What `assemble` does with a source tree, and how the `run` hook finds the
//! result ([`FsSite`]). Paths are parameters so that tests run natively in a
//! temp directory.

use std::collections::HashMap;
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::encoding::Encoding;
use crate::layout;
use crate::markdown;
use crate::meta::{self, FileMeta, Variant};
use crate::mime;
use crate::path::WebPath;
use crate::serve::{self, Config, Entry};

/// Where assemble writes: the web root, the metadata mirror, the builder's
/// data directory.
#[derive(Debug, Clone)]
pub struct Layout {
    pub web: PathBuf,
    pub meta: PathBuf,
    pub etc: PathBuf,
}

impl Layout {
    /// The layout of a static-web image.
    pub fn image() -> Layout {
        Layout {
            web: layout::WEB_ROOT.into(),
            meta: layout::META_DIR.into(),
            etc: layout::ETC.into(),
        }
    }

    /// The same layout under `root` (tests).
    pub fn under(root: &Path) -> Layout {
        let re = |p: &str| root.join(p.trim_start_matches('/'));
        Layout {
            web: re(layout::WEB_ROOT),
            meta: re(layout::META_DIR),
            etc: re(layout::ETC),
        }
    }

    pub fn manifest(&self) -> PathBuf {
        self.etc.join("manifest.tsv")
    }

    pub fn config(&self) -> PathBuf {
        self.etc.join("config")
    }

    /// The [`CompressionPolicy::tag`] the site was compressed with (for save-artifacts).
    pub fn compression_tag(&self) -> PathBuf {
        self.etc.join("compression")
    }
}

#[derive(Debug, Clone)]
pub struct Options {
    pub config: Config,
    /// Write `.gz` and `.br` variants of text assets (`WEB_PRECOMPRESS`).
    pub precompress: bool,
    /// The Markdown page template (`{{title}}`, `{{content}}`).
    pub template: String,
    /// How hard to compress (`WEB_GZIP_LEVEL`, `WEB_BROTLI_QUALITY`).
    pub compression: CompressionPolicy,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            config: Config::default(),
            precompress: true,
            template: markdown::DEFAULT_TEMPLATE.into(),
            compression: CompressionPolicy::default(),
        }
    }
}

/// How hard assemble compresses (docs/builders/static-web.md, "Compression policy").
///
/// gzip level 6 (zlib's own default; level 9 saves under 1% more on text for several times
/// the time). Brotli's quality falls with the file's size, because its cost per byte rises
/// steeply with quality (11 is ~50x slower than 5 for ~5% smaller output): small files get
/// most of the ratio for little time, and a big bundle cannot stall the build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompressionPolicy {
    /// 1-9.
    pub gzip_level: u32,
    /// 0-11 for every file, or `None` for the by-size default.
    pub brotli_quality: Option<u32>,
}

impl Default for CompressionPolicy {
    fn default() -> Self {
        CompressionPolicy { gzip_level: 6, brotli_quality: None }
    }
}

impl CompressionPolicy {
    /// Brotli's quality for a file of `size` bytes.
    pub fn brotli_quality_for(&self, size: usize) -> u32 {
        self.brotli_quality.unwrap_or(match size {
            0..=65_536 => 7,
            65_537..=1_048_576 => 6,
            _ => 5,
        })
    }

    /// `WEB_GZIP_LEVEL` and `WEB_BROTLI_QUALITY` (empty or unset: the default); also the
    /// keys whose values were refused.
    pub fn from_vars(gzip: Option<&str>, brotli: Option<&str>) -> (Self, Vec<String>) {
        let mut p = CompressionPolicy::default();
        let mut rejected = Vec::new();
        let num = |v: Option<&str>, max: u32| -> Option<Result<u32, ()>> {
            let v = v.map(str::trim).filter(|v| !v.is_empty())?;
            Some(v.parse().ok().filter(|n| *n <= max).ok_or(()))
        };
        match num(gzip, 9) {
            Some(Ok(n)) if n >= 1 => p.gzip_level = n,
            Some(_) => rejected.push("WEB_GZIP_LEVEL".to_string()),
            None => {}
        }
        match num(brotli, 11) {
            Some(Ok(n)) => p.brotli_quality = Some(n),
            Some(Err(())) => rejected.push("WEB_BROTLI_QUALITY".to_string()),
            None => {}
        }
        (p, rejected)
    }

    /// The name of the artifacts directory for outputs made with this policy
    /// (`v2-gz6-brsize`): a previous build's variants are reused only if they were made
    /// with the same settings.
    pub fn tag(&self) -> String {
        let br = self.brotli_quality.map_or("size".to_string(), |q| q.to_string());
        format!("{}-gz{}-br{br}", layout::ARTIFACTS_VERSION, self.gzip_level)
    }
}

/// Files smaller than this are sent as they are: the saving would not pay
/// for a `Vary` and a second lookup.
pub const MIN_COMPRESS_SIZE: u64 = 256;

/// A variant is kept only if it is at most 90% of the original.
fn worth_it(compressed: usize, original: usize) -> bool {
    compressed * 10 <= original * 9
}

const BROTLI_WINDOW: u32 = 22;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub files: u64,
    pub bytes: u64,
    pub markdown: u64,
    /// Files that have a `.gz` or `.br` variant.
    pub precompressed: u64,
    /// ... of which compressed in this build (at least one variant computed),
    pub compressed: u64,
    /// ... and those whose variants all came from the previous build.
    pub reused: u64,
    /// Bytes of the files with variants, and of their variants.
    pub compressible_bytes: u64,
    pub gzip_bytes: u64,
    pub brotli_bytes: u64,
    /// Entries left out (symlinks, special files, unsafe names).
    pub skipped: u64,
}

impl Summary {
    /// `1000 files (12.3 MB), 812 precompressed (1 compressed, 811 reused), gzip ratio 0.31, brotli ratio 0.27`
    pub fn line(&self) -> String {
        let ratio = |n: u64| {
            if self.compressible_bytes == 0 {
                "-".to_string()
            } else {
                format!("{:.2}", n as f64 / self.compressible_bytes as f64)
            }
        };
        format!(
            "{} files ({}), {} precompressed ({} compressed, {} reused), gzip ratio {}, brotli ratio {}",
            self.files,
            human_bytes(self.bytes),
            self.precompressed,
            self.compressed,
            self.reused,
            ratio(self.gzip_bytes),
            ratio(self.brotli_bytes)
        )
    }
}

pub fn human_bytes(n: u64) -> String {
    match n {
        n if n >= 1_000_000 => format!("{:.1} MB", n as f64 / 1e6),
        n if n >= 1_000 => format!("{:.1} kB", n as f64 / 1e3),
        n => format!("{n} B"),
    }
}

/// Names at the source root that are build inputs, not content.
const NOT_CONTENT: [&str; 3] = [".s2i", ".s2iignore", ".git"];

/// The source tree's files, in name order: (relative path, source path).
fn walk(
    src: &Path,
    warn: &mut dyn FnMut(String),
    skipped: &mut u64,
) -> io::Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    let mut stack = vec![(String::new(), src.to_path_buf())];
    while let Some((rel, dir)) = stack.pop() {
        let mut entries = fs::read_dir(&dir)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", dir.display())))?
            .collect::<Result<Vec<_>, _>>()?;
        entries.sort_by_key(|e| e.file_name());
        let mut subdirs = Vec::new();
        for e in entries {
            let Some(name) = e.file_name().to_str().map(str::to_string) else {
                warn(format!("skipping a file name that is not UTF-8 in /{rel}"));
                *skipped += 1;
                continue;
            };
            let child = if rel.is_empty() {
                name.clone()
            } else {
                format!("{rel}/{name}")
            };
            if rel.is_empty() && NOT_CONTENT.contains(&name.as_str()) {
                continue;
            }
            // The metadata formats are line- and tab-separated; a name that
            // a URL cannot carry unambiguously is not worth serving either.
            if WebPath::relative(&child)
                .map(|p| p.rel() != child)
                .unwrap_or(true)
            {
                warn(format!("skipping {child:?}: not a servable name"));
                *skipped += 1;
                continue;
            }
            let ft = e.file_type()?;
            if ft.is_dir() {
                subdirs.push((child, e.path()));
            } else if ft.is_file() {
                out.push((child, e.path()));
            } else {
                warn(format!(
                    "skipping {child}: not a regular file (symlinks are not served)"
                ));
                *skipped += 1;
            }
        }
        out.push((format!("{rel}/"), dir));
        stack.extend(subdirs.into_iter().rev());
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// Builds the site from `src` into `layout`, reusing compressed variants
/// found in `artifacts` (a previous build's `save-artifacts` output).
pub fn assemble(
    src: &Path,
    layout: &Layout,
    artifacts: Option<&Path>,
    opts: &Options,
    warn: &mut dyn FnMut(String),
) -> io::Result<Summary> {
    assemble_with(src, layout, artifacts, opts, warn, &mut compress_here)
}

/// One compression still to do: the file `src` (already in the web root) into `out`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub enc: Encoding,
    /// gzip level or brotli quality.
    pub level: u32,
    pub src: PathBuf,
    pub out: PathBuf,
}

/// Runs a batch of [`Job`]s, in any order or at once; one variant per job, in order.
pub type Compressor<'a> = dyn FnMut(&[Job]) -> io::Result<Vec<Variant>> + 'a;

/// Does one job: compresses `src` and writes `out` when it is worth it.
pub fn run_job(job: &Job) -> io::Result<Variant> {
    let content = fs::read(&job.src).map_err(|e| with_path(e, &job.src))?;
    let bytes = compress_at(&content, job.enc, job.level)?;
    if worth_it(bytes.len(), content.len()) {
        write_new(&job.out, &bytes)?;
        Ok(Variant::Stored(bytes.len() as u64))
    } else {
        Ok(Variant::Rejected)
    }
}

/// The jobs one after the other, in this process.
pub fn compress_here(jobs: &[Job]) -> io::Result<Vec<Variant>> {
    jobs.iter().map(run_job).collect()
}

/// Jobs as a file a child process reads: `gz|br NUL level NUL src NUL out NUL` each.
pub fn encode_jobs(jobs: &[Job]) -> Vec<u8> {
    let mut out = Vec::new();
    for j in jobs {
        for f in [
            artifact_kind(j.enc).to_string(),
            j.level.to_string(),
            j.src.display().to_string(),
            j.out.display().to_string(),
        ] {
            out.extend_from_slice(f.as_bytes());
            out.push(0);
        }
    }
    out
}

pub fn decode_jobs(bytes: &[u8]) -> Option<Vec<Job>> {
    let body = bytes.strip_suffix(&[0]).unwrap_or(bytes);
    if body.is_empty() {
        return Some(Vec::new());
    }
    let fields: Vec<&str> = body
        .split(|&b| b == 0)
        .map(|f| std::str::from_utf8(f).ok())
        .collect::<Option<_>>()?;
    fields
        .chunks(4)
        .map(|f| match f {
            [enc, level, src, out] => Some(Job {
                enc: match *enc {
                    "gz" => Encoding::Gzip,
                    "br" => Encoding::Brotli,
                    _ => return None,
                },
                level: level.parse().ok()?,
                src: src.into(),
                out: out.into(),
            }),
            _ => None,
        })
        .collect()
}

/// Variants as a child reports them: one line each, the size or `x`.
pub fn encode_variants(vs: &[Variant]) -> String {
    vs.iter()
        .map(|v| match v {
            Variant::Stored(n) => format!("{n}\n"),
            _ => "x\n".to_string(),
        })
        .collect()
}

pub fn decode_variants(text: &str) -> Option<Vec<Variant>> {
    text.lines()
        .map(|l| match l {
            "x" => Some(Variant::Rejected),
            n => n.parse().ok().map(Variant::Stored),
        })
        .collect()
}

/// Where a file's variant will come from once the batch of jobs has run.
#[derive(Debug, Clone)]
enum Slot {
    /// Known now; `true` if computed in this build.
    Ready(Variant, bool),
    /// The result of job `n`.
    Job(usize),
    /// The same content as job `n`: its output copied to this path.
    CopyOf(usize, PathBuf),
}

/// [`assemble`] with the compressions done by `compress` (static-web's assemble runs them
/// in child processes on every core).
pub fn assemble_with(
    src: &Path,
    layout: &Layout,
    artifacts: Option<&Path>,
    opts: &Options,
    warn: &mut dyn FnMut(String),
    compress: &mut Compressor<'_>,
) -> io::Result<Summary> {
    let mut sum = Summary::default();
    let entries = walk(src, warn, &mut sum.skipped)?;
    let files: std::collections::HashSet<&str> = entries.iter().map(|(r, _)| r.as_str()).collect();
    for d in [&layout.web, &layout.meta, &layout.etc] {
        fs::create_dir_all(d).map_err(|e| with_path(e, d))?;
    }
    let mut manifest = String::from(meta::MANIFEST_HEADER);
    let mut variants = Variants {
        art: artifacts.map(|a| a.join(opts.compression.tag())),
        done: HashMap::new(),
        policy: opts.compression,
        jobs: Vec::new(),
    };
    // Pass 1 copies and renders, deciding each variant or queueing its job; pass 2 records.
    let mut records: Vec<(String, FileMeta, Option<[Slot; 2]>)> = Vec::new();
    for (rel, from) in &entries {
        if let Some(dir) = rel.strip_suffix('/') {
            for base in [&layout.web, &layout.meta] {
                let d = base.join(dir);
                fs::create_dir_all(&d).map_err(|e| with_path(e, &d))?;
            }
            continue;
        }
        // One open and one fstat per file (std's read_to_end on a File would
        // stat and seek again for its size hint).
        let (mtime, mut content) = (|| {
            let f = fs::File::open(from)?;
            let m = f.metadata()?;
            let mtime = m
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_secs());
            let mut content = Vec::with_capacity(usize::try_from(m.len()).unwrap_or(0));
            (&f).take(u64::MAX).read_to_end(&mut content)?;
            Ok::<_, io::Error>((mtime, content))
        })()
        .map_err(|e| with_path(e, from))?;
        let mut out_rel = rel.clone();
        if let Some(stem) = rel
            .strip_suffix(".md")
            .or_else(|| rel.strip_suffix(".markdown"))
        {
            let html = format!("{stem}.html");
            if files.contains(html.as_str()) {
                warn(format!(
                    "{rel}: {html} exists in the source, serving that instead of rendering"
                ));
                continue;
            }
            let text = String::from_utf8_lossy(&content);
            let title = stem.rsplit('/').next().unwrap_or(stem);
            content = markdown::render(&text, &opts.template, title).into_bytes();
            out_rel = html;
            sum.markdown += 1;
        }
        let content_type = mime::content_type(&out_rel).to_string();
        let sha256 = hex(&Sha256::digest(&content));
        let dst = layout.web.join(&out_rel);
        write_new(&dst, &content)?;

        let fm = FileMeta {
            size: content.len() as u64,
            mtime,
            sha256,
            gzip: Variant::NotTried,
            brotli: Variant::NotTried,
            content_type,
        };
        let slots = if opts.precompress
            && fm.size >= MIN_COMPRESS_SIZE
            && mime::is_compressible(&fm.content_type)
        {
            Some([
                variants.get(content.len(), &fm.sha256, Encoding::Gzip, &dst)?,
                variants.get(content.len(), &fm.sha256, Encoding::Brotli, &dst)?,
            ])
        } else {
            None
        };
        records.push((out_rel, fm, slots));
    }
    let done = compress(&variants.jobs)?;
    if done.len() != variants.jobs.len() {
        return Err(io::Error::other("the compressor lost some of its jobs"));
    }
    for (out_rel, mut fm, slots) in records {
        if let Some(slots) = slots {
            let mut computed = false;
            for (i, slot) in slots.into_iter().enumerate() {
                let (variant, fresh) = match slot {
                    Slot::Ready(v, fresh) => (v, fresh),
                    Slot::Job(n) => (done[n], true),
                    Slot::CopyOf(n, out) => {
                        if done[n].stored().is_some() {
                            let first = &variants.jobs[n].out;
                            fs::copy(first, &out).map_err(|e| with_path(e, &out))?;
                        }
                        (done[n], false)
                    }
                };
                computed |= fresh;
                if i == 0 {
                    fm.gzip = variant;
                } else {
                    fm.brotli = variant;
                }
            }
            if fm.has(Encoding::Gzip) || fm.has(Encoding::Brotli) {
                sum.precompressed += 1;
                sum.compressible_bytes += fm.size;
                sum.gzip_bytes += fm.len(Encoding::Gzip);
                sum.brotli_bytes += fm.len(Encoding::Brotli);
            }
            if computed {
                sum.compressed += 1;
            } else {
                sum.reused += 1;
            }
        }
        write_new(&layout.meta.join(&out_rel), fm.encode().as_bytes())?;
        manifest.push_str(&meta::manifest_line(&out_rel, &fm));
        sum.files += 1;
        sum.bytes += fm.size;
    }
    write_file(&layout.manifest(), manifest.as_bytes())?;
    write_file(&layout.config(), opts.config.to_file().as_bytes())?;
    write_file(&layout.compression_tag(), opts.compression.tag().as_bytes())?;
    Ok(sum)
}

/// Where compressed variants come from: the same content earlier in this
/// build, the previous build's artifacts, or the compressor.
struct Variants {
    /// `$DESTINATION/artifacts/v1`, in an incremental build.
    art: Option<PathBuf>,
    /// (sha256, kind) → the variant (or its job) and where it was written.
    done: HashMap<(String, &'static str), (Slot, PathBuf)>,
    policy: CompressionPolicy,
    /// Compressions to run, for [`Slot::Job`].
    jobs: Vec<Job>,
}

impl Variants {
    /// Where the compressed variant of the file at `dst` (`len` bytes) comes from.
    fn get(&mut self, len: usize, sha: &str, enc: Encoding, dst: &Path) -> io::Result<Slot> {
        let kind = artifact_kind(enc);
        let out = PathBuf::from(format!("{}{}", dst.display(), enc.file_suffix()));
        if let Some((slot, first)) = self.done.get(&(sha.to_string(), kind)) {
            return Ok(match slot {
                Slot::Ready(v, _) => {
                    if v.stored().is_some() {
                        fs::copy(first, &out).map_err(|e| with_path(e, &out))?;
                    }
                    Slot::Ready(*v, false)
                }
                Slot::Job(n) | Slot::CopyOf(n, _) => Slot::CopyOf(*n, out),
            });
        }
        let slot = match self.reuse(sha, kind, &out)? {
            Some(v) => Slot::Ready(v, false),
            None => {
                let level = match enc {
                    Encoding::Brotli => self.policy.brotli_quality_for(len),
                    _ => self.policy.gzip_level,
                };
                self.jobs.push(Job { enc, level, src: dst.to_path_buf(), out: out.clone() });
                Slot::Job(self.jobs.len() - 1)
            }
        };
        self.done.insert((sha.to_string(), kind), (slot.clone(), out));
        Ok(slot)
    }

    /// The previous build's variant of this content, moved into place (the
    /// artifacts are this build's to consume; a rename is one file operation
    /// where a copy is five). Only regular files count: a link planted in the
    /// artifacts is not followed.
    fn reuse(&self, sha: &str, kind: &str, out: &Path) -> io::Result<Option<Variant>> {
        let Some(art) = &self.art else {
            return Ok(None);
        };
        let stored = art.join(kind).join(sha);
        if let Ok(m) = fs::symlink_metadata(&stored) {
            if m.is_file() && m.len() > 0 {
                if fs::rename(&stored, out).is_err() {
                    fs::copy(&stored, out).map_err(|e| with_path(e, out))?;
                }
                return Ok(Some(Variant::Stored(m.len())));
            }
        }
        let none = art.join(kind).join(format!("{sha}.none"));
        Ok(fs::symlink_metadata(none)
            .is_ok_and(|m| m.is_file())
            .then_some(Variant::Rejected))
    }
}

/// The artifacts directory of a coding: `gz` or `br`.
pub fn artifact_kind(enc: Encoding) -> &'static str {
    match enc {
        Encoding::Brotli => "br",
        _ => "gz",
    }
}

pub fn compress(content: &[u8], enc: Encoding, policy: &CompressionPolicy) -> io::Result<Vec<u8>> {
    let level = match enc {
        Encoding::Brotli => policy.brotli_quality_for(content.len()),
        _ => policy.gzip_level,
    };
    compress_at(content, enc, level)
}

/// `content` compressed at `level` (gzip level or brotli quality).
fn compress_at(content: &[u8], enc: Encoding, level: u32) -> io::Result<Vec<u8>> {
    match enc {
        Encoding::Identity => Ok(content.to_vec()),
        Encoding::Gzip => {
            // mtime 0 in the header: the same content gives the same bytes.
            let mut e = flate2::GzBuilder::new().mtime(0).write(
                Vec::with_capacity(content.len() / 2),
                flate2::Compression::new(level.clamp(1, 9)),
            );
            e.write_all(content)?;
            e.finish()
        }
        Encoding::Brotli => {
            let mut out = Vec::with_capacity(content.len() / 2);
            {
                let q = level.min(11);
                let mut w = brotli::CompressorWriter::new(&mut out, 4096, q, BROTLI_WINDOW);
                w.write_all(content)?;
                w.flush()?;
            }
            Ok(out)
        }
    }
}

/// Writes a file whose directory exists (the walk lists a directory before
/// anything in it, and assemble creates it then): one operation fewer per
/// file than [`write_file`], which counts in a sandbox where each is a host call.
fn write_new(path: &Path, bytes: &[u8]) -> io::Result<()> {
    fs::write(path, bytes).map_err(|e| with_path(e, path))
}

fn write_file(path: &Path, bytes: &[u8]) -> io::Result<()> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(|e| with_path(e, parent))?;
    }
    fs::write(path, bytes).map_err(|e| with_path(e, path))
}

fn with_path(e: io::Error, p: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", p.display()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `save-artifacts`: the compressed variants of the built site as a tar,
/// keyed by content hash (`<policy>/gz/<sha256>`, `<policy>/br/<sha256>` where `<policy>` is the
/// [`CompressionPolicy::tag`], e.g. `v2-gz6-brsize`; an empty
/// `<sha256>.none` records that compressing was not worth it), each content
/// once. Returns the number of entries written.
pub fn write_artifacts<W: Write>(layout: &Layout, out: W) -> io::Result<(u64, W)> {
    let mut tar = tar::Builder::new(out);
    let manifest = match fs::read_to_string(layout.manifest()) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(with_path(e, &layout.manifest())),
    };
    let header = |size: u64, kind: tar::EntryType| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_size(size);
        h.set_mode(if kind.is_dir() { 0o755 } else { 0o644 });
        h.set_mtime(0);
        h
    };
    // The policy the site was compressed with names the directory (images from before
    // there was a policy: v1, gzip 9 and brotli 11).
    let v = match fs::read_to_string(layout.compression_tag()) {
        Ok(t) if !t.trim().is_empty() && !t.contains(['/', '.']) => t.trim().to_string(),
        _ => "v1".to_string(),
    };
    for dir in [format!("{v}/"), format!("{v}/gz/"), format!("{v}/br/")] {
        tar.append_data(&mut header(0, tar::EntryType::Directory), dir, io::empty())?;
    }
    let mut seen = std::collections::HashSet::new();
    let mut entries = 0;
    for (path, m) in manifest.lines().filter_map(meta::parse_manifest_line) {
        for (enc, variant) in [(Encoding::Gzip, m.gzip), (Encoding::Brotli, m.brotli)] {
            let name = format!("{v}/{}/{}", artifact_kind(enc), m.sha256);
            if !seen.insert(name.clone()) {
                continue;
            }
            match variant {
                Variant::Stored(_) => {
                    // The manifest is ours, but keep a path it names inside the web root.
                    let rel = WebPath::relative(&path)
                        .map_err(|e| io::Error::other(format!("{path}: {e}")))?;
                    let file = layout
                        .web
                        .join(format!("{}{}", rel.rel(), enc.file_suffix()));
                    let f = fs::File::open(&file).map_err(|e| with_path(e, &file))?;
                    let size = f.metadata()?.len();
                    tar.append_data(&mut header(size, tar::EntryType::Regular), &name, f)?;
                }
                Variant::Rejected => {
                    tar.append_data(
                        &mut header(0, tar::EntryType::Regular),
                        format!("{name}.none"),
                        io::empty(),
                    )?;
                }
                Variant::NotTried => continue,
            }
            entries += 1;
        }
    }
    let mut out = tar.into_inner()?;
    out.flush()?;
    Ok((entries, out))
}

/// The built site through std::fs: one metadata record per lookup, as the
/// run hook reads it (the hook itself uses wasi:filesystem directly; this is
/// the same lookup for native tests and tools).
pub struct FsSite {
    pub meta: PathBuf,
}

/// Records are one short line; anything bigger is not one of ours.
pub const MAX_RECORD: u64 = 4096;

impl serve::Site for FsSite {
    fn lookup(&self, path: &WebPath) -> Entry {
        let p = self.meta.join(path.rel());
        match fs::symlink_metadata(&p) {
            Ok(m) if m.is_dir() => Entry::Dir,
            Ok(m) if m.is_file() && m.len() <= MAX_RECORD => fs::read_to_string(&p)
                .ok()
                .and_then(|t| FileMeta::decode(&t))
                .map_or(Entry::Missing, Entry::File),
            _ => Entry::Missing,
        }
    }
}

/// Reads the run hook's configuration: assemble's file, then `env`.
pub fn load_config(file: &Path, env: &[(String, String)]) -> (Config, Vec<String>) {
    config_from(&fs::read_to_string(file).unwrap_or_default(), env)
}

/// The configuration from the config file's text, overridden by `env`;
/// also the keys whose values were refused.
pub fn config_from(text: &str, env: &[(String, String)]) -> (Config, Vec<String>) {
    let mut cfg = Config::default();
    let mut rejected = cfg.apply(Config::parse_lines(text));
    rejected.extend(cfg.apply(env.iter().map(|(k, v)| (k.as_str(), v.as_str()))));
    (cfg, rejected)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::{respond, Body, Request, Site};
    use std::collections::HashMap;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("static-web-test-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    fn sample_source(root: &Path) -> PathBuf {
        let src = root.join("src");
        fs::create_dir_all(src.join("docs")).unwrap();
        fs::create_dir_all(src.join(".s2i")).unwrap();
        fs::write(src.join(".s2i/environment"), "WEB_INDEX=index.html\n").unwrap();
        fs::write(src.join("index.html"), "<h1>hello</h1>".repeat(100)).unwrap();
        fs::write(src.join("style.css"), "body { color: red; }\n".repeat(50)).unwrap();
        // The same content twice: compressed once.
        fs::write(src.join("copy.css"), "body { color: red; }\n".repeat(50)).unwrap();
        fs::write(src.join("tiny.js"), "1").unwrap();
        fs::write(src.join("logo.png"), [0x89u8, b'P', b'N', b'G']).unwrap();
        // Text by its name, but incompressible: its variants are rejected.
        let mut x = 12345u32;
        let noise: Vec<u8> = (0..2000)
            .map(|_| {
                x = x.wrapping_mul(1664525).wrapping_add(1013904223);
                (x >> 24) as u8
            })
            .collect();
        fs::write(src.join("noise.txt"), noise).unwrap();
        fs::write(
            src.join("docs/guide.md"),
            "# The Guide\n\nSee [home](../index.md).\n",
        )
        .unwrap();
        fs::write(src.join("docs/both.md"), "# md\n").unwrap();
        fs::write(src.join("docs/both.html"), "<p>html wins</p>").unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink("/etc/passwd", src.join("passwd")).unwrap();
        src
    }

    fn summary_of(root: &Path, src: &Path, art: Option<&Path>) -> (Summary, Vec<String>) {
        let mut warnings = Vec::new();
        let s = assemble(
            src,
            &Layout::under(root),
            art,
            &Options::default(),
            &mut |w| warnings.push(w),
        )
        .unwrap();
        (s, warnings)
    }

    #[test]
    fn assemble_copies_renders_compresses_and_records() {
        let root = tmp("assemble");
        let src = sample_source(&root);
        let (sum, warnings) = summary_of(&root, &src, None);
        let l = Layout::under(&root);
        assert_eq!(sum.files, 8, "{sum:?}");
        assert_eq!(sum.markdown, 1);
        assert_eq!((sum.precompressed, sum.compressed, sum.reused), (4, 4, 1));
        assert!(
            warnings.iter().any(|w| w.contains("both.html exists")),
            "{warnings:?}"
        );
        #[cfg(unix)]
        assert!(warnings.iter().any(|w| w.contains("passwd")));
        assert!(!l.web.join(".s2i").exists() && !l.web.join("passwd").exists());
        let guide = fs::read_to_string(l.web.join("docs/guide.html")).unwrap();
        assert!(
            guide.contains("<title>The Guide</title>") && guide.contains("href=\"../index.html\"")
        );
        assert!(!l.web.join("docs/guide.md").exists());
        assert_eq!(
            fs::read_to_string(l.web.join("docs/both.html")).unwrap(),
            "<p>html wins</p>"
        );
        // The variants decompress to the original.
        let gz = fs::read(l.web.join("style.css.gz")).unwrap();
        let mut plain = String::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_string(&mut plain)
            .unwrap();
        assert_eq!(plain, "body { color: red; }\n".repeat(50));
        let br = fs::read(l.web.join("style.css.br")).unwrap();
        let mut plain = Vec::new();
        brotli::Decompressor::new(&br[..], 4096)
            .read_to_end(&mut plain)
            .unwrap();
        assert_eq!(plain, "body { color: red; }\n".repeat(50).into_bytes());
        assert!(!l.web.join("tiny.js.gz").exists() && !l.web.join("logo.png.gz").exists());
        let manifest = fs::read_to_string(l.manifest()).unwrap();
        let lines: Vec<_> = manifest
            .lines()
            .filter_map(meta::parse_manifest_line)
            .collect();
        assert_eq!(lines.len(), 8);
        assert_eq!(
            fs::read(l.web.join("copy.css.br")).unwrap(),
            fs::read(l.web.join("style.css.br")).unwrap()
        );
        let noise = &lines.iter().find(|(p, _)| p == "noise.txt").unwrap().1;
        assert_eq!(
            (noise.gzip, noise.brotli),
            (Variant::Rejected, Variant::Rejected)
        );
        assert!(!l.web.join("noise.txt.gz").exists());
        let css = &lines.iter().find(|(p, _)| p == "style.css").unwrap().1;
        assert_eq!(css.gzip, Variant::Stored(gz.len() as u64));
        assert_eq!(css.content_type, "text/css; charset=utf-8");
        assert!(
            sum.line().starts_with(
                "8 files (5.8 kB), 4 precompressed (4 compressed, 1 reused), gzip ratio 0.1"
            ),
            "{}",
            sum.line()
        );
    }

    #[test]
    fn artifacts_are_reused_by_content_hash() {
        let root = tmp("reuse");
        let src = sample_source(&root);
        let (first, _) = summary_of(&root, &src, None);
        // What save-artifacts produces, unpacked where ws2i puts it.
        let art = root.join("artifacts");
        let l = Layout::under(&root);
        let (n, tar_bytes) = write_artifacts(&l, Vec::new()).unwrap();
        assert_eq!(n, 8, "gz and br of three files, two .none markers");
        tar::Archive::new(&tar_bytes[..]).unpack(&art).unwrap();
        fs::write(src.join("style.css"), "body { color: blue; }\n".repeat(50)).unwrap();
        let root2 = tmp("reuse2");
        let (second, _) = summary_of(&root2, &src, Some(&art));
        assert_eq!(
            (second.precompressed, second.compressed, second.reused),
            (4, 1, 4),
            "{second:?}"
        );
        assert_eq!(first.files, second.files);
        let gz = fs::read(Layout::under(&root2).web.join("index.html.gz")).unwrap();
        assert_eq!(gz, fs::read(l.web.join("index.html.gz")).unwrap());
    }

    #[test]
    fn the_compression_policy_reads_its_overrides_and_names_its_artifacts() {
        let d = CompressionPolicy::default();
        assert_eq!((d.gzip_level, d.brotli_quality), (6, None));
        assert_eq!(
            [1_000, 100_000, 5_000_000].map(|n| d.brotli_quality_for(n)),
            [7, 6, 5]
        );
        assert_eq!(d.tag(), "v2-gz6-brsize");
        let (p, bad) = CompressionPolicy::from_vars(Some("9"), Some(" 11 "));
        assert!(bad.is_empty());
        assert_eq!((p.brotli_quality_for(1), p.brotli_quality_for(5_000_000)), (11, 11));
        assert_eq!(p.tag(), "v2-gz9-br11");
        for (gz, br) in [("0", "12"), ("ten", "-1"), ("10", "x")] {
            let (p, bad) = CompressionPolicy::from_vars(Some(gz), Some(br));
            assert_eq!(p, d, "{gz} {br}");
            assert_eq!(bad, ["WEB_GZIP_LEVEL", "WEB_BROTLI_QUALITY"]);
        }
        assert_eq!(CompressionPolicy::from_vars(Some(""), None), (d, vec![]));
    }

    #[test]
    fn artifacts_made_with_another_policy_are_not_reused() {
        let root = tmp("policy");
        let src = sample_source(&root);
        summary_of(&root, &src, None);
        let l = Layout::under(&root);
        assert_eq!(fs::read_to_string(l.compression_tag()).unwrap(), "v2-gz6-brsize");
        let art = root.join("artifacts");
        let (_, tar_bytes) = write_artifacts(&l, Vec::new()).unwrap();
        tar::Archive::new(&tar_bytes[..]).unpack(&art).unwrap();
        assert!(art.join("v2-gz6-brsize/gz").is_dir());
        let opts = Options {
            compression: CompressionPolicy::from_vars(Some("9"), Some("11")).0,
            ..Options::default()
        };
        let root2 = tmp("policy2");
        let sum = assemble(&src, &Layout::under(&root2), Some(&art), &opts, &mut |_| {}).unwrap();
        assert_eq!((sum.compressed, sum.reused), (4, 1), "{sum:?}");
        let br = fs::read(Layout::under(&root2).web.join("index.html.br")).unwrap();
        let mut plain = Vec::new();
        brotli::Decompressor::new(&br[..], 4096).read_to_end(&mut plain).unwrap();
        assert_eq!(plain, "<h1>hello</h1>".repeat(100).into_bytes());
    }

    #[test]
    fn jobs_and_results_cross_to_a_child_and_back() {
        let jobs = vec![
            Job { enc: Encoding::Gzip, level: 6, src: "/w/a b.css".into(), out: "/w/a b.css.gz".into() },
            Job { enc: Encoding::Brotli, level: 11, src: "/w/x".into(), out: "/w/x.br".into() },
        ];
        assert_eq!(decode_jobs(&encode_jobs(&jobs)), Some(jobs));
        assert_eq!(decode_jobs(b""), Some(vec![]));
        assert_eq!(decode_jobs(b"zz\x006\0/a\0/b\0"), None);
        assert_eq!(decode_jobs(b"gz\0six\0/a\0/b\0"), None);
        assert_eq!(decode_jobs(b"gz\x006\0/a\0"), None);
        let vs = [Variant::Stored(12), Variant::Rejected];
        assert_eq!(decode_variants(&encode_variants(&vs)), Some(vs.to_vec()));
        assert_eq!(decode_variants("12\nfoo\n"), None);
    }

    #[test]
    fn a_compressor_given_the_jobs_gives_the_same_site_as_compressing_inline() {
        let root = tmp("jobs");
        let src = sample_source(&root);
        let (inline, _) = summary_of(&root, &src, None);
        let root2 = tmp("jobs2");
        let mut batches = 0;
        let mut reversed = |jobs: &[Job]| {
            batches += 1;
            // Out of order, as children on several cores would finish.
            let mut vs: Vec<Variant> = jobs.iter().rev().map(|j| run_job(j).unwrap()).collect();
            vs.reverse();
            Ok(vs)
        };
        let l2 = Layout::under(&root2);
        let sum = assemble_with(&src, &l2, None, &Options::default(), &mut |_| {}, &mut reversed).unwrap();
        assert_eq!(batches, 1);
        assert_eq!(sum, inline);
        let l = Layout::under(&root);
        for f in ["manifest.tsv"] {
            assert_eq!(fs::read(l.etc.join(f)).unwrap(), fs::read(l2.etc.join(f)).unwrap());
        }
        assert_eq!(fs::read(l.web.join("copy.css.br")).unwrap(), fs::read(l2.web.join("copy.css.br")).unwrap());
        let mut short = |_: &[Job]| Ok(vec![]);
        let err = assemble_with(&src, &Layout::under(&tmp("jobs3")), None, &Options::default(), &mut |_| {}, &mut short);
        assert!(err.unwrap_err().to_string().contains("lost some"));
    }

    #[test]
    fn the_built_site_serves_through_fs_site() {
        let root = tmp("serve");
        let src = sample_source(&root);
        summary_of(&root, &src, None);
        let l = Layout::under(&root);
        let site = FsSite {
            meta: l.meta.clone(),
        };
        assert_eq!(site.lookup(&WebPath::parse("/docs").unwrap()), Entry::Dir);
        assert_eq!(
            site.lookup(&WebPath::parse("/nope").unwrap()),
            Entry::Missing
        );
        let (cfg, bad) = load_config(&l.config(), &[("WEB_INDEX".into(), "../x".into())]);
        assert_eq!(bad, ["WEB_INDEX"]);
        let hdrs: HashMap<String, String> =
            [("accept-encoding".to_string(), "gzip".to_string())].into();
        let h = move |n: &str| hdrs.get(n).cloned();
        let r = respond(
            &Request {
                method: "GET",
                target: "/style.css",
                headers: &h,
            },
            &site,
            &cfg,
        );
        assert_eq!(r.header("content-encoding"), Some("gzip"));
        assert!(
            matches!(r.body, Body::File { ref rel, encoding: Encoding::Gzip, .. } if rel == "style.css")
        );
        for t in [
            "/passwd",
            "/.s2i/environment",
            "/../etc/passwd",
            "/style.css.gz",
        ] {
            let r = respond(
                &Request {
                    method: "GET",
                    target: t,
                    headers: &|_| None,
                },
                &site,
                &cfg,
            );
            assert_eq!(r.status, 404, "{t}");
        }
        // A record that is not ours is not served.
        fs::write(l.meta.join("index.html"), "garbage").unwrap();
        assert_eq!(
            site.lookup(&WebPath::parse("/index.html").unwrap()),
            Entry::Missing
        );
    }
}
