//! The pipeline's state: one SQLite database, `$WS2I_HOME/pipeline.db` (rusqlite, bundled SQLite).
//!
//! - WAL mode and a busy timeout, so several `ws2i` processes read and write at once; every write
//!   is one `BEGIN IMMEDIATE` transaction ([`Db::write`]), so read-modify-write cycles (numbering
//!   builds, claiming one under a run policy) are serialized across processes.
//! - Objects are stored as their OKD JSON (`objects`, `builds`), with the columns queries need
//!   beside it; image-stream status is not stored in the stream but derived from `tag_events`,
//!   which the completion of a build appends to in the same transaction as the build's phase.
//! - Every Running/Pending build records its owner (pid and the kernel's start time of that pid,
//!   so a reused pid is not mistaken for the owner). [`Db::open`] turns builds whose owner is gone
//!   into `Error` and releases the New builds a dead process had queued, so a SIGKILL mid-build
//!   leaves a state the next command repairs.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::objects::*;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS objects(
    kind TEXT NOT NULL, namespace TEXT NOT NULL, name TEXT NOT NULL,
    body TEXT NOT NULL, created TEXT NOT NULL,
    PRIMARY KEY(kind, namespace, name));
CREATE TABLE IF NOT EXISTS builds(
    namespace TEXT NOT NULL, name TEXT NOT NULL, bc TEXT NOT NULL, number INTEGER NOT NULL,
    phase TEXT NOT NULL, owner TEXT, body TEXT NOT NULL,
    PRIMARY KEY(namespace, name));
CREATE INDEX IF NOT EXISTS builds_by_bc ON builds(namespace, bc, number);
CREATE TABLE IF NOT EXISTS tag_events(
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    namespace TEXT NOT NULL, stream TEXT NOT NULL, tag TEXT NOT NULL,
    created TEXT NOT NULL, reference TEXT NOT NULL, image TEXT NOT NULL, generation INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS tag_events_by_tag ON tag_events(namespace, stream, tag, id);
";

/// A process that owns a build: its pid and the start time the kernel gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner(String);

impl Owner {
    pub fn me() -> Owner {
        let pid = std::process::id();
        Owner(format!("{pid}:{}", start_time(pid).unwrap_or(0)))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    pub fn pid(&self) -> Option<u32> {
        self.0.split(':').next()?.parse().ok()
    }
    /// True while the process lives (same pid, same start time).
    pub fn is_alive(&self) -> bool {
        let mut it = self.0.split(':');
        let (Some(pid), Some(start)) = (
            it.next().and_then(|p| p.parse::<u32>().ok()),
            it.next().and_then(|s| s.parse::<u64>().ok()),
        ) else {
            return false;
        };
        start_time(pid) == Some(start)
    }
}

/// Field 22 of /proc/PID/stat (after the parenthesised command name, which may hold spaces).
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(19)?.parse().ok()
}

pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Precise time for ordering builds and computing durations.
pub fn now_precise() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

pub struct Db {
    conn: Connection,
    path: PathBuf,
}

/// What [`Db::open`] repaired.
#[derive(Debug, Default)]
pub struct Recovered {
    /// Builds found Running or Pending with a dead owner, now Error.
    pub errored: Vec<String>,
}

impl Db {
    pub fn path(home: &Path) -> PathBuf {
        home.join("pipeline.db")
    }

    /// Opens (creating) the database under `home` and repairs what dead processes left.
    pub fn open(home: &Path) -> Result<(Db, Recovered)> {
        std::fs::create_dir_all(home).with_context(|| format!("creating {}", home.display()))?;
        let path = Self::path(home);
        let conn =
            Connection::open(&path).with_context(|| format!("opening {}", path.display()))?;
        conn.busy_timeout(Duration::from_secs(60))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        // It holds Secrets: readable by this user only (SQLite gives -wal and -shm the same mode).
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                .with_context(|| format!("restricting {}", path.display()))?;
        }
        let mut db = Db { conn, path };
        db.write(|tx| Ok(tx.execute_batch(SCHEMA)?))
            .with_context(|| format!("creating the schema of {}", db.path.display()))?;
        let rec = db.recover()?;
        Ok((db, rec))
    }

    /// One write transaction, taken at once (`BEGIN IMMEDIATE`): it commits if `f` succeeds and
    /// rolls back otherwise, so nothing is half-written.
    pub fn write<T>(&mut self, f: impl FnOnce(&Tx<'_>) -> Result<T>) -> Result<T> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let out = f(&Tx(&tx))?;
        tx.commit().context("committing to the pipeline database")?;
        Ok(out)
    }

    /// A consistent read (one snapshot).
    pub fn read<T>(&mut self, f: impl FnOnce(&Tx<'_>) -> Result<T>) -> Result<T> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Deferred)?;
        let out = f(&Tx(&tx))?;
        tx.commit()?;
        Ok(out)
    }

    /// Turns builds whose owner died into Error and releases their queued New builds.
    pub fn recover(&mut self) -> Result<Recovered> {
        let mut rec = Recovered::default();
        let owned: Vec<(String, String, String)> = self.read(|tx| {
            let mut st =
                tx.0.prepare("SELECT namespace, name, owner FROM builds WHERE owner IS NOT NULL")?;
            let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })?;
        let dead: Vec<_> = owned
            .into_iter()
            .filter(|(_, _, o)| !Owner(o.clone()).is_alive())
            .collect();
        if dead.is_empty() {
            return Ok(rec);
        }
        self.write(|tx| {
            for (ns, name, owner) in &dead {
                let Some(mut b) = tx.build(ns, name)? else { continue };
                // Re-check inside the transaction: another process may have repaired it.
                if b_owner(tx, ns, name)?.as_deref() != Some(owner.as_str()) {
                    continue;
                }
                match b.status.phase {
                    BuildPhase::Running | BuildPhase::Pending => {
                        let pid = Owner(owner.clone()).pid().unwrap_or(0);
                        let now = now_precise();
                        b.status.phase = BuildPhase::Error;
                        b.status.reason = Some("BuildPodDeleted".into());
                        b.status.message = Some(format!(
                            "the ws2i process that ran this build (pid {pid}) ended before the build did; nothing was tagged"
                        ));
                        finish_times(&mut b, &now);
                        tx.put_build(&b, None)?;
                        rec.errored.push(format!("{ns}/{name}"));
                    }
                    // A queued build of a dead process: any command may run it now.
                    _ => tx.put_build(&b, None)?,
                }
            }
            Ok(())
        })?;
        Ok(rec)
    }
}

fn b_owner(tx: &Tx<'_>, ns: &str, name: &str) -> Result<Option<String>> {
    Ok(tx
        .0
        .query_row(
            "SELECT owner FROM builds WHERE namespace=?1 AND name=?2",
            params![ns, name],
            |r| r.get(0),
        )
        .optional()?
        .flatten())
}

/// Sets completion time and duration (nanoseconds) of a build reaching a terminal phase.
pub fn finish_times(b: &mut Build, now: &str) {
    b.status.completion_timestamp = Some(now.to_string());
    if let (Some(s), Ok(e)) = (
        b.status
            .start_timestamp
            .as_deref()
            .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok()),
        chrono::DateTime::parse_from_rfc3339(now),
    ) {
        b.status.duration = (e - s).num_nanoseconds();
    }
}

/// The operations on one transaction.
pub struct Tx<'a>(&'a rusqlite::Transaction<'a>);

impl Tx<'_> {
    fn execute_batch(&self, sql: &str) -> rusqlite::Result<()> {
        self.0.execute_batch(sql)
    }

    fn get_object<T: serde::de::DeserializeOwned>(
        &self,
        kind: &str,
        ns: &str,
        name: &str,
    ) -> Result<Option<T>> {
        let body: Option<String> = self
            .0
            .query_row(
                "SELECT body FROM objects WHERE kind=?1 AND namespace=?2 AND name=?3",
                params![kind, ns, name],
                |r| r.get(0),
            )
            .optional()?;
        body.map(|b| {
            serde_json::from_str(&b)
                .with_context(|| format!("corrupt {kind} {ns}/{name} in the database"))
        })
        .transpose()
    }

    fn list_objects<T: serde::de::DeserializeOwned>(&self, kind: &str, ns: &str) -> Result<Vec<T>> {
        let mut st = self
            .0
            .prepare("SELECT body FROM objects WHERE kind=?1 AND namespace=?2 ORDER BY name")?;
        let rows = st.query_map(params![kind, ns], |r| r.get::<_, String>(0))?;
        rows.map(|b| Ok(serde_json::from_str(&b?)?)).collect()
    }

    fn put_object<T: serde::Serialize>(
        &self,
        kind: &str,
        meta: &ObjectMeta,
        body: &T,
    ) -> Result<()> {
        let created = meta.creation_timestamp.clone().unwrap_or_else(now);
        self.0.execute(
            "INSERT INTO objects(kind, namespace, name, body, created) VALUES(?1, ?2, ?3, ?4, ?5)
             ON CONFLICT(kind, namespace, name) DO UPDATE SET body=excluded.body",
            params![
                kind,
                meta.namespace(),
                meta.name,
                serde_json::to_string(body)?,
                created
            ],
        )?;
        Ok(())
    }

    pub fn delete_object(&self, kind: &str, ns: &str, name: &str) -> Result<bool> {
        Ok(self.0.execute(
            "DELETE FROM objects WHERE kind=?1 AND namespace=?2 AND name=?3",
            params![kind, ns, name],
        )? > 0)
    }

    /// A stream with its status filled from the tag events.
    pub fn image_stream(&self, ns: &str, name: &str) -> Result<Option<ImageStream>> {
        let Some(mut is): Option<ImageStream> = self.get_object("ImageStream", ns, name)? else {
            return Ok(None);
        };
        self.fill_status(&mut is)?;
        Ok(Some(is))
    }

    pub fn image_streams(&self, ns: &str) -> Result<Vec<ImageStream>> {
        let mut v: Vec<ImageStream> = self.list_objects("ImageStream", ns)?;
        for is in &mut v {
            self.fill_status(is)?;
        }
        Ok(v)
    }

    fn fill_status(&self, is: &mut ImageStream) -> Result<()> {
        let ns = is.metadata.namespace().to_string();
        is.status.docker_image_repository = ImageStream::repository(&ns, &is.metadata.name);
        let mut st = self.0.prepare(
            "SELECT tag, created, reference, image, generation FROM tag_events
             WHERE namespace=?1 AND stream=?2 ORDER BY tag, id DESC",
        )?;
        let rows = st.query_map(params![ns, is.metadata.name], |r| {
            Ok((
                r.get::<_, String>(0)?,
                TagEvent {
                    created: r.get(1)?,
                    docker_image_reference: r.get(2)?,
                    image: r.get(3)?,
                    generation: r.get(4)?,
                },
            ))
        })?;
        let mut tags: Vec<NamedTagEventList> = Vec::new();
        for row in rows {
            let (tag, ev) = row?;
            match tags.last_mut() {
                Some(l) if l.tag == tag => l.items.push(ev),
                _ => tags.push(NamedTagEventList {
                    tag,
                    items: vec![ev],
                }),
            }
        }
        is.status.tags = tags;
        Ok(())
    }

    pub fn put_image_stream(&self, is: &ImageStream) -> Result<()> {
        let mut stored = is.clone();
        stored.status = ImageStreamStatus::default();
        self.put_object("ImageStream", &is.metadata, &stored)
    }

    /// Appends a tag event unless it changes nothing (OKD's `AddTagEventToImageStream`: the same
    /// image as `items[0]` is no new item). Returns whether the tag's current image changed.
    pub fn add_tag_event(&self, ns: &str, stream: &str, tag: &str, ev: &TagEvent) -> Result<bool> {
        let current: Option<String> = self
            .0
            .query_row(
                "SELECT image FROM tag_events WHERE namespace=?1 AND stream=?2 AND tag=?3 ORDER BY id DESC LIMIT 1",
                params![ns, stream, tag],
                |r| r.get(0),
            )
            .optional()?;
        if current.as_deref() == Some(ev.image.as_str()) {
            return Ok(false);
        }
        self.0.execute(
            "INSERT INTO tag_events(namespace, stream, tag, created, reference, image, generation) VALUES(?1,?2,?3,?4,?5,?6,?7)",
            params![ns, stream, tag, ev.created, ev.docker_image_reference, ev.image, ev.generation],
        )?;
        Ok(true)
    }

    /// Keeps the newest `keep` items of every tag of the namespace; returns how many went.
    pub fn prune_tag_history(&self, ns: &str, keep: usize) -> Result<usize> {
        Ok(self.0.execute(
            "DELETE FROM tag_events WHERE namespace=?1 AND id IN (
                SELECT id FROM (SELECT id, ROW_NUMBER() OVER (PARTITION BY stream, tag ORDER BY id DESC) AS n
                                FROM tag_events WHERE namespace=?1) WHERE n > ?2)",
            params![ns, keep as i64],
        )?)
    }

    pub fn delete_tag(&self, ns: &str, stream: &str, tag: Option<&str>) -> Result<()> {
        match tag {
            Some(t) => self.0.execute(
                "DELETE FROM tag_events WHERE namespace=?1 AND stream=?2 AND tag=?3",
                params![ns, stream, t],
            )?,
            None => self.0.execute(
                "DELETE FROM tag_events WHERE namespace=?1 AND stream=?2",
                params![ns, stream],
            )?,
        };
        Ok(())
    }

    pub fn secret(&self, ns: &str, name: &str) -> Result<Option<Secret>> {
        self.get_object("Secret", ns, name)
    }

    pub fn secrets(&self, ns: &str) -> Result<Vec<Secret>> {
        self.list_objects("Secret", ns)
    }

    pub fn put_secret(&self, s: &Secret) -> Result<()> {
        self.put_object("Secret", &s.metadata, s)
    }

    pub fn config_map(&self, ns: &str, name: &str) -> Result<Option<ConfigMap>> {
        self.get_object("ConfigMap", ns, name)
    }

    pub fn config_maps(&self, ns: &str) -> Result<Vec<ConfigMap>> {
        self.list_objects("ConfigMap", ns)
    }

    pub fn put_config_map(&self, c: &ConfigMap) -> Result<()> {
        self.put_object("ConfigMap", &c.metadata, c)
    }

    pub fn build_config(&self, ns: &str, name: &str) -> Result<Option<BuildConfig>> {
        self.get_object("BuildConfig", ns, name)
    }

    pub fn build_configs(&self, ns: &str) -> Result<Vec<BuildConfig>> {
        self.list_objects("BuildConfig", ns)
    }

    pub fn put_build_config(&self, bc: &BuildConfig) -> Result<()> {
        self.put_object("BuildConfig", &bc.metadata, bc)
    }

    pub fn build(&self, ns: &str, name: &str) -> Result<Option<Build>> {
        let body: Option<String> = self
            .0
            .query_row(
                "SELECT body FROM builds WHERE namespace=?1 AND name=?2",
                params![ns, name],
                |r| r.get(0),
            )
            .optional()?;
        body.map(|b| {
            serde_json::from_str(&b)
                .with_context(|| format!("corrupt build {ns}/{name} in the database"))
        })
        .transpose()
    }

    /// The builds of a namespace (of one BuildConfig if `bc`), oldest first.
    pub fn builds(&self, ns: &str, bc: Option<&str>) -> Result<Vec<Build>> {
        let mut st = self.0.prepare(
            "SELECT body FROM builds WHERE namespace=?1 AND (?2 IS NULL OR bc=?2) ORDER BY rowid",
        )?;
        let rows = st.query_map(params![ns, bc], |r| r.get::<_, String>(0))?;
        rows.map(|b| Ok(serde_json::from_str(&b?)?)).collect()
    }

    /// Builds in a phase, with their owner, across namespaces.
    pub fn builds_in(&self, phases: &[BuildPhase]) -> Result<Vec<(Build, Option<Owner>)>> {
        let mut st = self
            .0
            .prepare("SELECT body, owner, phase FROM builds ORDER BY namespace, bc, number")?;
        let rows = st.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, Option<String>>(1)?,
                r.get::<_, String>(2)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (body, owner, phase) = row?;
            if phases.iter().any(|p| p.as_str() == phase) {
                out.push((serde_json::from_str(&body)?, owner.map(Owner)));
            }
        }
        Ok(out)
    }

    pub fn owner_of(&self, ns: &str, name: &str) -> Result<Option<Owner>> {
        Ok(b_owner(self, ns, name)?.map(Owner))
    }

    /// Writes a build with its owner (`None`: nobody holds it).
    pub fn put_build(&self, b: &Build, owner: Option<&Owner>) -> Result<()> {
        let bc = b.bc_name().unwrap_or_default();
        self.0.execute(
            "INSERT INTO builds(namespace, name, bc, number, phase, owner, body) VALUES(?1,?2,?3,?4,?5,?6,?7)
             ON CONFLICT(namespace, name) DO UPDATE SET phase=excluded.phase, owner=excluded.owner, body=excluded.body",
            params![
                b.metadata.namespace(),
                b.metadata.name,
                bc,
                b.number(),
                b.status.phase.as_str(),
                owner.map(Owner::as_str),
                serde_json::to_string(b)?
            ],
        )?;
        Ok(())
    }

    pub fn delete_build(&self, ns: &str, name: &str) -> Result<bool> {
        Ok(self.0.execute(
            "DELETE FROM builds WHERE namespace=?1 AND name=?2",
            params![ns, name],
        )? > 0)
    }

    /// `PRAGMA integrity_check`: "ok" when the file is sound.
    pub fn integrity(&self) -> Result<String> {
        Ok(self
            .0
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(ns: &str, bc: &str, n: i64, phase: BuildPhase) -> Build {
        let mut b = Build::default();
        b.metadata.name = format!("{bc}-{n}");
        b.metadata.namespace = Some(ns.into());
        b.metadata.creation_timestamp = Some(format!("2026-01-01T00:00:0{n}.000Z"));
        b.metadata
            .labels
            .insert(build_meta::BC_NAME.into(), bc.into());
        b.metadata
            .annotations
            .insert(build_meta::NUMBER.into(), n.to_string());
        b.status.phase = phase;
        b
    }

    #[test]
    fn tag_events_collapse_and_history_is_newest_first() {
        let t = tempfile::tempdir().unwrap();
        let (mut db, _) = Db::open(t.path()).unwrap();
        let ev = |img: &str| TagEvent {
            created: now(),
            docker_image_reference: format!("app@{img}"),
            image: img.into(),
            generation: 1,
        };
        db.write(|tx| {
            let mut is = ImageStream::default();
            is.metadata.name = "app".into();
            tx.put_image_stream(&is)?;
            assert!(tx.add_tag_event("default", "app", "1.0", &ev("sha256:a"))?);
            assert!(
                !tx.add_tag_event("default", "app", "1.0", &ev("sha256:a"))?,
                "same image: no new item"
            );
            assert!(tx.add_tag_event("default", "app", "1.0", &ev("sha256:b"))?);
            assert!(
                tx.add_tag_event("default", "app", "1.0", &ev("sha256:a"))?,
                "a rollback is a new item"
            );
            Ok(())
        })
        .unwrap();
        let is = db
            .read(|tx| tx.image_stream("default", "app"))
            .unwrap()
            .unwrap();
        let imgs: Vec<_> = is
            .tag_history("1.0")
            .iter()
            .map(|e| e.image.as_str())
            .collect();
        assert_eq!(imgs, ["sha256:a", "sha256:b", "sha256:a"]);
        assert_eq!(is.status.docker_image_repository, "app");
        assert_eq!(
            db.write(|tx| tx.prune_tag_history("default", 1)).unwrap(),
            2
        );
        let is = db
            .read(|tx| tx.image_stream("default", "app"))
            .unwrap()
            .unwrap();
        assert_eq!(is.tag_history("1.0").len(), 1);
    }

    #[test]
    fn a_running_build_of_a_dead_owner_becomes_error_on_open() {
        let t = tempfile::tempdir().unwrap();
        let (mut db, _) = Db::open(t.path()).unwrap();
        let dead = Owner("999999999:1".into());
        assert!(!dead.is_alive());
        assert!(Owner::me().is_alive());
        db.write(|tx| {
            let mut b = build("default", "app", 1, BuildPhase::Running);
            b.status.start_timestamp = Some(now_precise());
            tx.put_build(&b, Some(&dead))?;
            tx.put_build(&build("default", "app", 2, BuildPhase::New), Some(&dead))?;
            tx.put_build(
                &build("default", "app", 3, BuildPhase::Running),
                Some(&Owner::me()),
            )?;
            Ok(())
        })
        .unwrap();
        drop(db);
        let (mut db, rec) = Db::open(t.path()).unwrap();
        assert_eq!(rec.errored, ["default/app-1"]);
        let b1 = db.read(|tx| tx.build("default", "app-1")).unwrap().unwrap();
        assert_eq!(b1.status.phase, BuildPhase::Error);
        assert_eq!(b1.status.reason.as_deref(), Some("BuildPodDeleted"));
        assert!(b1.status.duration.is_some());
        let (b2, o2) = db
            .read(|tx| {
                Ok((
                    tx.build("default", "app-2")?.unwrap(),
                    tx.owner_of("default", "app-2")?,
                ))
            })
            .unwrap();
        assert_eq!(
            (b2.status.phase, o2),
            (BuildPhase::New, None),
            "a queued build is released"
        );
        let b3 = db.read(|tx| tx.build("default", "app-3")).unwrap().unwrap();
        assert_eq!(
            b3.status.phase,
            BuildPhase::Running,
            "a live owner keeps its build"
        );
        assert_eq!(db.read(|tx| tx.integrity()).unwrap(), "ok");
    }

    #[test]
    fn a_failed_transaction_writes_nothing() {
        let t = tempfile::tempdir().unwrap();
        let (mut db, _) = Db::open(t.path()).unwrap();
        let r: Result<()> = db.write(|tx| {
            tx.put_build(&build("default", "app", 1, BuildPhase::New), None)?;
            anyhow::bail!("boom")
        });
        assert!(r.is_err());
        assert!(db.read(|tx| tx.builds("default", None)).unwrap().is_empty());
    }
}
