//! The sandbox budget flags, spelled the same on every command that runs hooks.

use crate::sandbox::Budget;
use crate::{HumanDuration, Size};

#[derive(clap::Args, Debug, Clone)]
pub struct BudgetArgs {
    /// Memory budget of a hook: the linear memories and tables of it and its spawned children, together.
    #[arg(long, value_name = "SIZE", default_value = "1GiB")]
    pub memory: Size,
    /// Wall-time budget of a hook.
    #[arg(long, value_name = "DURATION", default_value = "30min")]
    pub timeout: HumanDuration,
    /// Budget of bytes a hook may write under the rootfs and writable mounts.
    #[arg(long, value_name = "SIZE", default_value = "4GiB")]
    pub disk: Size,
    /// Log budget of a hook; output beyond it is dropped with a notice.
    #[arg(long = "log-limit", value_name = "SIZE", default_value = "64MiB")]
    pub log_limit: Size,
    /// Maximum number of nested module spawns.
    #[arg(long = "max-spawns", default_value_t = Budget::default().spawn_count)]
    pub max_spawns: u32,
    /// Maximum spawn nesting depth.
    #[arg(long = "max-spawn-depth", default_value_t = Budget::default().spawn_depth)]
    pub max_spawn_depth: u32,
    /// Modules of one hook running at once (`ws2i.spawn_all`); default: the cores.
    #[arg(long, value_name = "N", default_value_t = crate::sandbox::default_jobs(), value_parser = clap::value_parser!(u32).range(1..))]
    pub jobs: u32,
}

impl BudgetArgs {
    pub fn budget(&self) -> Budget {
        Budget {
            memory: self.memory,
            timeout: self.timeout.0,
            disk: self.disk,
            log: self.log_limit,
            spawn_count: self.max_spawns,
            spawn_depth: self.max_spawn_depth,
            jobs: self.jobs,
            cancel: Default::default(),
        }
    }
}
