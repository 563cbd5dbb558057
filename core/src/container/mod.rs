//! The container layer: checkpoint and restore of an OCI container from its bundle.
//!
//! Split as plan, then act: `read` turns the host (config.json, the runtime's state, the
//! init's mountinfo and cgroups, namespace files) into plain facts; `plan` decides, purely,
//! the complete CRIU request and the host actions around it, each with its reason; `act`
//! carries a plan out around `ops::checkpoint` / `ops::restore` and undoes what it prepared;
//! `Plan::to_json` is the explain output.

pub mod act;
pub mod apply;
pub mod cgimage;
pub mod cgroup_warm;
pub mod cgroups;
pub mod cpuset_parents;
pub mod created;
pub mod emptyfs;
mod external;
pub mod facts;
pub mod freezer;
pub mod frozen_target;
pub mod init_died;
pub mod inroot;
pub mod made_cgroups;
pub mod mountinfo;
pub mod nested;
pub mod netlock;
pub mod occupied;
pub mod plan;
mod put_back;
pub mod read;
pub mod rootfs;
pub mod runtime;
pub mod statefile;
pub mod stopped;
pub mod thaw_emptied;
mod userns_images;
pub mod veth;

pub use act::{
    HookFn, RestoreRequest, checkpoint, checkpoint_for, plan_checkpoint, plan_checkpoint_for,
    plan_restore, restore,
};
pub use plan::Plan;
