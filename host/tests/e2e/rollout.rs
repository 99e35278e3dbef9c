//! Rolling a new auth plugin version out over several `warden serve`
//! replicas on one PostgreSQL database, all configured with the same plugin
//! file: a version renamed over it reaches every replica with no failed
//! request, a broken one is refused by every replica, and a Kubernetes
//! volume's symlink swap (no event at the file: only polling sees it)
//! reaches every replica too. `/info` tells the replicas apart.
//!
//! As in `hot_swap.rs`, the two policies accept the same tokens: under
//! `examples/reference` user2 searching finds only its own threads and
//! reading user1's gets 404; under `examples/tutorial` (authentication
//! only) it finds and reads every thread.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::support::{Client, ServerProcess, TestDatabase, component, eventually};

/// How the shared plugin path holds its file.
#[derive(Clone, Copy)]
enum Layout {
    /// `auth.wasm` is the file itself.
    File,
    /// As a Kubernetes ConfigMap or Secret volume lays it out: `auth.wasm`
    /// → `..data/auth.wasm`, `..data` → a directory per version, swapped
    /// by renaming a new `..data` symlink over the old one.
    Symlinked,
}

/// Two replicas on one database, both serving `dir/auth.wasm`; user1 owns
/// one thread.
struct Fleet {
    dir: tempfile::TempDir,
    live: PathBuf,
    replicas: Vec<ServerProcess>,
    thread: String,
    _database: TestDatabase,
}

impl Fleet {
    async fn start(first: &str, layout: Layout) -> Self {
        let database = TestDatabase::create().await;
        let dir = tempfile::tempdir().unwrap();
        let live = dir.path().join("auth.wasm");
        match layout {
            Layout::File => {
                std::fs::copy(component(first), &live).unwrap();
            }
            Layout::Symlinked => {
                let version = dir.path().join("v0");
                std::fs::create_dir(&version).unwrap();
                std::fs::copy(component(first), version.join("auth.wasm")).unwrap();
                symlink("v0", &dir.path().join("..data"));
                symlink("..data/auth.wasm", &live);
            }
        }
        let config = dir.path().join("langgraph.json");
        std::fs::write(
            &config,
            // A deadline no loaded machine reaches: a plugin call that
            // timed out would count as a failed request.
            r#"{"graphs": {}, "auth": {"path": "./auth.wasm", "timeout_ms": 30000}}"#,
        )
        .unwrap();
        // Started side by side, as a deployment's replicas are; each with
        // a data directory of its own (its compiled plugins).
        let uri = database.uri();
        let replicas = std::thread::scope(|scope| {
            let started: Vec<_> = ["a", "b"]
                .map(|name| {
                    let (config, uri) = (&config, &uri);
                    let data = dir.path().join(format!("data-{name}"));
                    scope.spawn(move || ServerProcess::start_on_database(config, &data, uri))
                })
                .into_iter()
                .map(|replica| replica.join().unwrap().expect("a replica starts"))
                .collect::<Vec<_>>();
            started
        });
        let created = replicas[0]
            .user("user1-token")
            .create_thread(json!({}))
            .await;
        Self {
            dir,
            live,
            replicas,
            thread: created.thread_id,
            _database: database,
        }
    }

    /// Replaces the shared file as deploy tools do: write aside, rename over.
    fn deploy(&self, bytes: &[u8]) {
        let aside = self.dir.path().join(".auth.wasm.new");
        std::fs::write(&aside, bytes).unwrap();
        std::fs::rename(&aside, &self.live).unwrap();
    }

    /// Replaces it as the kubelet updates a volume: the new version in a
    /// directory of its own, then `..data` pointed at it by a rename.
    fn deploy_symlinked(&self, name: &str, bytes: &[u8]) {
        let version = self.dir.path().join(name);
        std::fs::create_dir(&version).unwrap();
        std::fs::write(version.join("auth.wasm"), bytes).unwrap();
        let aside = self.dir.path().join("..data_tmp");
        symlink(name, &aside);
        std::fs::rename(&aside, self.dir.path().join("..data")).unwrap();
    }

    /// Why each replica last refused a reload (`null`: none).
    async fn refusals(&self) -> Vec<Value> {
        let mut refusals = Vec::new();
        for replica in &self.replicas {
            refusals.push(auth_info(replica).await["last_reload_error"]["error"].clone());
        }
        refusals
    }

    /// Waits until every replica's `/info` shows the auth plugin `digest`:
    /// their entries then. A refusal for another reason than the one each
    /// showed before (`before`, from [`Fleet::refusals`]; a broken file may
    /// be refused again by the next event about it) fails at once, with why.
    async fn all_serve(&self, digest: &str, before: &[Value]) -> Vec<Value> {
        let mut entries = Vec::new();
        for (i, replica) in self.replicas.iter().enumerate() {
            let before = before.get(i).unwrap_or(&Value::Null);
            let what = format!("replica {} serves {digest}", replica.port);
            let entry = eventually(&what, async || {
                let entry = auth_info(replica).await;
                let error = &entry["last_reload_error"];
                assert!(
                    error.is_null() || error["error"] == *before,
                    "refused: {error}\n{}",
                    replica.log()
                );
                (entry["digest"] == digest).then_some(entry)
            })
            .await;
            entries.push(entry);
        }
        entries
    }

    /// What user2 gets reading user1's thread on `replica`.
    async fn user2_reads(&self, replica: &ServerProcess) -> u16 {
        let path = format!("/threads/{}", self.thread);
        replica.user("user2-token").get(&path).await.status.as_u16()
    }
}

fn symlink(target: &str, link: &Path) {
    std::os::unix::fs::symlink(target, link).unwrap();
}

fn bytes(crate_name: &str) -> Vec<u8> {
    std::fs::read(component(crate_name)).unwrap()
}

/// What `/info` shows as a component's digest.
fn digest(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

async fn info(replica: &ServerProcess) -> Value {
    let info = replica.client().get("/info").await;
    assert_eq!(info.status, 200, "{}", info.text);
    info.json
}

/// The auth plugin's `/info` entry.
async fn auth_info(replica: &ServerProcess) -> Value {
    let info = info(replica).await;
    info["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["kind"] == "auth")
        .cloned()
        .unwrap_or_else(|| panic!("no auth plugin: {info}"))
}

/// One round of the client loop on one replica: user1 reads its thread,
/// user2 searches. Both must succeed under either policy; the search says
/// which one answered: `Ok(true)` when it found user1's thread (the
/// tutorial's), `Ok(false)` when not (the reference's).
async fn round(user1: &Client, user2: &Client, thread: &str) -> Result<bool, String> {
    let read = user1.get(&format!("/threads/{thread}")).try_send().await?;
    if read.status != 200 || read.json["thread_id"] != thread {
        return Err(format!("read: {} {}", read.status, read.text));
    }
    let search = user2.post("/threads/search", json!({})).try_send().await?;
    let found = search.json.as_array().map(|threads| {
        threads
            .iter()
            .any(|t| t["thread_id"] == thread && t["metadata"]["owner"] == "user1")
    });
    match found {
        Some(found) if search.status == 200 => Ok(found),
        _ => Err(format!("search: {} {}", search.status, search.text)),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_renamed_over_the_shared_file_reaches_every_replica_without_a_failed_request() {
    let fleet = Fleet::start("reference_auth", Layout::File).await;
    let (old, new) = (bytes("reference_auth"), bytes("tutorial_auth"));
    let (old, new) = ((digest(&old), old), (digest(&new), new));
    fleet.all_serve(&old.0, &[]).await;

    // `/info` tells the replicas apart: process, address, start.
    let mut pids = Vec::new();
    for replica in &fleet.replicas {
        let info = info(replica).await;
        let me = &info["replica"];
        assert_eq!(me["pid"], replica.pid(), "{info}");
        assert_eq!(me["address"], format!("127.0.0.1:{}", replica.port));
        assert!(me["hostname"].as_str().is_some_and(|h| !h.is_empty()));
        assert!(me["started_at"].is_string(), "{info}");
        assert_eq!(info["storage"], "postgres");
        pids.push(replica.pid());
        assert_eq!(fleet.user2_reads(replica).await, 404, "reference policy");
    }
    assert_ne!(pids[0], pids[1]);

    // Clients going round both replicas, counting per replica the answers
    // of each policy, and keeping every failure.
    let stop = Arc::new(AtomicBool::new(false));
    let counts: Arc<[[AtomicU64; 2]; 2]> = Arc::default();
    let clients: Vec<_> = (0..2)
        .map(|_| {
            let users: Vec<_> = fleet
                .replicas
                .iter()
                .map(|r| (r.user("user1-token"), r.user("user2-token")))
                .collect();
            let (stop, counts, thread) = (stop.clone(), counts.clone(), fleet.thread.clone());
            tokio::spawn(async move {
                let mut failures = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    for (i, (user1, user2)) in users.iter().enumerate() {
                        match round(user1, user2, &thread).await {
                            Ok(open) => {
                                counts[i][usize::from(open)].fetch_add(1, Ordering::Relaxed);
                            }
                            Err(failure) => failures.push(format!("replica {i}: {failure}")),
                        }
                    }
                }
                failures
            })
        })
        .collect();
    let answered =
        |replica: usize, open: bool| counts[replica][usize::from(open)].load(Ordering::Relaxed);
    eventually(
        "the loop is answered by the old version on both",
        async || (answered(0, false) > 0 && answered(1, false) > 0).then_some(()),
    )
    .await;

    fleet.deploy(&new.1);
    let entries = fleet.all_serve(&new.0, &[]).await;
    // Each replica's new requests then use the new version, as the loop
    // sees on both.
    eventually(
        "the loop is answered by the new version on both",
        async || (answered(0, true) > 0 && answered(1, true) > 0).then_some(()),
    )
    .await;
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        let failures = client.await.unwrap();
        assert!(failures.is_empty(), "failed requests: {failures:?}");
    }

    for (replica, entry) in fleet.replicas.iter().zip(&entries) {
        assert_eq!(entry["swap_count"], 1, "{entry}");
        assert_eq!(entry["previous_digest"], old.0.as_str(), "{entry}");
        assert_eq!(fleet.user2_reads(replica).await, 200, "{}", replica.log());
    }
}

#[tokio::test]
async fn a_broken_version_is_refused_by_every_replica_which_keeps_serving() {
    let fleet = Fleet::start("reference_auth", Layout::File).await;
    let old = digest(&bytes("reference_auth"));
    let new = bytes("tutorial_auth");

    fleet.deploy(&new[..new.len() / 2]);
    for replica in &fleet.replicas {
        let entry = eventually("the truncated version is refused", async || {
            let entry = auth_info(replica).await;
            let error = entry["last_reload_error"]["error"]
                .as_str()
                .unwrap_or_default();
            error.contains("invalid component").then_some(entry)
        })
        .await;
        assert_eq!(entry["digest"], old.as_str(), "{entry}");
        assert_eq!(entry["swap_count"], 0, "{entry}");
        assert_eq!(fleet.user2_reads(replica).await, 404, "the old policy");
        let search = replica
            .user("user1-token")
            .post("/threads/search", json!({}))
            .await;
        assert_eq!(search.status, 200, "{}", search.text);
        assert!(replica.log().contains("plugin reload refused"));
    }

    // The next good version still rolls out.
    let refused = fleet.refusals().await;
    fleet.deploy(&new);
    fleet.all_serve(&digest(&new), &refused).await;
    for replica in &fleet.replicas {
        assert_eq!(fleet.user2_reads(replica).await, 200, "{}", replica.log());
    }
}

#[tokio::test]
async fn a_symlink_swap_without_a_file_event_reaches_every_replica_by_polling() {
    let fleet = Fleet::start("reference_auth", Layout::Symlinked).await;
    fleet
        .all_serve(&digest(&bytes("reference_auth")), &[])
        .await;
    for replica in &fleet.replicas {
        assert_eq!(fleet.user2_reads(replica).await, 404, "reference policy");
    }

    let new = bytes("tutorial_auth");
    fleet.deploy_symlinked("v1", &new);
    let entries = fleet.all_serve(&digest(&new), &[]).await;
    for (replica, entry) in fleet.replicas.iter().zip(&entries) {
        assert_eq!(entry["swap_count"], 1, "{entry}");
        assert!(!replica.log().contains("refused"), "{}", replica.log());
        assert_eq!(fleet.user2_reads(replica).await, 200, "{}", replica.log());
    }
}
