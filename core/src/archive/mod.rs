//! Checkpoint archives in the format Podman, CRI-O and checkpointctl share (see
//! docs/archive.md): export a checkpoint's image directory, the container's OCI spec and the
//! engine's config fields into one archive; import an archive from any of them into a
//! verified directory with a spec rewritten for the new container; inspect an archive.
//!
//! Export is a manifest ([`manifest::plan`]: what goes in, from where, checked) carried out by a
//! streaming writer ([`writer::write`]). Import and inspection stream the archive once through
//! a verifying reader ([`reader`]). [`restore::restore`] takes an import on to a running
//! container through the container layer.

pub mod container_export;
// CRIU's image records as prost messages (one of them a type of the private proto module):
// plumbing for inspect, export and import, and for ckpt's tests; no API of this crate.
#[doc(hidden)]
pub mod criu_image;
pub mod format;
pub mod idswap;
pub mod import;
pub mod inspect;
pub mod manifest;
#[doc(hidden)] // the import's writer thread
pub mod pipeline;
pub mod reader;
pub mod restore;
pub mod rootfs;
pub mod safepath;
pub mod spec;
pub mod writer;

pub use format::{Compression, EngineConfig};
pub use import::{ImportOptions, Imported, import};
pub use inspect::{Inspection, Process, inspect};
pub use manifest::{ExportRequest, Manifest};
pub use reader::Limits;
pub use restore::{ImportRestore, NewRootfs, RestoredImport};
pub use rootfs::RootfsChanges;
pub use writer::Written;

use std::path::Path;

use crate::error::Result;

/// Plans and writes the archive `out` in one pass. Returns the manifest (for a report of what
/// went in and why) and what was written.
pub fn export(req: &ExportRequest, out: &Path) -> Result<(Manifest, Written)> {
    let m = manifest::plan(req)?;
    let w = writer::write(&m, out)?;
    Ok((m, w))
}
