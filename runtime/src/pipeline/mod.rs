//! Pipelines: OKD's `BuildConfig`, `ImageStream` and `Build` objects and their triggers, run
//! locally by one `ws2i` process at a time or several at once, with no cluster and no daemon.
//!
//! What it owns: the objects' shapes and defaults ([`objects`]), reading them from files
//! ([`load`]), their state in an embedded SQLite database ([`db`]), OKD's controller rules
//! ([`controller`]), running one frozen Build ([`runner`]), per-build logs ([`logs`]) and oc's
//! printers ([`print`]). [`Pipeline`] is the API the CLI calls: each command that creates or
//! starts builds runs them, and the cascade of ImageChange triggers they fire, in the calling
//! process until nothing is left to run ([`Pipeline::settle`]).
//!
//! What it may use: `s2i` (Source strategy), `containerfile::bud` (Docker strategy), `image`
//! (the store: the current image of stream tag `IS:TAG` is also the store image `IS:TAG`,
//! `NS/IS:TAG` outside the default namespace), `layer` (unpacking an image for `images[].paths`),
//! `source`. It sits above all of them; nothing below imports it.

pub mod controller;
pub mod db;
pub mod load;
pub mod logs;
pub mod objects;
pub mod print;
pub mod runner;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};

use controller::{Outcome, Request};
use db::{Db, Owner, Recovered};
use load::{Loaded, Object};
use logs::{BuildLogFile, Echo};
use objects::*;

use crate::image::registry::RegistryOptions;
use crate::image::{LocalRef, NameTag, Store};
use crate::sandbox::CancelToken;
use crate::Digest;

/// What a command tells its user as it goes (besides the build log lines of [`Echo`]).
pub trait Events: Echo {
    fn event(&self, msg: &str);
    fn warning(&self, msg: &str);
}

/// How a command ended: the final state of every build it created, ran or waited for.
#[derive(Debug, Default)]
pub struct Report {
    pub builds: Vec<Build>,
}

impl Report {
    /// Some build ended Failed, Error or Cancelled.
    pub fn any_failed(&self) -> bool {
        self.builds.iter().any(|b| b.status.phase.is_failure())
    }
    pub fn build(&self, name: &str) -> Option<&Build> {
        self.builds.iter().find(|b| b.metadata.name == name)
    }
}

/// `import-image` options (oc's flags).
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    pub from: Option<String>,
    pub confirm: bool,
    pub all: bool,
}

/// `start-build` options (oc's flags).
#[derive(Debug, Clone, Default)]
pub struct StartOptions {
    pub commit: Option<String>,
    pub env: Vec<EnvVar>,
    pub from_dir: Option<PathBuf>,
    pub from_build: Option<String>,
}

/// What `apply` did with one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Created,
    Configured,
    Unchanged,
}

impl Applied {
    pub fn as_str(self) -> &'static str {
        match self {
            Applied::Created => "created",
            Applied::Configured => "configured",
            Applied::Unchanged => "unchanged",
        }
    }
}

pub struct Pipeline<'a> {
    home: PathBuf,
    cache: PathBuf,
    ns: String,
    db: Db,
    store: Store,
    me: Owner,
    events: &'a dyn Events,
    /// The builds this command created, ran or waits for.
    watched: BTreeSet<(String, String)>,
    /// How DockerImage references are imported (the defaults: loopback registries over plain
    /// HTTP, credentials from the auth file).
    registry: RegistryOptions,
}

impl<'a> Pipeline<'a> {
    /// Opens the pipeline state of the store at `home`; builds left Running by a dead process
    /// become Error now (reported as a warning).
    pub fn open(home: &Path, cache: &Path, ns: &str, events: &'a dyn Events) -> Result<Self> {
        load::validate_name("namespace", ns).map_err(anyhow::Error::msg)?;
        let store = Store::open(home)?;
        let (db, rec) = Db::open(home)?;
        let p = Pipeline {
            home: home.into(),
            cache: cache.into(),
            ns: ns.into(),
            db,
            store,
            me: Owner::me(),
            events,
            watched: BTreeSet::new(),
            registry: RegistryOptions::default(),
        };
        p.report_recovered(&rec);
        Ok(p)
    }

    fn report_recovered(&self, rec: &Recovered) {
        for b in &rec.errored {
            self.events.warning(&format!(
                "build {b} was Running in a ws2i process that is gone; it is now Error"
            ));
        }
    }

    pub fn namespace(&self) -> &str {
        &self.ns
    }

    // ------------------------------------------------------------------------------- commands

    /// `ws2i apply -f`: creates or updates the objects in one transaction (nothing is written if
    /// one fails), fires ConfigChange for new BuildConfigs and the ImageChange triggers, then
    /// runs the builds until the cascade settles.
    pub fn apply(&mut self, loaded: Loaded) -> Result<(Vec<(String, Applied)>, Report)> {
        for w in &loaded.warnings {
            self.events.warning(w);
        }
        let imports = self.import_spec_tags(&loaded.objects)?;
        let (ns_default, me, store) = (self.ns.clone(), self.me.clone(), self.store.clone());
        let (results, created, import_warnings) = self.db.write(|tx| {
            let mut import_warnings = Vec::new();
            let mut results = Vec::new();
            let mut new_bcs = Vec::new();
            let mut namespaces = BTreeSet::new();
            for mut obj in loaded.objects {
                let ns = obj
                    .meta()
                    .namespace
                    .clone()
                    .unwrap_or_else(|| ns_default.clone());
                namespaces.insert(ns.clone());
                let qualified = obj.qualified_name();
                let what = match &mut obj {
                    Object::ImageStream(is) => {
                        is.metadata.namespace = Some(ns.clone());
                        let old = tx.image_stream(&ns, &is.metadata.name)?;
                        let what = upsert_meta(
                            &mut is.metadata,
                            old.as_ref().map(|o| (&o.metadata, o.spec == is.spec)),
                        );
                        if what != Applied::Unchanged {
                            tx.put_image_stream(is)?;
                            import_warnings.extend(resolve_spec_tags(
                                tx,
                                &store,
                                &ns,
                                &is.metadata.name,
                                &imports,
                            )?);
                        }
                        what
                    }
                    Object::BuildConfig(bc) => {
                        bc.metadata.namespace = Some(ns.clone());
                        let old = tx.build_config(&ns, &bc.metadata.name)?;
                        let what = upsert_meta(
                            &mut bc.metadata,
                            old.as_ref().map(|o| (&o.metadata, o.spec == bc.spec)),
                        );
                        if let Some(o) = &old {
                            bc.status = o.status.clone();
                        }
                        if what != Applied::Unchanged {
                            tx.put_build_config(bc)?;
                        }
                        if what == Applied::Created {
                            new_bcs.push((ns.clone(), bc.metadata.name.clone()));
                        }
                        what
                    }
                    Object::Secret(sec) => {
                        sec.metadata.namespace = Some(ns.clone());
                        let old = tx.secret(&ns, &sec.metadata.name)?;
                        let what = upsert_meta(
                            &mut sec.metadata,
                            old.as_ref().map(|o| (&o.metadata, o.data == sec.data)),
                        );
                        if what != Applied::Unchanged {
                            tx.put_secret(sec)?;
                        }
                        what
                    }
                    Object::ConfigMap(cm) => {
                        cm.metadata.namespace = Some(ns.clone());
                        let old = tx.config_map(&ns, &cm.metadata.name)?;
                        let what = upsert_meta(
                            &mut cm.metadata,
                            old.as_ref().map(|o| {
                                (
                                    &o.metadata,
                                    (&o.data, &o.binary_data) == (&cm.data, &cm.binary_data),
                                )
                            }),
                        );
                        if what != Applied::Unchanged {
                            tx.put_config_map(cm)?;
                        }
                        what
                    }
                };
                results.push((qualified, what));
            }
            let mut created = Vec::new();
            for (ns, name) in new_bcs {
                created.extend(controller::fire_config_change(tx, &ns, &name, &me)?);
            }
            for ns in &namespaces {
                created.extend(controller::fire_image_triggers(tx, ns, &me)?);
            }
            Ok((results, created, import_warnings))
        })?;
        for (q, what) in &results {
            self.events.event(&format!("{q} {}", what.as_str()));
        }
        for w in &import_warnings {
            self.events.warning(w);
        }
        self.watch_created(&created);
        let report = self.settle()?;
        Ok((results, report))
    }

    fn watch_created(&mut self, builds: &[Build]) {
        for b in builds {
            self.watched
                .insert((b.metadata.namespace().to_string(), b.metadata.name.clone()));
            let name = &b.metadata.name;
            let msg = if controller::is_waiting(b) {
                format!(
                    "build.build.openshift.io/{name} created, {}",
                    b.status.message.as_deref().unwrap_or("waiting")
                )
            } else if b.spec.triggered_by.len() > 1 {
                // A build that waited for this image, now pinned to it.
                format!(
                    "build.build.openshift.io/{name} triggered: {}",
                    b.spec
                        .triggered_by
                        .last()
                        .map(|c| c.message.as_str())
                        .unwrap_or_default()
                )
            } else {
                format!("build.build.openshift.io/{name} created")
            };
            self.events.event(&msg);
        }
    }

    /// `ws2i start-build BC`: a new build (or a clone of `--from-build`), run with its cascade.
    /// Returns the build's name and the report.
    pub fn start_build(&mut self, bc: &str, opts: StartOptions) -> Result<(String, Report)> {
        if opts.from_build.is_some() && (opts.from_dir.is_some() || opts.commit.is_some()) {
            bail!("--from-build cannot be combined with --from-dir or --commit");
        }
        if let Some(d) = &opts.from_dir {
            if !d.is_dir() {
                bail!("--from-dir {}: not a directory", d.display());
            }
        }
        let (ns, me) = (self.ns.clone(), self.me.clone());
        let from_dir = opts
            .from_dir
            .as_ref()
            .map(|d| std::fs::canonicalize(d).unwrap_or_else(|_| d.clone()));
        let b = self.db.write(|tx| {
            let (bc_name, clone_of) = match &opts.from_build {
                Some(old) => {
                    let b = tx
                        .build(&ns, old)?
                        .with_context(|| format!("build {old} not found"))?;
                    (
                        b.bc_name()
                            .context("the build has no BuildConfig")?
                            .to_string(),
                        Some(b),
                    )
                }
                None => (bc.to_string(), None),
            };
            let req = Request {
                causes: vec![BuildTriggerCause {
                    message: cause::MANUAL.into(),
                    ..Default::default()
                }],
                commit: opts.commit.clone(),
                env: opts.env.clone(),
                from_dir: from_dir.clone(),
                clone_of,
                ..Default::default()
            };
            controller::instantiate(tx, &ns, &bc_name, req, &me)
        })?;
        let name = b.metadata.name.clone();
        self.events
            .event(&format!("build.build.openshift.io/{name} started"));
        self.watched.insert((ns, name.clone()));
        if controller::is_waiting(&b) {
            self.events.warning(&format!(
                "{name}: {}",
                b.status.message.as_deref().unwrap_or_default()
            ));
        }
        let report = self.settle()?;
        Ok((name, report))
    }

    /// Runs every build this process may run, and the builds they trigger, until none is left;
    /// waits (polling the database) for builds of this command queued behind another process's.
    pub fn settle(&mut self) -> Result<Report> {
        loop {
            let me = self.me.clone();
            if let Some(b) = self.db.write(|tx| controller::claim_next(tx, &me))? {
                self.watched
                    .insert((b.metadata.namespace().to_string(), b.metadata.name.clone()));
                self.run_one(b)?;
                continue;
            }
            let me = self.me.clone();
            let pending = self.db.read(|tx| {
                let mut n = 0;
                for (ns, name) in &self.watched {
                    if let Some(b) = tx.build(ns, name)? {
                        if controller::will_progress(tx, &b, &me)? {
                            n += 1;
                        }
                    }
                }
                Ok(n)
            })?;
            if pending == 0 {
                break;
            }
            // Queued behind a build of another live process (run policy); its owner may die.
            std::thread::sleep(Duration::from_millis(200));
            let rec = self.db.recover()?;
            self.report_recovered(&rec);
        }
        let mut report = Report::default();
        for (ns, name) in &self.watched {
            if let Some(b) = self.db.read(|tx| tx.build(ns, name))? {
                if controller::is_waiting(&b) {
                    self.events.event(&format!(
                        "{name}: {}",
                        b.status.message.as_deref().unwrap_or("waiting as New")
                    ));
                }
                report.builds.push(b);
            }
        }
        report.builds.sort_by(|a, b| {
            a.metadata
                .creation_timestamp
                .cmp(&b.metadata.creation_timestamp)
        });
        Ok(report)
    }

    fn run_one(&mut self, b: Build) -> Result<()> {
        let ns = b.metadata.namespace().to_string();
        let name = b.metadata.name.clone();
        self.events
            .event(&format!("build.build.openshift.io/{name} running"));
        let okd = self
            .db
            .read(|tx| tx.build_config(&ns, b.bc_name().unwrap_or_default()))?
            .is_some_and(|bc| {
                bc.metadata
                    .annotations
                    .get(runner::BUILD_METADATA)
                    .map(String::as_str)
                    == Some("okd")
            });
        let log = BuildLogFile::create(&self.home, &ns, &name, self.events)?;
        let cancel = CancelToken::default();
        let poller = CancelPoller::start(&self.home, &ns, &name, cancel.clone())?;
        let inputs = self.db.read(|tx| build_inputs(tx, &b))?;
        let env = runner::RunEnv {
            store: &self.store,
            cache_dir: &self.cache,
            okd_metadata: okd,
            cancel,
            inputs: &inputs,
        };
        let runner::RunResult { outcome, commit } = runner::run(&b, &env, &log);
        drop(poller);
        let snippet = log.snippet();
        drop(log);
        let (me, store) = (self.me.clone(), self.store.clone());
        let done = self.db.write(|tx| {
            if let Some(mut cur) = tx.build(&ns, &name)? {
                if let Some(commit) = &commit {
                    let rev = cur
                        .spec
                        .common
                        .revision
                        .get_or_insert_with(Default::default);
                    rev.revision_type = "Git".into();
                    rev.git.get_or_insert_with(Default::default).commit = commit.clone();
                }
                if matches!(outcome, Outcome::Failed { .. }) {
                    cur.status.log_snippet = Some(snippet);
                }
                let owner = tx.owner_of(&ns, &name)?;
                tx.put_build(&cur, owner.as_ref())?;
            }
            controller::complete(tx, &store, &ns, &name, outcome, &me)
        })?;
        // The private tag goes only now: until the completion, nothing else referenced the image.
        let _ = self
            .store
            .remove(&LocalRef::Tagged(runner::scratch_tag(&b)));
        for p in &done.pruned {
            let _ = std::fs::remove_file(logs::log_path(&self.home, &ns, p));
        }
        let b = &done.build;
        let took = b
            .status
            .duration
            .map(|d| format!(" in {:.1}s", d as f64 / 1e9))
            .unwrap_or_default();
        match b.status.phase {
            BuildPhase::Complete => {
                let digest = b.image_digest().unwrap_or_default();
                let to = b
                    .spec
                    .common
                    .output
                    .to
                    .as_ref()
                    .map(|t| t.name.clone())
                    .unwrap_or_default();
                if done.tag_changed || to.is_empty() {
                    self.events
                        .event(&format!("{name}: Complete{took}: {to} is {digest}"));
                } else {
                    self.events.event(&format!(
                        "{name}: Complete{took}: {}",
                        b.status.message.as_deref().unwrap_or_default()
                    ));
                }
            }
            phase => self.events.event(&format!(
                "{name}: {phase}{took} ({}): {}",
                b.status.reason.as_deref().unwrap_or_default(),
                b.status.message.as_deref().unwrap_or_default()
            )),
        }
        self.watch_created(&done.triggered);
        Ok(())
    }

    /// `ws2i cancel-build NAME… | bc/NAME`: New and Pending builds become Cancelled at once; a
    /// Running one is marked and stops at its next stage (its image is never tagged).
    pub fn cancel(&mut self, targets: &[String]) -> Result<Vec<String>> {
        let ns = self.ns.clone();
        self.db.write(|tx| {
            let mut out = Vec::new();
            for t in targets {
                let builds = match t
                    .strip_prefix("bc/")
                    .or_else(|| t.strip_prefix("buildconfig/"))
                {
                    Some(bc) => tx.builds(&ns, Some(bc))?,
                    None => {
                        let n = t.strip_prefix("build/").unwrap_or(t);
                        vec![tx
                            .build(&ns, n)?
                            .with_context(|| format!("build {n} not found"))?]
                    }
                };
                for mut b in builds {
                    if b.status.phase.is_terminal() {
                        continue;
                    }
                    let owner = tx.owner_of(&ns, &b.metadata.name)?;
                    if b.status.phase == BuildPhase::Running {
                        b.status.cancelled = true;
                        tx.put_build(&b, owner.as_ref())?;
                    } else {
                        controller::cancel(&mut b, "The build was cancelled by the user.");
                        tx.put_build(&b, None)?;
                    }
                    out.push(b.metadata.name.clone());
                }
            }
            Ok(out)
        })
    }

    /// `ws2i tag SRC DST [--alias]`: makes the image SRC names (a stream tag, `IS@sha256:…`, or a
    /// store image) the current image of stream tag DST, firing the triggers that watch it.
    pub fn tag(&mut self, src: &str, dst: &str, alias: bool) -> Result<(String, Report)> {
        let (ns, store, me) = (self.ns.clone(), self.store.clone(), self.me.clone());
        let (ds, dt) =
            split_istag(dst).with_context(|| format!("destination {dst:?} must be STREAM:TAG"))?;
        load::validate_name("destination stream", ds).map_err(anyhow::Error::msg)?;
        load::validate_tag_name("destination", dt).map_err(anyhow::Error::msg)?;
        let (msg, created) = self.db.write(|tx| {
            let mut is = match tx.image_stream(&ns, ds)? {
                Some(is) => is,
                None => {
                    let mut is = ImageStream::default();
                    is.metadata.name = ds.into();
                    is.metadata.namespace = Some(ns.clone());
                    upsert_meta(&mut is.metadata, None);
                    is
                }
            };
            let (from, digest, msg) = if alias {
                let (ss, st) = split_istag(src)
                    .with_context(|| format!("--alias needs SRC STREAM:TAG, got {src:?}"))?;
                if ss != ds {
                    bail!("cannot set alias across different Image Streams ({ss} and {ds})");
                }
                let cur = controller::current(tx, &ns, src)?
                    .with_context(|| format!("{src} has no image yet"))?;
                (
                    ObjectReference::istag(st),
                    cur.image,
                    format!("Tag {dst} set up to track {src}."),
                )
            } else if let Some((ss, id)) = split_isimage(src) {
                let s = tx
                    .image_stream(&ns, ss)?
                    .with_context(|| format!("image stream {ss} not found"))?;
                let ev = controller::find_image(&s, id)?
                    .with_context(|| format!("image {id} is in no tag of {ss}"))?;
                let full = format!("{ss}@{}", ev.image);
                (
                    ObjectReference {
                        kind: RefKind::ImageStreamImage,
                        name: full.clone(),
                        namespace: None,
                    },
                    ev.image,
                    format!("Tag {dst} set to {full}."),
                )
            } else if let Some(cur) = split_istag(src)
                .filter(|(s, _)| tx.image_stream(&ns, s).ok().flatten().is_some())
                .map(|_| controller::current(tx, &ns, src))
            {
                let cur = cur?.with_context(|| format!("{src} has no image yet"))?;
                let (ss, _) = split_istag(src).expect("checked");
                let full = format!("{ss}@{}", cur.image);
                (
                    ObjectReference {
                        kind: RefKind::ImageStreamImage,
                        name: full.clone(),
                        namespace: None,
                    },
                    cur.image,
                    format!("Tag {dst} set to {full}."),
                )
            } else {
                let r: LocalRef = src.parse().with_context(|| {
                    format!("SRC {src:?} is no stream tag, stream image or store image")
                })?;
                let img = store.resolve(&r).with_context(|| format!("SRC {src}"))?;
                (
                    ObjectReference::docker(src),
                    img.manifest_digest.to_string(),
                    format!("Tag {dst} set to {src}."),
                )
            };
            let spec_tag = TagReference {
                name: dt.into(),
                from: Some(from),
                ..Default::default()
            };
            match is.spec.tags.iter_mut().find(|t| t.name == dt) {
                Some(t) => *t = spec_tag,
                None => is.spec.tags.push(spec_tag),
            }
            tx.put_image_stream(&is)?;
            let digest: crate::Digest = digest.parse().context("stored image digest")?;
            controller::record_image(tx, &store, &ns, ds, dt, &digest)?;
            Ok((msg, controller::fire_image_triggers(tx, &ns, &me)?))
        })?;

        self.watch_created(&created);
        let report = self.settle()?;
        Ok((msg, report))
    }

    /// OKD imports a DockerImage spec tag when the stream is created or its spec changes. The
    /// pulls run here, before `apply`'s transaction, so no network wait holds the database.
    fn import_spec_tags(&mut self, objects: &[Object]) -> Result<Imports> {
        let mut out = Imports::new();
        for obj in objects {
            let Object::ImageStream(is) = obj else {
                continue;
            };
            let ns = is
                .metadata
                .namespace
                .clone()
                .unwrap_or_else(|| self.ns.clone());
            let old = self.db.read(|tx| tx.image_stream(&ns, &is.metadata.name))?;
            if old.is_some_and(|o| o.spec == is.spec) {
                continue;
            }
            for t in &is.spec.tags {
                let Some(f) = t.from.as_ref().filter(|f| f.kind == RefKind::DockerImage) else {
                    continue;
                };
                if t.reference || registry_ref(&f.name).is_none() {
                    continue;
                }
                let r = import_ref(&self.store, &f.name, &self.registry);
                let key = (ns.clone(), is.metadata.name.clone(), t.name.clone());
                out.insert(key, r);
            }
        }
        Ok(out)
    }

    /// `ws2i import-image IS[:TAG] [--from=REF] [--confirm] [--all]` (oc's): pins each tag's
    /// DockerImage reference to the digest it has now, pulling it into the store; a new digest
    /// is a new history item and fires the triggers that watch the tag.
    pub fn import_image(
        &mut self,
        target: &str,
        opts: &ImportOptions,
    ) -> Result<(Vec<String>, Report)> {
        let ns = self.ns.clone();
        let (stream, tag) = match target.split_once(':') {
            Some(_) => {
                let (s, t) = split_istag(target)
                    .with_context(|| format!("{target:?}: expected IS or IS:TAG"))?;
                (s.to_string(), Some(t.to_string()))
            }
            None => (target.to_string(), None),
        };
        load::validate_name("image stream", &stream).map_err(anyhow::Error::msg)?;
        let existing = self.db.read(|tx| tx.image_stream(&ns, &stream))?;
        // (tag, reference) to import, and whether the spec changes.
        let mut plan: Vec<(String, String)> = Vec::new();
        let mut spec_change = false;
        if opts.all {
            if opts.from.is_some() {
                bail!("--all with --from imports every tag of a repository: ws2i cannot list a registry's tags; name the tag (IS:TAG --from=REPO:TAG)");
            }
            let is = existing
                .as_ref()
                .with_context(|| format!("imagestream {stream} not found: --all imports the DockerImage tags of an existing stream"))?;
            for t in &is.spec.tags {
                if let Some(f) = t.from.as_ref().filter(|f| f.kind == RefKind::DockerImage) {
                    if !t.reference {
                        plan.push((t.name.clone(), f.name.clone()));
                    }
                }
            }
            if plan.is_empty() {
                bail!("imagestream {stream} has no tag imported from a DockerImage");
            }
        } else {
            let tag = tag.unwrap_or_else(|| "latest".into());
            load::validate_tag_name("tag", &tag).map_err(anyhow::Error::msg)?;
            let spec_from = existing
                .as_ref()
                .and_then(|is| is.spec_tag(&tag))
                .and_then(|t| t.from.clone());
            let reference = match (&existing, spec_from, &opts.from) {
                (None, _, _) if !opts.confirm => bail!(
                    "imagestream {stream} not found: add --confirm to create it (with --from=REF, the image to import)"
                ),
                (None, _, None) => {
                    bail!("imagestream {stream} not found: --from=REF names the image to import")
                }
                (Some(_), Some(f), _) if f.kind != RefKind::DockerImage => bail!(
                    "tag {stream}:{tag} is not imported from a DockerImage (its from is {f}); use `ws2i tag` for stream images"
                ),
                (Some(_), Some(f), Some(new)) if &f.name != new && !opts.confirm => bail!(
                    "tag {stream}:{tag} imports {}; add --confirm to import {new} instead",
                    f.name
                ),
                (Some(_), Some(f), None) => f.name,
                (Some(_), None, None) => bail!(
                    "tag {stream}:{tag} has no DockerImage to import: add --from=REF --confirm"
                ),
                (Some(_), None, Some(_)) if !opts.confirm => bail!(
                    "tag {tag} does not exist on imagestream {stream}: add --confirm to create it"
                ),
                (_, _, Some(new)) => {
                    spec_change = true;
                    new.clone()
                }
            };
            plan.push((tag, reference));
        }
        // Network first, outside the transaction; a failed pull writes nothing.
        let mut pulled = Vec::new();
        for (t, r) in &plan {
            let d = import_ref(&self.store, r, &self.registry)
                .map_err(|e| anyhow::anyhow!("importing {r} into {stream}:{t}: {e}"))?;
            pulled.push((t.clone(), r.clone(), d));
        }
        let (store, me) = (self.store.clone(), self.me.clone());
        let (msgs, created) = self.db.write(|tx| {
            let (mut is, existed) = match tx.image_stream(&ns, &stream)? {
                Some(is) => (is, true),
                None => {
                    let mut is = ImageStream::default();
                    is.metadata.name = stream.clone();
                    is.metadata.namespace = Some(ns.clone());
                    upsert_meta(&mut is.metadata, None);
                    (is, false)
                }
            };
            if spec_change {
                for (t, r, _) in &pulled {
                    let spec_tag = TagReference {
                        name: t.clone(),
                        from: Some(ObjectReference::docker(r)),
                        ..Default::default()
                    };
                    match is.spec.tags.iter_mut().find(|x| &x.name == t) {
                        Some(x) => *x = spec_tag,
                        None => is.spec.tags.push(spec_tag),
                    }
                }
                if existed {
                    is.metadata.generation = Some(is.metadata.generation.unwrap_or(1) + 1);
                }
            }
            tx.put_image_stream(&is)?;
            let mut msgs = vec![format!("imagestream.image.openshift.io/{stream} imported")];
            for (t, r, d) in &pulled {
                let new = controller::record_image(tx, &store, &ns, &stream, t, d)?;
                msgs.push(if new {
                    format!("Tag {stream}:{t} imported from {r}: {d}")
                } else {
                    format!("Tag {stream}:{t}: {r} is still {d}; no new history item")
                });
            }
            Ok((msgs, controller::fire_image_triggers(tx, &ns, &me)?))
        })?;
        self.watch_created(&created);
        let report = self.settle()?;
        Ok((msgs, report))
    }

    /// `ws2i delete bc|build|is NAME`. Deleting a BuildConfig deletes its builds (OKD's owner
    /// references); deleting a stream removes its tags from the store (the images stay until
    /// `ws2i prune`).
    pub fn delete(&mut self, kind: &str, name: &str) -> Result<String> {
        let (ns, store) = (self.ns.clone(), self.store.clone());
        let home = self.home.clone();
        let (q, logs_gone) = self.db.write(|tx| match kind {
            "bc" | "buildconfig" | "buildconfigs" => {
                if !tx.delete_object("BuildConfig", &ns, name)? {
                    bail!("buildconfig {name} not found");
                }
                let builds = tx.builds(&ns, Some(name))?;
                for b in &builds {
                    tx.delete_build(&ns, &b.metadata.name)?;
                }
                Ok((
                    format!("buildconfig.build.openshift.io \"{name}\" deleted"),
                    builds.into_iter().map(|b| b.metadata.name).collect(),
                ))
            }
            "build" | "builds" => {
                if !tx.delete_build(&ns, name)? {
                    bail!("build {name} not found");
                }
                Ok((
                    format!("build.build.openshift.io \"{name}\" deleted"),
                    vec![name.to_string()],
                ))
            }
            "is" | "imagestream" | "imagestreams" => {
                let is = tx
                    .image_stream(&ns, name)?
                    .with_context(|| format!("imagestream {name} not found"))?;
                tx.delete_object("ImageStream", &ns, name)?;
                tx.delete_tag(&ns, name, None)?;
                for t in &is.status.tags {
                    let nt = NameTag {
                        name: ImageStream::repository(&ns, name),
                        tag: t.tag.clone(),
                    };
                    let _ = store.remove(&LocalRef::Tagged(nt));
                }
                Ok((
                    format!("imagestream.image.openshift.io \"{name}\" deleted"),
                    Vec::new(),
                ))
            }
            "secret" | "secrets" | "cm" | "configmap" | "configmaps" => {
                let (k, q) = if kind.starts_with('s') {
                    ("Secret", "secret")
                } else {
                    ("ConfigMap", "configmap")
                };
                if !tx.delete_object(k, &ns, name)? {
                    bail!("{q} {name} not found");
                }
                Ok((format!("{q} \"{name}\" deleted"), Vec::new()))
            }
            other => bail!("cannot delete {other:?}: use bc, build, is, secret or configmap"),
        })?;
        for b in logs_gone {
            let _ = std::fs::remove_file(logs::log_path(&home, &ns, &b));
        }
        Ok(q)
    }

    /// `ws2i prune builds --keep N`: keeps the newest N complete and N failed builds of each
    /// BuildConfig.
    pub fn prune_builds(&mut self, keep: u32) -> Result<Vec<String>> {
        let ns = self.ns.clone();
        let gone = self.db.write(|tx| {
            let mut gone = Vec::new();
            for bc in tx.build_configs(&ns)? {
                gone.extend(controller::prune_builds_of(
                    tx,
                    &ns,
                    &bc.metadata.name,
                    Some(keep as i32),
                    Some(keep as i32),
                )?);
            }
            Ok(gone)
        })?;
        for b in &gone {
            let _ = std::fs::remove_file(logs::log_path(&self.home, &ns, b));
        }
        Ok(gone)
    }

    /// `ws2i prune images --keep N`: keeps the newest N history items of every tag.
    pub fn prune_images(&mut self, keep: u32) -> Result<usize> {
        let ns = self.ns.clone();
        self.db
            .write(|tx| tx.prune_tag_history(&ns, keep.max(1) as usize))
    }

    // ---------------------------------------------------------------------------------- reads

    pub fn build_configs(&mut self) -> Result<Vec<BuildConfig>> {
        let ns = self.ns.clone();
        self.db.read(|tx| tx.build_configs(&ns))
    }

    pub fn build_config(&mut self, name: &str) -> Result<BuildConfig> {
        let ns = self.ns.clone();
        self.db
            .read(|tx| tx.build_config(&ns, name))?
            .with_context(|| format!("buildconfig {name} not found"))
    }

    pub fn builds(&mut self, bc: Option<&str>) -> Result<Vec<Build>> {
        let ns = self.ns.clone();
        self.db.read(|tx| tx.builds(&ns, bc))
    }

    pub fn build(&mut self, name: &str) -> Result<Build> {
        let ns = self.ns.clone();
        self.db
            .read(|tx| tx.build(&ns, name))?
            .with_context(|| format!("build {name} not found"))
    }

    pub fn secrets(&mut self, name: Option<&str>) -> Result<Vec<Secret>> {
        let ns = self.ns.clone();
        match name {
            Some(n) => Ok(vec![self
                .db
                .read(|tx| tx.secret(&ns, n))?
                .with_context(|| format!("secret {n} not found"))?]),
            None => self.db.read(|tx| tx.secrets(&ns)),
        }
    }

    pub fn config_maps(&mut self, name: Option<&str>) -> Result<Vec<ConfigMap>> {
        let ns = self.ns.clone();
        match name {
            Some(n) => Ok(vec![self
                .db
                .read(|tx| tx.config_map(&ns, n))?
                .with_context(|| format!("configmap {n} not found"))?]),
            None => self.db.read(|tx| tx.config_maps(&ns)),
        }
    }

    pub fn image_streams(&mut self) -> Result<Vec<ImageStream>> {
        let ns = self.ns.clone();
        self.db.read(|tx| tx.image_streams(&ns))
    }

    pub fn image_stream(&mut self, name: &str) -> Result<ImageStream> {
        let ns = self.ns.clone();
        self.db
            .read(|tx| tx.image_stream(&ns, name))?
            .with_context(|| format!("imagestream {name} not found"))
    }

    /// `ImageStreamTag` views: all tags with an image, or one `stream:tag`.
    pub fn image_stream_tags(&mut self, name: Option<&str>) -> Result<Vec<ImageStreamTag>> {
        let streams = match name {
            Some(n) => {
                let (s, _) =
                    split_istag(n).with_context(|| format!("{n:?}: expected STREAM:TAG"))?;
                vec![self.image_stream(s)?]
            }
            None => self.image_streams()?,
        };
        let mut out = Vec::new();
        for is in &streams {
            for t in &is.status.tags {
                let full = format!("{}:{}", is.metadata.name, t.tag);
                if name.is_some_and(|n| n != full) {
                    continue;
                }
                let Some(ev) = t.items.first() else { continue };
                out.push(print::istag_view(is, &t.tag, ev));
            }
        }
        if let (Some(n), true) = (name, out.is_empty()) {
            bail!("imagestreamtag {n} not found (the tag has no image)");
        }
        Ok(out)
    }

    /// The database's own check (`PRAGMA integrity_check`).
    pub fn integrity(&mut self) -> Result<String> {
        self.db.read(|tx| tx.integrity())
    }

    /// `ws2i logs [-f] build/NAME | bc/NAME`.
    pub fn logs(&mut self, target: &str, follow: bool, out: &mut dyn FnMut(&str)) -> Result<()> {
        let name = match target
            .strip_prefix("bc/")
            .or_else(|| target.strip_prefix("buildconfig/"))
        {
            Some(bc) => {
                let v = self.build_config(bc)?.status.last_version;
                if v == 0 {
                    bail!("buildconfig {bc} has no builds yet");
                }
                format!("{bc}-{v}")
            }
            None => target.strip_prefix("build/").unwrap_or(target).to_string(),
        };
        let b = self.build(&name)?;
        let path = logs::log_path(&self.home, &self.ns, &name);
        if !path.exists() && b.status.phase.is_terminal() {
            out(&format!(
                "No logs are available for build {name} ({}).",
                b.status.phase
            ));
            return Ok(());
        }
        let (home, ns) = (self.home.clone(), self.ns.clone());
        let mut db = Db::open(&home)?.0;
        logs::print(
            &path,
            follow,
            || {
                Ok(db
                    .read(|tx| tx.build(&ns, &name))?
                    .is_none_or(|b| b.status.phase.is_terminal()))
            },
            out,
        )
    }
}

/// The files of a build's `source.secrets` and `source.configMaps`, decoded.
fn build_inputs(tx: &db::Tx<'_>, b: &Build) -> Result<Vec<runner::BuildInput>> {
    let ns = b.metadata.namespace();
    let src = &b.spec.common.source;
    let decode = |field: &str, kv: &BTreeMap<String, String>| -> Result<Vec<(String, Vec<u8>)>> {
        kv.iter()
            .map(|(k, v)| {
                let bytes = load::base64_decode(v)
                    .map_err(|e| anyhow::anyhow!("{field}[{k:?}] in the database: {e}"))?;
                Ok((k.clone(), bytes))
            })
            .collect()
    };
    let mut out = Vec::new();
    for (i, s) in src.secrets.iter().enumerate() {
        let files = match tx.secret(ns, &s.secret.name)? {
            Some(sec) => Some(decode("data", &sec.data)?),
            None => None,
        };
        out.push(runner::BuildInput {
            field: format!("spec.source.secrets[{i}]"),
            what: format!("secret {}", s.secret.name),
            destination_dir: s.destination_dir.clone(),
            mount: format!("/var/run/secrets/openshift.io/build/{}", s.secret.name),
            files,
        });
    }
    for (i, c) in src.config_maps.iter().enumerate() {
        let files = match tx.config_map(ns, &c.config_map.name)? {
            Some(cm) => {
                let mut f: Vec<(String, Vec<u8>)> = cm
                    .data
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone().into_bytes()))
                    .collect();
                f.extend(decode("binaryData", &cm.binary_data)?);
                Some(f)
            }
            None => None,
        };
        out.push(runner::BuildInput {
            field: format!("spec.source.configMaps[{i}]"),
            what: format!("configmap {}", c.config_map.name),
            destination_dir: c.destination_dir.clone(),
            mount: format!("/var/run/configs/openshift.io/build/{}", c.config_map.name),
            files,
        });
    }
    Ok(out)
}

/// Watches the database for `ws2i cancel-build` of a running build (another process marks it)
/// and trips the run's cancel token; the sandbox then stops the hook at its next epoch check.
/// One connection, polled every [`CancelPoller::EVERY`]; stopped and joined on drop.
struct CancelPoller {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl CancelPoller {
    const EVERY: Duration = Duration::from_millis(200);

    fn start(home: &Path, ns: &str, name: &str, token: CancelToken) -> Result<Self> {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (mut db, _) = Db::open(home)?;
        let (ns, name, flag) = (ns.to_string(), name.to_string(), stop.clone());
        let thread = std::thread::Builder::new()
            .name("ws2i-cancel-poll".into())
            .spawn(move || {
                while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                    let marked = db
                        .read(|tx| tx.build(&ns, &name))
                        .ok()
                        .flatten()
                        .is_some_and(|b| b.status.cancelled);
                    if marked {
                        token.cancel();
                        return;
                    }
                    std::thread::park_timeout(Self::EVERY);
                }
            })
            .context("starting the cancel poller")?;
        Ok(CancelPoller {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for CancelPoller {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

/// Sets creation time and generation for a create, bumps the generation for a change.
fn upsert_meta(meta: &mut ObjectMeta, old: Option<(&ObjectMeta, bool)>) -> Applied {
    match old {
        None => {
            meta.creation_timestamp = Some(db::now());
            meta.generation = Some(1);
            Applied::Created
        }
        Some((o, same_spec)) => {
            meta.creation_timestamp = o.creation_timestamp.clone();
            let labels_same = o.labels == meta.labels && o.annotations == meta.annotations;
            meta.generation = Some(o.generation.unwrap_or(1) + if same_spec { 0 } else { 1 });
            match (same_spec, labels_same) {
                (true, true) => Applied::Unchanged,
                _ => Applied::Configured,
            }
        }
    }
}

/// Spec tags with a `from` get their image at once (OKD resolves ISTag/ISImage synchronously):
/// an alias copies its tag's image, an ISTag/ISImage of another stream its image, a DockerImage
/// of a registry what [`Pipeline::import_spec_tags`] imported before the transaction, a
/// DockerImage of the store that image. Returns a warning per tag that could not be imported
/// (the tag gets no image; builds waiting on it stay New).
fn resolve_spec_tags(
    tx: &db::Tx<'_>,
    store: &Store,
    ns: &str,
    stream: &str,
    imports: &Imports,
) -> Result<Vec<String>> {
    let is = tx
        .image_stream(ns, stream)?
        .context("stream just written")?;
    let mut warnings = Vec::new();
    for (i, t) in is.spec.tags.iter().enumerate() {
        let Some(f) = &t.from else { continue };
        let digest = match f.kind {
            RefKind::ImageStreamTag => {
                let name = if f.name.contains(':') {
                    f.name.clone()
                } else {
                    format!("{stream}:{}", f.name)
                };
                controller::current(tx, f.namespace.as_deref().unwrap_or(ns), &name)?
                    .map(|e| e.image)
            }
            RefKind::ImageStreamImage => {
                let (s, id) = split_isimage(&f.name).context("validated")?;
                match tx.image_stream(f.namespace.as_deref().unwrap_or(ns), s)? {
                    Some(src) => controller::find_image(&src, id)?.map(|e| e.image),
                    None => None,
                }
            }
            RefKind::DockerImage if t.reference => None,
            RefKind::DockerImage => {
                let key = (ns.to_string(), stream.to_string(), t.name.clone());
                match imports.get(&key) {
                    Some(Ok(d)) => Some(d.to_string()),
                    Some(Err(e)) => {
                        warnings.push(format!(
                            "imagestream/{stream}: spec.tags[{i}] ({}): cannot import {}: {e}; the tag has no image",
                            t.name, f.name
                        ));
                        None
                    }
                    None => match f.name.parse::<LocalRef>() {
                        Ok(r) => store
                            .resolve(&r)
                            .ok()
                            .map(|i| i.manifest_digest.to_string()),
                        Err(_) => None,
                    },
                }
            }
        };
        if let Some(d) = digest {
            controller::record_image(tx, store, ns, stream, &t.name, &d.parse()?)?;
        }
    }
    Ok(warnings)
}

/// Imported (or not) DockerImage spec tags, by namespace, stream and tag.
type Imports = BTreeMap<(String, String, String), std::result::Result<Digest, String>>;

/// A `DockerImage` pull spec that names a registry: `docker://…`, or a first path component
/// that is a host (has a `.` or a `:`, or is `localhost`), docker's own rule. Anything else is
/// a store image (`ws2i/go:latest`).
pub fn registry_ref(name: &str) -> Option<String> {
    if name.starts_with("docker://") {
        return Some(name.to_string());
    }
    let (first, _) = name.split_once('/')?;
    (first.contains('.') || first.contains(':') || first == "localhost")
        .then(|| format!("docker://{name}"))
}

/// Pulls a DockerImage reference into the store (a registry's current image, always asked
/// again) or resolves a store image; the manifest digest it pins to.
fn import_ref(
    store: &Store,
    name: &str,
    registry: &RegistryOptions,
) -> std::result::Result<Digest, String> {
    match registry_ref(name) {
        Some(r) => {
            let pull = crate::s2i::Pull {
                policy: crate::s2i::PullPolicy::Always,
                flag: "import",
                registry,
                progress: false,
                platform: None,
            };
            crate::s2i::resolve_image(store, &r, &pull)
                .map(|i| i.manifest_digest)
                .map_err(|e| e.to_string())
        }
        None => {
            let r: LocalRef = name.parse().map_err(|e| format!("{e}"))?;
            store
                .resolve(&r)
                .map(|i| i.manifest_digest)
                .map_err(|e| format!("{e:#}"))
        }
    }
}
