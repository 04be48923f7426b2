//! OKD's controllers, run inside the command that caused the work (no daemon):
//!
//! - **instantiate** (`generator.go`): a Build `<bc>-<N>` with `N = ++status.lastVersion`, its
//!   inputs frozen: every ImageStreamTag/ImageStreamImage in `strategy.*.from` and
//!   `source.images[].from` becomes a `DockerImage` pinned to `repo@sha256:…` (the triggering
//!   image for the trigger that fired). The ImageChange trigger statuses are rebuilt at the same
//!   time, so one image never fires twice. A build whose inputs do not resolve yet stays `New`
//!   with reason `InvalidImageReference` (or `InvalidOutputReference`) and waits, where OKD
//!   would retry and give up.
//! - **ConfigChange**: once, when a BuildConfig with that trigger has `lastVersion == 0`.
//! - **ImageChange** ([`fire_image_triggers`]): for each trigger, fire when the watched tag's
//!   current pull spec differs from `lastTriggeredImageID` (level-compared on every tag change,
//!   so a missed event cannot lose a build). A waiting New build of the BuildConfig is pinned to
//!   the image instead of starting a second build.
//! - **runPolicy** ([`claim_next`], `policy/*.go`): Serial runs a build only when no build of its
//!   BuildConfig is Pending/Running and it is the lowest-numbered New one; SerialLatestOnly also
//!   cancels the older queued ones at instantiate; Parallel runs unless a Serial build runs. The
//!   check and the switch to Running are one `BEGIN IMMEDIATE` transaction, so it holds across
//!   processes.
//! - **completion** ([`complete`]): the build's phase, its output tag event (with the store tag
//!   mirrored) and the history pruning commit together; then the triggers that the new image
//!   fires create the next builds. An image equal to the tag's current one adds no history item
//!   and fires nothing: that is how reproducible chains stop.

use std::collections::BTreeMap;

use anyhow::{bail, Context, Result};

use super::db::{finish_times, now, now_precise, Owner, Tx};
use super::objects::*;
use crate::image::{NameTag, Store};
use crate::Digest;

/// Reasons a New build waits (OKD's reasons for an unresolvable reference).
pub const WAIT_IMAGE: &str = "InvalidImageReference";
pub const WAIT_OUTPUT: &str = "InvalidOutputReference";
/// ws2i's reasons for a New build whose `source.secrets`/`source.configMaps` name an object that
/// does not exist yet (it starts when the object is applied).
pub const WAIT_SECRET: &str = "MissingSecret";
pub const WAIT_CONFIG_MAP: &str = "MissingConfigMap";
/// ws2i's annotation: a binary build's input directory (`start-build --from-dir`).
pub const FROM_DIR: &str = "ws2i.io/from-dir";

/// Why an instantiate happens, and with what overrides (OKD's BuildRequest).
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub causes: Vec<BuildTriggerCause>,
    /// The ImageChange trigger that fired: its tag (`ns`, `stream:tag`) and the new pull spec.
    pub trigger: Option<(String, String, String)>,
    /// `--commit`.
    pub commit: Option<String>,
    /// `-e K=V`: replaces strategy env entries of the same name, appends the others.
    pub env: Vec<EnvVar>,
    /// `--from-dir`: a binary build reading this directory.
    pub from_dir: Option<std::path::PathBuf>,
    /// `--from-build`: the spec of this build is reused (same pinned digests).
    pub clone_of: Option<Build>,
}

/// The pull spec of a tag's current image, if it has one.
pub fn current(tx: &Tx<'_>, ns: &str, istag: &str) -> Result<Option<TagEvent>> {
    let Some((s, t)) = split_istag(istag) else {
        return Ok(None);
    };
    Ok(tx
        .image_stream(ns, s)?
        .and_then(|is| is.tag_history(t).first().cloned()))
}

/// What a reference resolves to now.
enum Resolved {
    Pinned(String),
    Waiting(String),
}

fn resolve(tx: &Tx<'_>, ns: &str, r: &ObjectReference) -> Result<Resolved> {
    let ns = r.namespace.as_deref().unwrap_or(ns);
    match r.kind {
        RefKind::DockerImage => Ok(Resolved::Pinned(r.name.clone())),
        RefKind::ImageStreamTag => {
            let (s, _) =
                split_istag(&r.name).with_context(|| format!("{r}: expected STREAM:TAG"))?;
            if tx.image_stream(ns, s)?.is_none() {
                return Ok(Resolved::Waiting(format!(
                    "image stream {s} does not exist (apply it, and this build starts)"
                )));
            }
            Ok(match current(tx, ns, &r.name)? {
                Some(ev) => Resolved::Pinned(ev.docker_image_reference),
                None => Resolved::Waiting(format!("image stream tag {} has no image yet", r.name)),
            })
        }
        RefKind::ImageStreamImage => {
            let (s, id) = split_isimage(&r.name)
                .with_context(|| format!("{r}: expected STREAM@sha256:ID"))?;
            let Some(is) = tx.image_stream(ns, s)? else {
                return Ok(Resolved::Waiting(format!(
                    "image stream {s} does not exist"
                )));
            };
            Ok(match find_image(&is, id)? {
                Some(ev) => Resolved::Pinned(ev.docker_image_reference),
                None => Resolved::Waiting(format!("image {id} is in no tag of {s}")),
            })
        }
    }
}

/// The newest history item of any tag whose image starts with `id` (a unique prefix is enough).
pub fn find_image(is: &ImageStream, id: &str) -> Result<Option<TagEvent>> {
    let id = if id.starts_with("sha256:") {
        id.to_string()
    } else {
        format!("sha256:{id}")
    };
    let mut found: Option<&TagEvent> = None;
    for t in &is.status.tags {
        for ev in &t.items {
            if ev.image.starts_with(&id) {
                if let Some(f) = found {
                    if f.image != ev.image {
                        bail!(
                            "{id} is ambiguous in image stream {}: it matches {} and {}",
                            is.metadata.name,
                            f.image,
                            ev.image
                        );
                    }
                    if f.created >= ev.created {
                        continue;
                    }
                }
                found = Some(ev);
            }
        }
    }
    Ok(found.cloned())
}

/// The ImageChange triggers of a BC: (index, watched `stream:tag`, namespace, paused).
pub fn ict_targets(bc: &BuildConfig) -> Vec<(String, String, bool)> {
    let ns = bc.metadata.namespace();
    bc.spec
        .triggers
        .iter()
        .filter(|t| t.kind() == Some(TriggerKind::ImageChange))
        .filter_map(|t| {
            let ic = t.image_change.as_ref()?;
            let from = ic
                .from
                .as_ref()
                .or_else(|| bc.spec.common.strategy_from())?;
            (from.kind == RefKind::ImageStreamTag).then(|| {
                (
                    from.namespace.clone().unwrap_or_else(|| ns.to_string()),
                    from.name.clone(),
                    ic.paused,
                )
            })
        })
        .collect()
}

fn has_trigger(bc: &BuildConfig, k: TriggerKind) -> bool {
    bc.spec.triggers.iter().any(|t| t.kind() == Some(k))
}

/// Creates the next Build of `bc_name` (see the module doc). The build is New, owned by `me`.
pub fn instantiate(
    tx: &Tx<'_>,
    ns: &str,
    bc_name: &str,
    req: Request,
    me: &Owner,
) -> Result<Build> {
    let mut bc = tx
        .build_config(ns, bc_name)?
        .with_context(|| format!("buildconfig {bc_name} not found in namespace {ns}"))?;
    if bc
        .metadata
        .annotations
        .get(build_meta::PAUSED)
        .map(String::as_str)
        == Some("true")
    {
        bail!(
            "BuildConfig {bc_name} is paused (annotation {}=true)",
            build_meta::PAUSED
        );
    }
    // The trigger statuses, rebuilt: the firing one records its image, the others the current one.
    let now_s = now();
    let mut statuses = Vec::new();
    for (tns, target, _) in ict_targets(&bc) {
        let fired = req
            .trigger
            .as_ref()
            .filter(|(n, t, _)| *n == tns && *t == target);
        let (id, time) = match fired {
            Some((_, _, spec)) => (spec.clone(), Some(now_s.clone())),
            None => {
                let prev = bc
                    .status
                    .image_change_triggers
                    .iter()
                    .find(|s| s.from.name == target);
                let cur = current(tx, &tns, &target)?.map(|e| e.docker_image_reference);
                (
                    cur.or_else(|| prev.map(|p| p.last_triggered_image_id.clone()))
                        .unwrap_or_default(),
                    prev.and_then(|p| p.last_trigger_time.clone()),
                )
            }
        };
        statuses.push(ImageChangeTriggerStatus {
            last_triggered_image_id: id,
            from: ImageStreamTagReference {
                namespace: (tns != ns).then(|| tns.clone()),
                name: target,
            },
            last_trigger_time: time,
        });
    }
    bc.status.image_change_triggers = statuses;
    bc.status.last_version += 1;
    let n = bc.status.last_version;
    tx.put_build_config(&bc)?;

    let mut b = Build::default();
    b.metadata.name = build_name(bc_name, n);
    b.metadata.namespace = bc.metadata.namespace.clone();
    b.metadata.creation_timestamp = Some(now_precise());
    b.metadata.labels = bc.metadata.labels.clone();
    b.metadata
        .labels
        .insert(build_meta::BC_NAME.into(), bc_name.into());
    b.metadata
        .labels
        .insert(build_meta::BC_LABEL_DEPRECATED.into(), bc_name.into());
    b.metadata.labels.insert(
        build_meta::START_POLICY.into(),
        bc.spec.run_policy.as_str().into(),
    );
    b.metadata
        .annotations
        .insert(build_meta::NUMBER.into(), n.to_string());
    b.metadata
        .annotations
        .insert(build_meta::BC_NAME.into(), bc_name.into());
    b.metadata.owner_references.push(OwnerReference {
        api_version: BUILD_API.into(),
        kind: "BuildConfig".into(),
        name: bc_name.into(),
        controller: true,
    });
    b.spec.common = match &req.clone_of {
        Some(old) => {
            b.metadata
                .annotations
                .insert(build_meta::CLONE_OF.into(), old.metadata.name.clone());
            if let Some(d) = old.metadata.annotations.get(FROM_DIR) {
                b.metadata.annotations.insert(FROM_DIR.into(), d.clone());
            }
            old.spec.common.clone()
        }
        None => bc.spec.common.clone(),
    };
    b.spec
        .common
        .service_account
        .get_or_insert_with(|| "builder".into());
    b.spec.triggered_by = req.causes.clone();
    if let Some(c) = &req.commit {
        b.spec.common.revision = Some(SourceRevision {
            revision_type: "Git".into(),
            git: Some(GitSourceRevision {
                commit: c.clone(),
                message: String::new(),
            }),
        });
    }
    if let Some(dir) = &req.from_dir {
        b.spec.common.source.git = None;
        b.spec
            .common
            .source
            .binary
            .get_or_insert_with(Default::default);
        b.metadata
            .annotations
            .insert(FROM_DIR.into(), dir.display().to_string());
    }
    merge_env(&mut b.spec.common, &req.env);
    super::load::derive_types(&mut b.spec.common);
    b.status.phase = BuildPhase::New;
    b.status.config = Some(ConfigReference {
        kind: "BuildConfig".into(),
        name: bc_name.into(),
        namespace: Some(ns.into()),
    });
    pin(tx, &mut b, req.trigger.as_ref())?;

    if bc.spec.run_policy == RunPolicy::SerialLatestOnly {
        for mut old in tx.builds(ns, Some(bc_name))? {
            if matches!(old.status.phase, BuildPhase::New | BuildPhase::Pending) {
                let owner = tx.owner_of(ns, &old.metadata.name)?;
                cancel(
                    &mut old,
                    "cancelled: a newer build of this SerialLatestOnly BuildConfig was queued",
                );
                tx.put_build(&old, owner.as_ref())?;
            }
        }
    }
    tx.put_build(&b, Some(me))?;
    Ok(b)
}

/// OKD's `GetName`: `bc-N`, cut with an fnv32a hash when over 253 characters.
fn build_name(bc: &str, n: i64) -> String {
    let name = format!("{bc}-{n}");
    if name.len() <= 253 {
        return name;
    }
    let mut h: u32 = 0x811c9dc5;
    for b in bc.bytes() {
        h ^= b as u32;
        h = h.wrapping_mul(0x01000193);
    }
    let n = n.to_string();
    format!("{}-{h:08x}-{n}", &bc[..253 - 10 - n.len()])
}

fn merge_env(c: &mut CommonSpec, env: &[EnvVar]) {
    let target = match (
        &mut c.strategy.source_strategy,
        &mut c.strategy.docker_strategy,
    ) {
        (Some(s), _) => &mut s.env,
        (_, Some(d)) => &mut d.env,
        _ => return,
    };
    for e in env {
        match target.iter_mut().find(|x| x.name == e.name) {
            Some(x) => x.value = e.value.clone(),
            None => target.push(e.clone()),
        }
    }
}

pub fn cancel(b: &mut Build, message: &str) {
    b.status.cancelled = true;
    b.status.phase = BuildPhase::Cancelled;
    b.status.reason = Some("CancelledBuild".into());
    b.status.message = Some(message.into());
    finish_times(b, &now_precise());
}

/// Pins what resolves; records why the build waits otherwise. Returns whether all is pinned.
fn pin(tx: &Tx<'_>, b: &mut Build, trigger: Option<&(String, String, String)>) -> Result<bool> {
    let ns = b.metadata.namespace().to_string();
    let mut waiting = None;
    let fired = |r: &ObjectReference| {
        trigger
            .filter(|(tns, t, _)| {
                r.kind == RefKind::ImageStreamTag
                    && r.name == *t
                    && r.namespace.as_deref().unwrap_or(ns.as_str()) == tns.as_str()
            })
            .map(|(_, _, spec)| spec.clone())
    };
    let mut refs: Vec<&mut ObjectReference> = b
        .spec
        .common
        .source
        .images
        .iter_mut()
        .map(|i| &mut i.from)
        .collect();
    if let Some(s) = &mut b.spec.common.strategy.source_strategy {
        refs.push(&mut s.from);
    }
    if let Some(f) = b
        .spec
        .common
        .strategy
        .docker_strategy
        .as_mut()
        .and_then(|d| d.from.as_mut())
    {
        refs.push(f);
    }
    for r in refs {
        if r.kind == RefKind::DockerImage {
            continue;
        }
        let got = match fired(r) {
            Some(spec) => Resolved::Pinned(spec),
            None => resolve(tx, &ns, r)?,
        };
        match got {
            Resolved::Pinned(spec) => *r = ObjectReference::docker(&spec),
            Resolved::Waiting(why) => {
                waiting.get_or_insert((WAIT_IMAGE, why));
            }
        }
    }
    if waiting.is_none() {
        let src = &b.spec.common.source;
        for (i, sec) in src.secrets.iter().enumerate() {
            if tx.secret(&ns, &sec.secret.name)?.is_none() {
                waiting.get_or_insert((
                    WAIT_SECRET,
                    format!(
                        "spec.source.secrets[{i}]: secret {} does not exist (apply it, and this build starts)",
                        sec.secret.name
                    ),
                ));
            }
        }
        for (i, cm) in src.config_maps.iter().enumerate() {
            if tx.config_map(&ns, &cm.config_map.name)?.is_none() {
                waiting.get_or_insert((
                    WAIT_CONFIG_MAP,
                    format!(
                        "spec.source.configMaps[{i}]: configmap {} does not exist (apply it, and this build starts)",
                        cm.config_map.name
                    ),
                ));
            }
        }
    }
    if waiting.is_none() {
        if let Some(to) = &b.spec.common.output.to {
            if to.kind == RefKind::ImageStreamTag {
                let (s, t) = split_istag(&to.name).context("output is STREAM:TAG")?;
                let tns = to.namespace.as_deref().unwrap_or(&ns);
                if tx.image_stream(tns, s)?.is_none() {
                    waiting = Some((WAIT_OUTPUT, format!("output image stream {s} does not exist (apply it, and this build starts)")));
                } else {
                    b.status.output_docker_image_reference =
                        Some(format!("{}:{t}", ImageStream::repository(tns, s)));
                }
            }
        }
    }
    match waiting {
        Some((reason, why)) => {
            b.status.reason = Some(reason.into());
            b.status.message = Some(format!("waiting as New: {why}"));
            Ok(false)
        }
        None => {
            b.status.reason = None;
            b.status.message = None;
            Ok(true)
        }
    }
}

pub fn is_waiting(b: &Build) -> bool {
    b.status.phase == BuildPhase::New
        && matches!(
            b.status.reason.as_deref(),
            Some(WAIT_IMAGE | WAIT_OUTPUT | WAIT_SECRET | WAIT_CONFIG_MAP)
        )
}

/// Whether a build this process watches will still move without it: it runs in another live
/// process, or it is queued behind one that does (run policy), or another process adopted it.
/// A build that waits for its inputs, or is queued behind one that does, will not.
pub fn will_progress(tx: &Tx<'_>, b: &Build, me: &Owner) -> Result<bool> {
    let ns = b.metadata.namespace();
    match b.status.phase {
        p if p.is_terminal() => Ok(false),
        BuildPhase::Pending | BuildPhase::Running => Ok(true),
        _ if is_waiting(b) => Ok(false),
        _ => {
            let owner = tx.owner_of(ns, &b.metadata.name)?;
            if owner.as_ref().is_some_and(|o| o != me && o.is_alive()) {
                return Ok(true);
            }
            let siblings = tx.builds(ns, b.bc_name())?;
            Ok(siblings
                .iter()
                .any(|x| matches!(x.status.phase, BuildPhase::Pending | BuildPhase::Running)))
        }
    }
}

/// ConfigChange: instantiates a new BuildConfig that has the trigger (once: `lastVersion == 0`).
pub fn fire_config_change(
    tx: &Tx<'_>,
    ns: &str,
    bc_name: &str,
    me: &Owner,
) -> Result<Option<Build>> {
    let Some(bc) = tx.build_config(ns, bc_name)? else {
        return Ok(None);
    };
    if bc.status.last_version != 0 || !has_trigger(&bc, TriggerKind::ConfigChange) {
        return Ok(None);
    }
    let req = Request {
        causes: vec![BuildTriggerCause {
            message: cause::CONFIG_CHANGE.into(),
            ..Default::default()
        }],
        ..Default::default()
    };
    instantiate(tx, ns, bc_name, req, me).map(Some)
}

/// ImageChange: every BuildConfig of `ns` whose watched tag now has an image other than the one
/// that last triggered it gets a build (or its waiting New build is pinned to that image).
/// Returns the builds created or adopted.
pub fn fire_image_triggers(tx: &Tx<'_>, ns: &str, me: &Owner) -> Result<Vec<Build>> {
    let mut out = Vec::new();
    for bc in tx.build_configs(ns)? {
        let name = bc.metadata.name.clone();
        for (tns, target, paused) in ict_targets(&bc) {
            if paused {
                continue;
            }
            let Some(ev) = current(tx, &tns, &target)? else {
                continue;
            };
            let bc_now = tx
                .build_config(ns, &name)?
                .context("buildconfig vanished")?;
            let last = bc_now
                .status
                .image_change_triggers
                .iter()
                .find(|s| s.from.name == target);
            if last.is_some_and(|l| l.last_triggered_image_id == ev.docker_image_reference) {
                continue;
            }
            let cause = BuildTriggerCause {
                message: cause::IMAGE_CHANGE.into(),
                image_change_build: Some(ImageChangeCause {
                    image_id: ev.docker_image_reference.clone(),
                    from_ref: Some(ObjectReference {
                        kind: RefKind::ImageStreamTag,
                        name: target.clone(),
                        namespace: (tns != ns).then(|| tns.clone()),
                    }),
                }),
            };
            let trigger = (
                tns.clone(),
                target.clone(),
                ev.docker_image_reference.clone(),
            );
            if let Some(b) = adopt_waiting(tx, &bc_now, &trigger, cause.clone(), me)? {
                out.push(b);
                continue;
            }
            let req = Request {
                causes: vec![cause],
                trigger: Some(trigger),
                ..Default::default()
            };
            out.push(instantiate(tx, ns, &name, req, me)?);
        }
    }
    Ok(out)
}

/// A New build of `bc` waiting for inputs is pinned to the triggering image (and adopted by
/// this process) instead of queuing a second build for the same change.
fn adopt_waiting(
    tx: &Tx<'_>,
    bc: &BuildConfig,
    trigger: &(String, String, String),
    cause: BuildTriggerCause,
    me: &Owner,
) -> Result<Option<Build>> {
    let ns = bc.metadata.namespace();
    let Some(mut b) = tx
        .builds(ns, Some(&bc.metadata.name))?
        .into_iter()
        .find(is_waiting)
    else {
        return Ok(None);
    };
    let mut bc = bc.clone();
    for s in &mut bc.status.image_change_triggers {
        if s.from.name == trigger.1 {
            s.last_triggered_image_id = trigger.2.clone();
            s.last_trigger_time = Some(now());
        }
    }
    if !bc
        .status
        .image_change_triggers
        .iter()
        .any(|s| s.from.name == trigger.1)
    {
        bc.status
            .image_change_triggers
            .push(ImageChangeTriggerStatus {
                last_triggered_image_id: trigger.2.clone(),
                from: ImageStreamTagReference {
                    namespace: None,
                    name: trigger.1.clone(),
                },
                last_trigger_time: Some(now()),
            });
    }
    tx.put_build_config(&bc)?;
    b.spec.triggered_by.push(cause);
    pin(tx, &mut b, Some(trigger))?;
    tx.put_build(&b, Some(me))?;
    Ok(Some(b))
}

/// Picks the next build this process may run under its BuildConfig's run policy and marks it
/// Running, owned by `me` (one transaction: the policy holds across processes).
pub fn claim_next(tx: &Tx<'_>, me: &Owner) -> Result<Option<Build>> {
    let active = tx.builds_in(&[BuildPhase::New, BuildPhase::Pending, BuildPhase::Running])?;
    let mut by_bc: BTreeMap<(String, String), Vec<(Build, Option<Owner>)>> = BTreeMap::new();
    for (b, o) in active {
        let key = (
            b.metadata.namespace().to_string(),
            b.bc_name().unwrap_or_default().to_string(),
        );
        by_bc.entry(key).or_default().push((b, o));
    }
    for ((ns, _), builds) in by_bc {
        let running: Vec<&Build> = builds
            .iter()
            .map(|(b, _)| b)
            .filter(|b| matches!(b.status.phase, BuildPhase::Pending | BuildPhase::Running))
            .collect();
        let lowest_new = builds
            .iter()
            .filter(|(b, _)| b.status.phase == BuildPhase::New)
            .map(|(b, _)| b.number())
            .min();
        for (b, owner) in &builds {
            if b.status.phase != BuildPhase::New {
                continue;
            }
            let mine = match owner {
                None => true,
                Some(o) => o == me || !o.is_alive(),
            };
            if !mine {
                continue;
            }
            let runnable = match b.run_policy() {
                RunPolicy::Serial | RunPolicy::SerialLatestOnly => {
                    running.is_empty() && Some(b.number()) == lowest_new
                }
                RunPolicy::Parallel => !running
                    .iter()
                    .any(|r| r.run_policy() != RunPolicy::Parallel),
            };
            if !runnable {
                continue;
            }
            let mut b = b.clone();
            if !pin(tx, &mut b, None)? {
                tx.put_build(&b, owner.as_ref())?;
                continue;
            }
            b.status.phase = BuildPhase::Running;
            b.status.start_timestamp = Some(now_precise());
            tx.put_build(&b, Some(me))?;
            let _ = ns;
            return Ok(Some(b));
        }
    }
    Ok(None)
}

/// How a build ended, from the runner.
#[derive(Debug)]
pub enum Outcome {
    /// The manifest digest of the image made (in the store, not yet tagged as the output).
    Built(Digest),
    /// OKD's reason (CamelCase) and a message.
    Failed {
        reason: &'static str,
        message: String,
    },
}

/// What [`complete`] did.
#[derive(Debug, Default)]
pub struct Completion {
    pub build: Build,
    /// The output tag's current image changed (a new history item).
    pub tag_changed: bool,
    /// Builds the new image triggered.
    pub triggered: Vec<Build>,
    /// Builds removed by the history limits (their logs can go).
    pub pruned: Vec<String>,
}

/// Records a build's end: phase, output tag event and store tag, history pruning; then fires
/// the ImageChange triggers. All in the caller's transaction.
pub fn complete(
    tx: &Tx<'_>,
    store: &Store,
    ns: &str,
    name: &str,
    outcome: Outcome,
    me: &Owner,
) -> Result<Completion> {
    let mut b = tx
        .build(ns, name)?
        .with_context(|| format!("build {name} was deleted while it ran"))?;
    let now_s = now_precise();
    let mut out = Completion::default();
    match outcome {
        _ if b.status.cancelled => cancel(&mut b, "The build was cancelled by the user."),
        Outcome::Failed { reason, message } => {
            b.status.phase = BuildPhase::Failed;
            b.status.reason = Some(reason.into());
            b.status.message = Some(message);
            finish_times(&mut b, &now_s);
        }
        Outcome::Built(digest) => {
            b.status.phase = BuildPhase::Complete;
            b.status.reason = None;
            b.status.output = Some(BuildStatusOutput {
                to: Some(BuildStatusOutputTo {
                    image_digest: digest.to_string(),
                }),
            });
            finish_times(&mut b, &now_s);
            if let Some(to) = b.spec.common.output.to.clone() {
                match to.kind {
                    RefKind::ImageStreamTag => {
                        let (s, t) = split_istag(&to.name).context("output is STREAM:TAG")?;
                        let tns = to.namespace.clone().unwrap_or_else(|| ns.to_string());
                        out.tag_changed = record_image(tx, store, &tns, s, t, &digest)?;
                        if !out.tag_changed {
                            b.status.message = Some(format!(
                                "the image is {}'s current image already; no new history item, nothing downstream fires",
                                to.name
                            ));
                        }
                    }
                    RefKind::DockerImage => {
                        let nt: NameTag = to.name.parse().context("spec.output.to.name")?;
                        store.tag(&nt, &digest)?;
                    }
                    RefKind::ImageStreamImage => {}
                }
            }
        }
    }
    let owner = if b.status.phase.is_terminal() {
        None
    } else {
        Some(me)
    };
    tx.put_build(&b, owner)?;
    out.pruned = prune_history(tx, ns, b.bc_name().unwrap_or_default())?;
    if out.tag_changed {
        out.triggered = fire_image_triggers(tx, ns, me)?;
    }
    out.build = b;
    Ok(out)
}

/// Makes `digest` the current image of `stream:tag` (and of the tags tracking it): a history item
/// unless it is the current one already, and the store tag `REPO:TAG`. Returns whether it changed.
pub fn record_image(
    tx: &Tx<'_>,
    store: &Store,
    ns: &str,
    stream: &str,
    tag: &str,
    digest: &Digest,
) -> Result<bool> {
    let is = tx
        .image_stream(ns, stream)?
        .with_context(|| format!("image stream {stream} not found"))?;
    let repo = ImageStream::repository(ns, stream);
    let ev = TagEvent {
        created: now(),
        docker_image_reference: format!("{repo}@{digest}"),
        image: digest.to_string(),
        generation: is.metadata.generation.unwrap_or(1),
    };
    let mut tags = vec![tag.to_string()];
    // Tracking tags (aliases): spec tags of this stream whose from is this tag.
    for st in &is.spec.tags {
        if let Some(f) = &st.from {
            let same = f.kind == RefKind::ImageStreamTag
                && (f.name == tag || f.name == format!("{stream}:{tag}"))
                && f.namespace.as_deref().is_none_or(|n| n == ns);
            if same && st.name != tag {
                tags.push(st.name.clone());
            }
        }
    }
    let mut changed = false;
    for t in &tags {
        let c = tx.add_tag_event(ns, stream, t, &ev)?;
        changed |= c && t == tag;
        // The store mirrors items[0]; set inside the transaction so a failure rolls both back.
        let nt = NameTag {
            name: repo.clone(),
            tag: t.clone(),
        };
        store
            .tag(&nt, digest)
            .with_context(|| format!("tagging {nt} in the store"))?;
    }
    Ok(changed)
}

/// `HandleBuildPruning`: keeps the newest `successfulBuildsHistoryLimit` Complete builds and the
/// newest `failedBuildsHistoryLimit` Failed/Error/Cancelled ones. Returns the names removed.
pub fn prune_history(tx: &Tx<'_>, ns: &str, bc_name: &str) -> Result<Vec<String>> {
    let Some(bc) = tx.build_config(ns, bc_name)? else {
        return Ok(Vec::new());
    };
    prune_builds_of(
        tx,
        ns,
        bc_name,
        bc.spec.successful_builds_history_limit,
        bc.spec.failed_builds_history_limit,
    )
}

pub fn prune_builds_of(
    tx: &Tx<'_>,
    ns: &str,
    bc_name: &str,
    keep_ok: Option<i32>,
    keep_failed: Option<i32>,
) -> Result<Vec<String>> {
    let mut builds = tx.builds(ns, Some(bc_name))?;
    builds.sort_by_key(|b| std::cmp::Reverse(b.number()));
    let mut removed = Vec::new();
    for (limit, pick) in [
        (
            keep_ok,
            (|p: BuildPhase| p == BuildPhase::Complete) as fn(BuildPhase) -> bool,
        ),
        (
            keep_failed,
            BuildPhase::is_failure as fn(BuildPhase) -> bool,
        ),
    ] {
        let Some(limit) = limit else { continue };
        for b in builds
            .iter()
            .filter(|b| pick(b.status.phase))
            .skip(limit.max(0) as usize)
        {
            tx.delete_build(ns, &b.metadata.name)?;
            removed.push(b.metadata.name.clone());
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_build_names_are_cut_with_a_hash() {
        assert_eq!(build_name("app", 3), "app-3");
        let long = "a".repeat(260);
        let n = build_name(&long, 12);
        assert_eq!(n.len(), 253);
        assert!(n.ends_with("-12"));
    }

    #[test]
    fn env_overrides_replace_and_append() {
        let mut c = CommonSpec::default();
        c.strategy.source_strategy = Some(SourceBuildStrategy {
            env: vec![EnvVar {
                name: "A".into(),
                value: "1".into(),
            }],
            ..Default::default()
        });
        merge_env(
            &mut c,
            &[
                EnvVar {
                    name: "A".into(),
                    value: "2".into(),
                },
                EnvVar {
                    name: "B".into(),
                    value: "3".into(),
                },
            ],
        );
        let env = &c.strategy.source_strategy.as_ref().unwrap().env;
        assert_eq!(
            env.iter()
                .map(|e| format!("{}={}", e.name, e.value))
                .collect::<Vec<_>>(),
            ["A=2", "B=3"]
        );
    }
}

/// The controller rules on a real database and store, without running builds: the outcome of
/// each "build" is given directly.
#[cfg(test)]
mod rules {
    use super::*;
    use crate::image::{ImageBuilder, Platform};
    use crate::pipeline::db::Db;
    use crate::pipeline::load::{load_str, Object};

    struct T {
        _dir: tempfile::TempDir,
        db: Db,
        store: Store,
        me: Owner,
    }

    const NS: &str = DEFAULT_NAMESPACE;

    impl T {
        fn new(yaml: &str) -> T {
            let dir = tempfile::tempdir().unwrap();
            let store = Store::open(dir.path()).unwrap();
            let (mut db, _) = Db::open(dir.path()).unwrap();
            let me = Owner::me();
            let loaded = load_str(yaml, "t.yaml").unwrap();
            db.write(|tx| {
                for o in &loaded.objects {
                    match o {
                        Object::ImageStream(is) => tx.put_image_stream(is)?,
                        Object::BuildConfig(bc) => tx.put_build_config(bc)?,
                        Object::Secret(x) => tx.put_secret(x)?,
                        Object::ConfigMap(x) => tx.put_config_map(x)?,
                    }
                }
                Ok(())
            })
            .unwrap();
            T {
                _dir: dir,
                db,
                store,
                me,
            }
        }

        /// A distinct one-config image in the store.
        fn image(&self, label: &str) -> Digest {
            let mut b = ImageBuilder::scratch(&Platform::host_default());
            b.label("t", label);
            let (cfg, m) = b.finish().unwrap();
            self.store
                .commit_image(&cfg, &m, &format!("scratch-{label}:x").parse().unwrap())
                .unwrap()
        }

        fn config_change(&mut self, bc: &str) -> Option<Build> {
            let me = self.me.clone();
            self.db
                .write(|tx| fire_config_change(tx, NS, bc, &me))
                .unwrap()
        }

        fn start(&mut self, bc: &str) -> Build {
            let me = self.me.clone();
            let req = Request {
                causes: vec![BuildTriggerCause {
                    message: cause::MANUAL.into(),
                    ..Default::default()
                }],
                ..Default::default()
            };
            self.db
                .write(|tx| instantiate(tx, NS, bc, req, &me))
                .unwrap()
        }

        fn claim(&mut self) -> Option<Build> {
            let me = self.me.clone();
            self.db.write(|tx| claim_next(tx, &me)).unwrap()
        }

        fn finish(&mut self, b: &Build, digest: Option<Digest>) -> Completion {
            let (me, store) = (self.me.clone(), self.store.clone());
            let outcome = match digest {
                Some(d) => Outcome::Built(d),
                None => Outcome::Failed {
                    reason: "GenericBuildFailed",
                    message: "boom".into(),
                },
            };
            self.db
                .write(|tx| complete(tx, &store, NS, &b.metadata.name, outcome, &me))
                .unwrap()
        }

        fn build(&mut self, name: &str) -> Build {
            self.db.read(|tx| tx.build(NS, name)).unwrap().unwrap()
        }

        fn history(&mut self, istag: &str) -> Vec<String> {
            let (s, t) = split_istag(istag).unwrap();
            let is = self.db.read(|tx| tx.image_stream(NS, s)).unwrap().unwrap();
            is.tag_history(t).iter().map(|e| e.image.clone()).collect()
        }
    }

    const CHAIN: &str = "
apiVersion: image.openshift.io/v1
kind: ImageStream
metadata: {name: builder}
---
apiVersion: image.openshift.io/v1
kind: ImageStream
metadata: {name: app}
---
apiVersion: build.openshift.io/v1
kind: BuildConfig
metadata: {name: builder}
spec:
  source: {dockerfile: 'FROM scratch'}
  strategy: {dockerStrategy: {}}
  output: {to: {kind: ImageStreamTag, name: 'builder:1'}}
  triggers: [{type: ConfigChange}]
---
apiVersion: build.openshift.io/v1
kind: BuildConfig
metadata: {name: app}
spec:
  source: {git: {uri: 'file:///nowhere'}}
  strategy: {sourceStrategy: {from: {kind: ImageStreamTag, name: 'builder:1'}}}
  output: {to: {kind: ImageStreamTag, name: 'app:1'}}
  triggers: [{type: ConfigChange}, {type: ImageChange}]
";

    #[test]
    fn a_chain_waits_then_the_image_pins_the_waiting_build_and_identical_images_stop_it() {
        let mut t = T::new(CHAIN);
        let b1 = t
            .config_change("builder")
            .expect("ConfigChange fires on a new BuildConfig");
        assert!(
            t.config_change("builder").is_none(),
            "ConfigChange fires once"
        );
        let a1 = t.config_change("app").unwrap();
        assert!(is_waiting(&a1), "{:?}", a1.status);
        assert!(a1
            .status
            .message
            .as_deref()
            .unwrap()
            .contains("builder:1 has no image yet"));

        let claimed = t.claim().unwrap();
        assert_eq!(claimed.metadata.name, "builder-1");
        assert!(t.claim().is_none(), "app-1 still waits");
        let img = t.image("one");
        let done = t.finish(&b1, Some(img.clone()));
        assert!(done.tag_changed);
        assert_eq!(
            done.triggered.len(),
            1,
            "the waiting build is pinned, not a second one queued"
        );
        let a1 = t.build("app-1");
        assert_eq!(
            a1.spec.common.strategy_from().unwrap().name,
            format!("builder@{img}")
        );
        assert_eq!(
            a1.spec.triggered_by.last().unwrap().message,
            cause::IMAGE_CHANGE
        );
        assert_eq!(
            t.store
                .resolve(&"builder:1".parse().unwrap())
                .unwrap()
                .manifest_digest,
            img,
            "the store mirrors the tag"
        );

        // The same image again: no history item, nothing fires.
        let b2 = t.start("builder");
        let done = t.finish(&b2, Some(img.clone()));
        assert!(!done.tag_changed && done.triggered.is_empty());
        assert!(done
            .build
            .status
            .message
            .unwrap()
            .contains("no new history item"));
        assert_eq!(t.history("builder:1").len(), 1);

        // A new image fires the app; a failure changes nothing.
        let b3 = t.start("builder");
        let done = t.finish(&b3, None);
        assert_eq!(done.build.status.phase, BuildPhase::Failed);
        assert!(done.triggered.is_empty());
        let b4 = t.start("builder");
        let img2 = t.image("two");
        let done = t.finish(&b4, Some(img2.clone()));
        assert_eq!(done.triggered.len(), 1);
        assert_eq!(done.triggered[0].metadata.name, "app-2");
        assert_eq!(t.history("builder:1"), [img2.to_string(), img.to_string()]);
    }

    const POLICY: &str = "
apiVersion: build.openshift.io/v1
kind: BuildConfig
metadata: {name: p}
spec:
  runPolicy: POLICY
  successfulBuildsHistoryLimit: 2
  source: {dockerfile: 'FROM scratch'}
  strategy: {dockerStrategy: {}}
";

    #[test]
    fn run_policies_decide_what_may_run() {
        let mut t = T::new(&POLICY.replace("POLICY", "Serial"));
        let (b1, b2) = (t.start("p"), t.start("p"));
        assert_eq!(t.claim().unwrap().metadata.name, b1.metadata.name);
        assert!(t.claim().is_none(), "Serial: p-2 waits for p-1");
        t.finish(&b1, Some(t.image("a")));
        assert_eq!(t.claim().unwrap().metadata.name, b2.metadata.name);

        let mut t = T::new(&POLICY.replace("POLICY", "Parallel"));
        let (b1, b2) = (t.start("p"), t.start("p"));
        assert_eq!(t.claim().unwrap().metadata.name, b1.metadata.name);
        assert_eq!(
            t.claim().unwrap().metadata.name,
            b2.metadata.name,
            "Parallel: both run"
        );

        let mut t = T::new(&POLICY.replace("POLICY", "SerialLatestOnly"));
        let b1 = t.start("p");
        t.claim().unwrap();
        let b2 = t.start("p");
        let b3 = t.start("p");
        assert_eq!(
            t.build(&b2.metadata.name).status.phase,
            BuildPhase::Cancelled,
            "the queued older one is cancelled"
        );
        assert_eq!(
            t.build(&b1.metadata.name).status.phase,
            BuildPhase::Running,
            "the running one finishes"
        );
        t.finish(&b1, Some(t.image("b")));
        assert_eq!(t.claim().unwrap().metadata.name, b3.metadata.name);
    }

    #[test]
    fn history_limits_prune_at_completion() {
        let mut t = T::new(&POLICY.replace("POLICY", "Serial"));
        let mut pruned = Vec::new();
        for i in 0..4 {
            let b = t.start("p");
            t.claim().unwrap();
            pruned.extend(t.finish(&b, Some(t.image(&format!("i{i}")))).pruned);
        }
        assert_eq!(pruned, ["p-1", "p-2"]);
        let names: Vec<_> =
            t.db.read(|tx| tx.builds(NS, Some("p")))
                .unwrap()
                .into_iter()
                .map(|b| b.metadata.name)
                .collect();
        assert_eq!(names, ["p-3", "p-4"]);
    }
}
