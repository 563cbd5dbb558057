//! veth pairs between a container's own network namespace and the host. CRIU dumps the inner
//! end of a veth as a veth device (criu/net.c: it cannot tell where the peer is and assumes the
//! outer world) and, on restore, creates the pair again only when told the outer end's name,
//! `veth[INSIDE]:OUTSIDE[@BRIDGE]` (the `veths` of the RPC request); without it the restore
//! fails with "Unknown peer net namespace". runc passes its caller's `--veth-pair`s, crun none.
//!
//! ckpt finds the pairs itself at checkpoint: an interface of the container (its own sysfs,
//! `/proc/PID/root/sys/class/net`) whose link is a host interface linking back to it, with the
//! bridge the host end is enslaved to. They matter only when the network namespace's contents
//! are kept: by default (as runc) the namespace is restored empty and the runtime sets up its
//! interfaces again.

use serde::{Deserialize, Serialize};
use std::path::Path;

/// One veth pair: the end inside the container, the end on the host and the host end's bridge.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Veth {
    /// The end inside the container.
    pub inside: String,
    /// The end on the host.
    pub outside: String,
    /// The host end's bridge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bridge: Option<String>,
}

impl Veth {
    /// CRIU's value for the outer end: `OUTSIDE[@BRIDGE]`.
    pub fn outside_value(&self) -> String {
        match &self.bridge {
            Some(b) => format!("{}@{b}", self.outside),
            None => self.outside.clone(),
        }
    }
}

/// A number in a sysfs file. The container's own `/sys` may be a directory it owns (no sysfs
/// mounted there): only a small regular file is read, never a FIFO or a link to a device.
fn number(p: &Path) -> Option<u32> {
    crate::paths::read_at_most(p, 4096)
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// (name, ifindex, iflink) of every interface under a sysfs `class/net` directory.
fn links(dir: &Path) -> Option<Vec<(String, u32, u32)>> {
    let rd = std::fs::read_dir(dir).ok()?;
    Some(
        rd.flatten()
            .filter_map(|e| {
                let p = e.path();
                Some((
                    e.file_name().to_string_lossy().into_owned(),
                    number(&p.join("ifindex"))?,
                    number(&p.join("iflink"))?,
                ))
            })
            .collect(),
    )
}

/// The pairs of the container whose init is `pid`: None when its `/sys/class/net` cannot be
/// read (no sysfs mounted in the container).
pub fn read(pid: i32) -> Option<Vec<Veth>> {
    let inside = links(Path::new(&format!("/proc/{pid}/root/sys/class/net")))?;
    let host_dir = Path::new("/sys/class/net");
    let host = links(host_dir).unwrap_or_default();
    Some(pairs(&inside, &host, |h| {
        std::fs::read_link(host_dir.join(h).join("master"))
            .ok()
            .and_then(|m| m.file_name().map(|n| n.to_string_lossy().into_owned()))
    }))
}

/// Pure: an inner interface and a host interface that link to each other's index form a pair.
pub fn pairs(
    inside: &[(String, u32, u32)],
    host: &[(String, u32, u32)],
    bridge_of: impl Fn(&str) -> Option<String>,
) -> Vec<Veth> {
    let mut out: Vec<Veth> = inside
        .iter()
        .filter(|(_, idx, link)| idx != link)
        .filter_map(|(name, idx, link)| {
            let (h, _, _) = host
                .iter()
                .find(|(_, hidx, hlink)| hidx == link && hlink == idx && hidx != hlink)?;
            Some(Veth {
                inside: name.clone(),
                outside: h.clone(),
                bridge: bridge_of(h),
            })
        })
        .collect();
    out.sort_by(|a, b| a.inside.cmp(&b.inside));
    out
}

/// Pure, at checkpoint (own network namespace): the pairs to record, and notes.
pub fn on_checkpoint(found: Option<&[Veth]>, keep_network: bool) -> (Vec<Veth>, Vec<String>) {
    let Some(found) = found else {
        let notes = if keep_network {
            vec!["the container's veth pairs could not be read (no sysfs in it): a restore that keeps the network needs them given (veth pairs of the options), or CRIU fails with \"Unknown peer net namespace\"".into()]
        } else {
            vec![]
        };
        return (vec![], notes);
    };
    let mut notes = vec![];
    for v in found {
        let bridge = v
            .bridge
            .as_ref()
            .map(|b| format!(", on bridge {b}"))
            .unwrap_or_default();
        notes.push(if keep_network {
            format!(
                "veth pair {} (container) / {} (host{bridge}): dumped with the network namespace and recorded, so the restore creates it again under the same names",
                v.inside, v.outside
            )
        } else {
            format!(
                "veth pair {} (container) / {} (host{bridge}): not dumped, the network namespace is restored empty; the runtime connects the container again (as runc)",
                v.inside, v.outside
            )
        });
    }
    let kept = if keep_network { found.to_vec() } else { vec![] };
    (kept, notes)
}

/// Pure, at restore with the network kept: the pairs CRIU is told about, each with its
/// reason, and notes. The caller's own pairs replace the recorded ones.
pub fn on_restore(recorded: &[Veth], caller_veths: bool) -> (Vec<(Veth, String)>, Vec<String>) {
    if caller_veths {
        let notes = if recorded.is_empty() {
            vec![]
        } else {
            vec![format!(
                "the caller's veth pairs replace the {} recorded at checkpoint",
                recorded.len()
            )]
        };
        return (vec![], notes);
    }
    let pairs = recorded
        .iter()
        .map(|v| {
            let why = format!(
                "veth pair recorded at checkpoint: CRIU creates {} in the container and {} on the host{}",
                v.inside,
                v.outside,
                v.bridge
                    .as_ref()
                    .map(|b| format!(", enslaved to bridge {b}"))
                    .unwrap_or_default()
            );
            (v.clone(), why)
        })
        .collect();
    (pairs, vec![])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_link_both_ways() {
        let inside = [
            ("lo".to_string(), 1, 1),
            ("eth0".to_string(), 2, 7),
            ("mv0".to_string(), 3, 4),
        ];
        let host = [
            ("lo".to_string(), 1, 1),
            ("eth9".to_string(), 4, 4),
            ("vethab".to_string(), 7, 2),
        ];
        let p = pairs(&inside, &host, |h| {
            (h == "vethab").then(|| "br0".to_string())
        });
        assert_eq!(
            p,
            vec![Veth {
                inside: "eth0".into(),
                outside: "vethab".into(),
                bridge: Some("br0".into())
            }]
        );
        assert_eq!(p[0].outside_value(), "vethab@br0");
    }
}
