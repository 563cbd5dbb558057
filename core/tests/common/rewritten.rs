//! Reading a number a workload rewrites in place.
//!
//! The test workloads count with `echo $i > FILE`: the shell empties the file before the number
//! lands, so a read can fall in between and see nothing (on a loaded machine it does: a CI run
//! read 0 from a restored container that was counting). Shared by `common` and `faultkit`.

use std::path::Path;
use std::time::{Duration, Instant};

/// The number in `file`; a read that finds it empty or torn looks again for up to 200 ms. None
/// when there is still none (the file missing, or the writer frozen between its two steps).
pub fn read_number(file: &Path) -> Option<u64> {
    let end = Instant::now() + Duration::from_millis(200);
    loop {
        let v = std::fs::read_to_string(file)
            .ok()
            .and_then(|s| s.trim().parse().ok());
        if v.is_some() || Instant::now() >= end {
            return v;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
