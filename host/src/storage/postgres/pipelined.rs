//! Point reads (one record by id) share a few connections instead of
//! taking one each: the driver pipelines the statements of concurrent
//! requests on a connection (one write for all that are queued, the
//! answers read back in order), so PostgreSQL reads many statements per
//! wake-up and a busy server makes far fewer round trips and thread
//! switches. Only short statements go here: a long one would hold up the
//! others queued behind it.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use deadpool_postgres::{Client, Pool};

use super::rows::{bounded, trim_statements};
use crate::storage::{Result, StorageError};

/// A few connections, lent round-robin to any number of requests at once.
pub(super) struct Pipelined {
    pool: Pool,
    slots: Vec<Mutex<Option<Arc<Client>>>>,
    next: AtomicUsize,
}

impl Pipelined {
    /// `connections` slots, each filled from `pool` on first use and again
    /// when its connection breaks.
    pub(super) fn new(pool: Pool, connections: usize) -> Self {
        Self {
            pool,
            slots: (0..connections.max(1)).map(|_| Mutex::new(None)).collect(),
            next: AtomicUsize::new(0),
        }
    }

    /// Runs `read` (a point read: idempotent) on the next shared
    /// connection. A read that finds its connection gone (the server
    /// restarted or dropped it) evicts it from its slot and runs once more
    /// on a fresh one: the driver may not have noticed the close yet, and
    /// would otherwise lend the dead connection to the next reads too.
    pub(super) async fn read<T, F, Fut>(&self, read: F) -> Result<T>
    where
        F: Fn(Arc<Client>) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let slot = &self.slots[self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len()];
        let client = self.client(slot).await?;
        match read(client.clone()).await {
            Err(StorageError::Unavailable(_)) => {
                {
                    let mut held = slot.lock().unwrap_or_else(|e| e.into_inner());
                    if held.as_ref().is_some_and(|c| Arc::ptr_eq(c, &client)) {
                        *held = None;
                    }
                }
                read(self.client(slot).await?).await
            }
            answered => answered,
        }
    }

    /// The connection in `slot`, shared with whoever else holds it; a new
    /// one from the pool when it is empty or closed.
    async fn client(&self, slot: &Mutex<Option<Arc<Client>>>) -> Result<Arc<Client>> {
        let held = slot.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if let Some(client) = held.filter(|c| !c.is_closed()) {
            trim_statements(&client);
            return Ok(client);
        }
        let client = Arc::new(bounded(self.pool.get().await?));
        *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(client.clone());
        Ok(client)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use uuid::Uuid;

    use crate::storage::conformance::TestDatabase;
    use crate::storage::{Filter, Storage, Thread};

    async fn owned_threads(storage: &dyn Storage, n: usize) -> Vec<(Uuid, String)> {
        let mut threads = Vec::new();
        for i in 0..n {
            let owner = format!("u{}", i % 4);
            let metadata = json!({"owner": owner}).as_object().cloned().unwrap();
            let thread = Thread::new(Uuid::now_v7(), metadata);
            assert!(storage.insert_thread(&thread).await.unwrap());
            threads.push((thread.thread_id, owner));
        }
        threads
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_point_reads_on_shared_connections_each_answer_their_own() {
        let database = TestDatabase::create().await;
        let storage = std::sync::Arc::new(database.storage().await);
        let threads = owned_threads(&*storage, 32).await;
        // 512 reads at once over the two shared connections, each as one
        // of four owners: a read answers its own thread, and only within
        // its owner's scope, however the driver interleaves them.
        let reads = (0..512).map(|i| {
            let storage = storage.clone();
            let (id, owner) = threads[i % threads.len()].clone();
            let asking = format!("u{}", (i / threads.len()) % 4);
            async move {
                let scope = Filter::eq("owner", asking.as_str());
                let found = storage.thread(id, Some(&scope)).await.unwrap();
                (id, owner == asking, found.map(|t| t.thread_id))
            }
        });
        let answers = futures_util::future::join_all(reads).await;
        let mut visible = 0;
        for (id, own, found) in answers {
            if own {
                assert_eq!(found, Some(id));
                visible += 1;
            } else {
                assert_eq!(found, None, "another owner's thread {id} was read");
            }
        }
        assert_eq!(visible, 128);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_shared_connection_the_server_drops_is_replaced() {
        let database = TestDatabase::create().await;
        let storage = database.storage().await;
        let (id, _) = owned_threads(&storage, 1).await[0].clone();
        for _ in 0..super::super::pipelined_connections() {
            assert!(storage.thread(id, None).await.unwrap().is_some());
        }
        // PostgreSQL drops every connection to the database (a restart, an
        // administrator), the shared ones included.
        let (admin, connection) =
            tokio_postgres::connect(&TestDatabase::admin_uri(), tokio_postgres::NoTls)
                .await
                .unwrap();
        tokio::spawn(connection);
        let name = database.uri().rsplit_once('/').unwrap().1.to_owned();
        let dropped = admin
            .execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1",
                &[&name],
            )
            .await
            .unwrap();
        assert!(dropped >= super::super::pipelined_connections() as u64);
        // A read that finds its shared connection dropped evicts it and
        // runs again on a fresh one, so reads fail only when that one was
        // dropped too (an idle one of the pool whose end the driver has
        // not seen yet): never more than the connections dropped.
        let mut failed = 0;
        let mut answered = 0;
        for _ in 0..50 {
            match storage.thread(id, None).await {
                Ok(found) => {
                    assert!(found.is_some());
                    answered += 1;
                    if answered == 4 {
                        break;
                    }
                }
                Err(_) => failed += 1,
            }
        }
        assert_eq!(answered, 4, "reads never recovered ({failed} failed)");
        assert!(
            failed as u64 <= dropped,
            "{failed} reads failed for {dropped} connections dropped"
        );
    }
}
