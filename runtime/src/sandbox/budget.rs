//! Budgets: their defaults, and the state one hook run (parent and spawned children) draws on.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use super::error::{BudgetExceeded, BudgetKind};
use crate::{HumanDuration, Size};

/// Limits for one hook run. A spawned child shares its parent's (the same deadline, the same counters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Budget {
    /// Cap on the linear memories and tables of the hook and its spawned children together.
    pub memory: Size,
    /// Wall time from the start of the hook.
    pub timeout: Duration,
    /// Bytes of files created or changed under the rootfs and writable mounts.
    pub disk: Size,
    /// Bytes of stdout/stderr logged; beyond it output is dropped with a notice (not fatal).
    pub log: Size,
    /// Number of `ws2i.spawn` calls in the whole run.
    pub spawn_count: u32,
    /// Nesting of spawns (a hook that spawns is depth 1's parent).
    pub spawn_depth: u32,
    /// Modules of the run executing at the same moment (`ws2i.spawn_all`), the hook included.
    pub jobs: u32,
    /// Tripped from outside (a cancelled pipeline build): the run stops at its next epoch check.
    pub cancel: CancelToken,
}

/// A flag another thread raises to stop a run, checked with the time budget. Clones share it;
/// two budgets are equal only when they share the same token.
#[derive(Debug, Clone, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

impl PartialEq for CancelToken {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}
impl Eq for CancelToken {}

/// The cores this process may use: the default job budget.
pub fn default_jobs() -> u32 {
    std::thread::available_parallelism().map_or(1, |n| u32::try_from(n.get()).unwrap_or(u32::MAX))
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            memory: Size(1 << 30),
            timeout: Duration::from_secs(30 * 60),
            disk: Size(4 << 30),
            log: Size(64 << 20),
            spawn_count: 1000,
            spawn_depth: 8,
            jobs: default_jobs(),
            cancel: CancelToken::default(),
        }
    }
}

/// The largest module file ws2i compiles, whatever the memory budget (Cranelift's peak memory is
/// many times the module's size: ≈1.1 GB for Go's 53 MB compiler).
pub(crate) const MAX_MODULE: u64 = 128 << 20;
/// The cap never drops below this, so small budgets still run ordinary hooks.
const MIN_MODULE_CAP: u64 = 4 << 20;

impl Budget {
    /// Bytes a module file may have to be compiled: an eighth of the memory budget, between
    /// 4 MiB and [`MAX_MODULE`]. Checked before the file is read, so a huge or endless file
    /// costs nothing.
    pub(crate) fn module_cap(&self) -> u64 {
        (self.memory.bytes() / 8).clamp(MIN_MODULE_CAP, MAX_MODULE)
    }

    pub(crate) fn exceeded(&self, which: BudgetKind) -> BudgetExceeded {
        let limit = match which {
            BudgetKind::Memory => self.memory.to_string(),
            BudgetKind::Time => HumanDuration(self.timeout).to_string(),
            BudgetKind::Disk => self.disk.to_string(),
            BudgetKind::SpawnCount => self.spawn_count.to_string(),
            BudgetKind::SpawnDepth => self.spawn_depth.to_string(),
            BudgetKind::OpenFiles => open_files_limit(),
            BudgetKind::Cancelled => String::new(),
        };
        BudgetExceeded { which, limit }
    }
}

/// Counters shared by a hook and its children.
pub(crate) struct RunState {
    pub budget: Budget,
    pub deadline: Instant,
    pub spawns: AtomicU32,
    pub disk_used: AtomicU64,
    pub disk_over: AtomicBool,
    /// The disk watcher could not measure (no file descriptor left): fail closed.
    pub disk_blind: AtomicBool,
    /// Bytes of linear memory and tables held by the run's live stores (see `run::MemLimiter`).
    pub mem_used: AtomicU64,
    pub done: AtomicBool,
    /// Job slots not in use: `jobs` minus the hook's own thread minus helpers of batches.
    pub jobs_free: AtomicU32,
}

impl RunState {
    pub fn new(budget: Budget) -> Arc<Self> {
        let deadline = Instant::now() + budget.timeout;
        let jobs_free = AtomicU32::new(budget.jobs.saturating_sub(1));
        Arc::new(RunState {
            budget,
            deadline,
            spawns: AtomicU32::new(0),
            disk_used: AtomicU64::new(0),
            disk_over: AtomicBool::new(false),
            disk_blind: AtomicBool::new(false),
            mem_used: AtomicU64::new(0),
            done: AtomicBool::new(false),
            jobs_free,
        })
    }

    /// Called from the epoch callback: is any budget checked by time passing spent?
    pub fn check(&self) -> Result<(), BudgetExceeded> {
        if self.budget.cancel.is_cancelled() {
            return Err(self.budget.exceeded(BudgetKind::Cancelled));
        }
        if self.disk_over.load(Ordering::Relaxed) {
            return Err(self.budget.exceeded(BudgetKind::Disk));
        }
        if self.disk_blind.load(Ordering::Relaxed) {
            return Err(self.budget.exceeded(BudgetKind::OpenFiles));
        }
        if Instant::now() >= self.deadline {
            return Err(self.budget.exceeded(BudgetKind::Time));
        }
        Ok(())
    }
}

/// Disk accounting: a watcher thread re-measures the bytes of regular files whose mtime or ctime
/// is at or after the run's start, under each writable tree, plus the files the run still holds
/// open after unlinking them (no walk can see those), and raises `disk_over` when their sum
/// passes the budget; the guest is stopped at its next epoch check. Symlinks are not followed.
/// The walk is adaptive (its interval is at least 4× its own duration) so a large base rootfs costs
/// little; the price is that a fast writer can overshoot by what it writes in one interval.
/// A walk that cannot open a directory because the process is out of file descriptors (a hook
/// holding thousands of files open) stops the run instead of undercounting (`disk_blind`).
pub(crate) fn spawn_disk_watcher(state: Arc<RunState>, roots: Vec<PathBuf>) -> std::thread::JoinHandle<()> {
    let start = SystemTime::now() - Duration::from_secs(1);
    std::thread::spawn(move || {
        let limit = state.budget.disk.bytes();
        while !state.done.load(Ordering::Relaxed) {
            let t0 = Instant::now();
            let measured = changed_bytes_all(&roots, start)
                .and_then(|walked| Ok(walked.saturating_add(unlinked_open_bytes(&roots)?)));
            let used = match measured {
                Ok(used) => used,
                Err(_) => {
                    state.disk_blind.store(true, Ordering::Relaxed);
                    return;
                }
            };
            state.disk_used.store(used, Ordering::Relaxed);
            if used > limit {
                state.disk_over.store(true, Ordering::Relaxed);
                return;
            }
            // Unparked by the run when it ends.
            std::thread::park_timeout((t0.elapsed() * 4).max(Duration::from_millis(50)));
        }
    })
}

/// What an entry costs besides its data: its inode and directory entry (an ext4 inode is 256
/// bytes). Charged for every changed entry, so a hook creating millions of empty files,
/// directories or symlinks spends the budget like one writing bytes.
pub(crate) const INODE_COST: u64 = 256;

/// Out of file descriptors (the process's or the system's): a measurement that cannot be trusted.
#[derive(Debug)]
pub(crate) struct OutOfDescriptors;

fn check_fd_error(e: &std::io::Error) -> Result<(), OutOfDescriptors> {
    match e.raw_os_error() {
        Some(libc::EMFILE | libc::ENFILE) => Err(OutOfDescriptors),
        _ => Ok(()), // an entry removed mid-walk, say: nothing to count
    }
}

/// [`changed_bytes`] of every root, summed.
pub(crate) fn changed_bytes_all(roots: &[PathBuf], since: SystemTime) -> Result<u64, OutOfDescriptors> {
    roots.iter().try_fold(0u64, |sum, r| Ok(sum.saturating_add(changed_bytes(r, since)?)))
}

/// Bytes of the entries under `root` created or changed since `since`: files and symlinks at the
/// larger of their length and their allocated blocks (a sparse file counts in full, as it would
/// in a layer), directories at their blocks, each entry [`INODE_COST`] more.
pub(crate) fn changed_bytes(root: &Path, since: SystemTime) -> Result<u64, OutOfDescriptors> {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0u64;
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) => {
                check_fd_error(&e)?;
                continue;
            }
        };
        for entry in entries.flatten() {
            let Ok(md) = entry.metadata() else { continue }; // does not follow symlinks
            if md.is_dir() {
                stack.push(entry.path());
            }
            let ctime = SystemTime::UNIX_EPOCH + Duration::from_secs(md.ctime().max(0) as u64);
            let changed = md.modified().map(|m| m >= since).unwrap_or(true) || ctime >= since;
            if changed {
                let data = if md.is_dir() { md.blocks() * 512 } else { md.len().max(md.blocks() * 512) };
                total = total.saturating_add(data).saturating_add(INODE_COST);
            }
        }
    }
    Ok(total)
}

/// Bytes of the files this process holds open that were unlinked from under one of `roots`: a
/// hook can write a file, delete it and go on writing through its descriptor. The guest's files
/// are host descriptors of ws2i's own, so `/proc/self/fd` lists them; the kernel names an
/// unlinked one `<path> (deleted)`.
pub(crate) fn unlinked_open_bytes(roots: &[PathBuf]) -> Result<u64, OutOfDescriptors> {
    use std::os::unix::fs::MetadataExt;
    let fds = match std::fs::read_dir("/proc/self/fd") {
        Ok(d) => d,
        Err(e) => {
            check_fd_error(&e)?;
            return Ok(0); // no /proc: nothing more to see
        }
    };
    let mut total = 0u64;
    for fd in fds.flatten() {
        let Ok(target) = std::fs::read_link(fd.path()) else { continue };
        let Some(path) = target.to_str().and_then(|t| t.strip_suffix(" (deleted)")) else { continue };
        if !roots.iter().any(|r| Path::new(path).starts_with(r)) {
            continue;
        }
        // The magic link leads to the open file itself, deleted or not.
        if let Ok(md) = std::fs::metadata(fd.path()) {
            if md.is_file() {
                total = total.saturating_add(md.len().max(md.blocks() * 512)).saturating_add(INODE_COST);
            }
        }
    }
    Ok(total)
}

/// The soft limit on open files, for the error that names it.
fn open_files_limit() -> String {
    let mut l = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes into the struct it is given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) } == 0 {
        format!("{} descriptors", l.rlim_cur)
    } else {
        "descriptor limit".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_budget_and_its_limit() {
        let b = Budget { memory: Size(256 << 20), timeout: Duration::from_secs(3), ..Budget::default() };
        assert_eq!(b.exceeded(BudgetKind::Memory).to_string(), "hook exceeded its memory budget (256MiB)");
        assert_eq!(b.exceeded(BudgetKind::Time).to_string(), "hook exceeded its time budget (3s)");
        assert_eq!(b.exceeded(BudgetKind::SpawnDepth).to_string(), "hook exceeded its spawn depth budget (8)");
        assert_eq!(b.exceeded(BudgetKind::Cancelled).to_string(), "hook was cancelled");
    }

    #[test]
    fn a_tripped_token_stops_the_run_and_clones_share_it() {
        let b = Budget::default();
        let state = RunState::new(b.clone());
        assert!(state.check().is_ok());
        b.cancel.cancel();
        assert_eq!(state.check().unwrap_err().which, BudgetKind::Cancelled);
        assert_ne!(Budget::default(), b, "a fresh token is another token");
    }

    #[test]
    fn only_changed_files_count_and_symlinks_are_not_followed() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("old"), vec![0u8; 5000]).unwrap();
        let since = SystemTime::now() + Duration::from_secs(2);
        assert_eq!(changed_bytes(d.path(), since).unwrap(), 0);
        std::fs::create_dir(d.path().join("sub")).unwrap();
        std::fs::write(d.path().join("sub/new"), vec![0u8; 100]).unwrap();
        std::os::unix::fs::symlink("/usr", d.path().join("link")).unwrap();
        let since = SystemTime::now() - Duration::from_secs(5);
        let n = changed_bytes(d.path(), since).unwrap();
        // Two files, a directory and a symlink: their data, and an inode each.
        assert!((5100 + 4 * INODE_COST..5100 + 4 * INODE_COST + 16384).contains(&n), "{n}");
    }

    #[test]
    fn empty_entries_are_charged_their_inode() {
        let d = tempfile::tempdir().unwrap();
        for i in 0..100 {
            std::fs::write(d.path().join(format!("f{i}")), b"").unwrap();
            std::os::unix::fs::symlink("x", d.path().join(format!("l{i}"))).unwrap();
        }
        let since = SystemTime::now() - Duration::from_secs(5);
        assert!(changed_bytes(d.path(), since).unwrap() >= 200 * INODE_COST);
    }
}
