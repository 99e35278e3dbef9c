//! Which server process answers: what `/info` shows so that a deployer
//! rolling a plugin out over several replicas (behind one load balancer,
//! on one database) can tell which one reported which version.

use std::net::SocketAddr;
use std::sync::OnceLock;

use serde_json::{Value, json};

/// This server process.
#[derive(Debug)]
pub struct Replica {
    /// The machine's host name (in Kubernetes, the pod's name).
    hostname: String,
    /// The process id.
    pid: u32,
    /// When this process set up its state (RFC 3339).
    started_at: String,
    /// The address it listens on, once bound.
    address: OnceLock<SocketAddr>,
}

impl Replica {
    /// This process, not yet listening.
    pub fn this_process() -> Self {
        Self {
            hostname: hostname(),
            pid: std::process::id(),
            // As the plugins' `loaded_at` beside it.
            started_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            address: OnceLock::new(),
        }
    }

    /// Records the address it listens on (the first one recorded stays).
    pub fn listening_on(&self, address: SocketAddr) {
        let _ = self.address.set(address);
    }

    /// `{"hostname", "pid", "started_at", "address"}` (`address` null
    /// until it listens).
    pub fn describe(&self) -> Value {
        json!({
            "hostname": self.hostname,
            "pid": self.pid,
            "started_at": self.started_at,
            "address": self.address.get().map(ToString::to_string),
        })
    }
}

/// The host name, empty if the system does not say.
fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the pointer and length describe `buf`, which outlives the
    // call; `gethostname` writes at most `buf.len()` bytes into it.
    let done = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0;
    if !done {
        return String::new();
    }
    // Truncated names may lack the terminating NUL: the whole buffer then.
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_this_process_and_its_address_once_listening() {
        let replica = Replica::this_process();
        let before = replica.describe();
        assert_eq!(before["pid"], std::process::id());
        assert!(!before["hostname"].as_str().unwrap().is_empty());
        assert_eq!(before["address"], Value::Null);
        replica.listening_on("127.0.0.1:8123".parse().unwrap());
        assert_eq!(replica.describe()["address"], "127.0.0.1:8123");
    }
}
