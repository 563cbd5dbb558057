//! What CRIU's iptables network lock leaves in a network namespace, for the tests that kill
//! criu while it holds the lock.

use std::process::Command;

/// CRIU's lock rules in the network namespace of `pid` (IPv4 and IPv6), if any.
pub fn criu_rules(pid: i32) -> Option<String> {
    let mut found = String::new();
    for tool in ["iptables", "ip6tables"] {
        let out = Command::new("nsenter")
            .args(["-t", &pid.to_string(), "-n", tool, "-w", "-S"])
            .output()
            .ok()?;
        let s = String::from_utf8_lossy(&out.stdout);
        if s.contains("CRIU") {
            found.push_str(&s);
        }
    }
    (!found.is_empty()).then_some(found)
}
