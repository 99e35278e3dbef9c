//! The threads that run requests' synchronous work: plugin calls and the
//! database, one job per request.
//!
//! Tokio's blocking pool runs every job the moment it arrives, on another
//! thread each time (it wakes its idle threads in turn, the coldest first).
//! Under load that means as many runnable threads as requests in flight, a
//! wake-up per request and cold caches for every plugin instance. This pool
//! instead:
//! - runs at most `hot` jobs at once (twice the cores with SQLite, the
//!   cores with PostgreSQL: [`WorkPool::for_computing`]) and queues the
//!   rest: a thread that finishes a job takes the next one from
//!   the queue without sleeping, and no thread is woken for it;
//! - wakes the most recently idle thread first, whose caches are warm;
//! - gives a job's slot to the next one while the job waits in a guest's
//!   WASI call (a plugin that sleeps, polls or calls out over HTTP:
//!   [`crate::plugin::WaitObserver`]) or for a database on the network
//!   ([`crate::storage::wait`]), and takes it back after;
//! - gives a job's slot away for the rest of the job once its plugin call
//!   is throttled for computing past [`crate::plugin::BUSY_BUDGET`] (a
//!   plugin spinning to its deadline mostly pauses from then on);
//! - adds threads beyond `hot` (up to `max`) only when jobs wait while none
//!   has finished for [`STALL`]: the running ones are blocked elsewhere (a
//!   database lock), not busy;
//! - lets threads idle for [`KEEP_ALIVE`] go.
//!
//! What it gains over tokio's blocking pool is measured by `api_load`
//! (`host/benches/README.md`).

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use tokio::runtime::Handle;

use crate::plugin::WaitObserver;

/// How long queued jobs may wait without any job finishing before a thread
/// beyond the hot ones is started.
pub const STALL: Duration = Duration::from_millis(5);

/// How long an idle thread waits for work before it exits.
pub const KEEP_ALIVE: Duration = Duration::from_secs(10);

/// The most threads the pool starts (tokio's blocking pool's default).
const MAX_THREADS: usize = 512;

type Job = Box<dyn FnOnce() + Send>;

/// A pool of threads for requests' synchronous work; see the module docs.
pub struct WorkPool {
    shared: Arc<Shared>,
}

/// A job of the pool panicked; the panic was printed by the panic hook.
#[derive(Debug, thiserror::Error)]
#[error("a request's work panicked")]
pub struct Panicked;

struct Shared {
    state: Mutex<State>,
    /// Wakes the watchdog when jobs start waiting, or at shutdown.
    watchdog: Condvar,
    hot: usize,
    max: usize,
    stall: Duration,
    /// The runtime the pool's threads enter, so that plugin calls which
    /// drive futures (WASI streams, outbound HTTP) use the server's.
    runtime: OnceLock<Handle>,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Job>,
    /// Parked threads, the most recently idle last.
    idle: Vec<Arc<Parked>>,
    /// Threads running a job.
    running: usize,
    /// Threads alive.
    threads: usize,
    /// Jobs finished so far: the watchdog's sign of progress.
    finished: u64,
    /// Whether the watchdog sleeps until jobs wait (and must be woken).
    watchdog_asleep: bool,
    watchdog_started: bool,
    shutdown: bool,
}

/// Hands a worker's slot to a queued job while the worker's guest waits,
/// and for the rest of the job once its plugin call is throttled.
struct SlotHandover {
    shared: Arc<Shared>,
    /// The current job has given its slot away (its plugin call was
    /// throttled). Only its thread reads and writes it.
    released: AtomicBool,
}

impl SlotHandover {
    fn new(shared: Arc<Shared>) -> Self {
        Self {
            shared,
            released: AtomicBool::new(false),
        }
    }

    /// After a job: whether the thread holds a slot. One whose job gave
    /// its slot away takes a free one, if any: the pool never runs more
    /// than `hot` jobs because of it.
    fn job_done(&self) -> bool {
        if !self.released.swap(false, Ordering::Relaxed) {
            return true;
        }
        let mut state = self.shared.lock();
        let free = state.running < self.shared.hot;
        if free {
            state.running += 1;
        }
        free
    }
}

impl WaitObserver for SlotHandover {
    fn wait_started(&self) {
        if !self.released.load(Ordering::Relaxed) {
            self.shared.release_slot();
        }
    }

    fn wait_ended(&self) {
        if !self.released.load(Ordering::Relaxed) {
            // Back over `hot` for a moment, at most by the waits that end
            // at once.
            self.shared.lock().running += 1;
        }
    }

    fn ran_long(&self) {
        if !self.released.swap(true, Ordering::Relaxed) {
            self.shared.release_slot();
        }
    }
}

/// A parked thread and the job handed to it.
#[derive(Default)]
struct Parked {
    job: Mutex<Option<Job>>,
    wake: Condvar,
}

impl WorkPool {
    /// A pool running at most `hot` jobs at once unless they stall.
    pub fn new(hot: usize) -> Self {
        Self::with_stall(hot, STALL)
    }

    /// [`WorkPool::new`], with another time after which waiting jobs
    /// without progress count as stalled.
    pub fn with_stall(hot: usize, stall: Duration) -> Self {
        Self {
            shared: Arc::new(Shared {
                state: Mutex::new(State::default()),
                watchdog: Condvar::new(),
                hot: hot.max(1),
                max: MAX_THREADS.max(hot),
                stall,
                runtime: OnceLock::new(),
            }),
        }
    }

    /// A pool sized for this machine: twice its cores, so that the cores
    /// stay busy while some jobs wait for the disk (SQLite).
    pub fn for_this_machine() -> Self {
        Self::new(2 * cores())
    }

    /// A pool whose jobs only compute: one hot job per core. With a
    /// storage backend on the network (PostgreSQL) a job that waits for the
    /// database gives its slot to the next one, as one whose guest waits
    /// does; more hot threads than cores only take turns on them (two
    /// cores, authenticated `GET /threads/{id}`: 18 003–19 154 req/s at
    /// 65–69 µs of CPU per request, against 17 042–17 641 at 71–74 with
    /// twice the cores; `host/benches/README.md`).
    pub fn for_computing() -> Self {
        Self::new(cores())
    }

    /// Runs `work` on the pool and waits for its result.
    pub async fn run<R, F>(&self, work: F) -> Result<R, Panicked>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        if let Ok(handle) = Handle::try_current() {
            self.shared.runtime.get_or_init(|| handle);
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        // The request's span goes with its work: a plugin's log lines name
        // the request.
        let span = tracing::Span::current();
        self.shared.submit(Box::new(move || {
            let _entered = span.enter();
            let _ = tx.send(work());
        }));
        rx.await.map_err(|_| Panicked)
    }

    /// How many threads the pool has now.
    pub fn threads(&self) -> usize {
        self.shared.lock().threads
    }

    /// How many jobs wait for a thread now.
    pub fn queued(&self) -> usize {
        self.shared.lock().queue.len()
    }
}

/// The machine's cores, as the standard library counts them.
fn cores() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

impl Default for WorkPool {
    fn default() -> Self {
        Self::for_this_machine()
    }
}

impl Drop for WorkPool {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        state.shutdown = true;
        for parked in state.idle.drain(..) {
            parked.wake.notify_one();
        }
        drop(state);
        self.shared.watchdog.notify_one();
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn submit(self: &Arc<Self>, job: Job) {
        let mut state = self.lock();
        if state.running < self.hot {
            self.start(state, job);
            return;
        }
        state.queue.push_back(job);
        if !state.watchdog_started {
            state.watchdog_started = true;
            let shared = Arc::clone(self);
            // Without a watchdog the pool would still work, only never grow.
            let _ = std::thread::Builder::new()
                .name("warden-work-watchdog".into())
                .spawn(move || shared.watch());
        } else if state.watchdog_asleep {
            state.watchdog_asleep = false;
            drop(state);
            self.watchdog.notify_one();
        }
    }

    /// A running job gives its slot to the next queued one, if any.
    fn release_slot(self: &Arc<Self>) {
        let mut state = self.lock();
        state.running -= 1;
        if state.running < self.hot
            && let Some(job) = state.queue.pop_front()
        {
            self.start(state, job);
        }
    }

    /// Gives `job` to the most recently idle thread, or to a new one.
    fn start(self: &Arc<Self>, mut state: MutexGuard<'_, State>, job: Job) {
        state.running += 1;
        if let Some(parked) = state.idle.pop() {
            drop(state);
            *parked.job.lock().unwrap_or_else(|e| e.into_inner()) = Some(job);
            parked.wake.notify_one();
            return;
        }
        state.threads += 1;
        drop(state);
        let shared = Arc::clone(self);
        let spawned = std::thread::Builder::new()
            .name("warden-work".into())
            .spawn(move || shared.work(job));
        if let Err(error) = spawned {
            // The job is lost with the closure: its caller sees `Panicked`.
            tracing::error!(%error, "could not start a worker thread");
            let mut state = self.lock();
            state.running -= 1;
            state.threads -= 1;
        }
    }

    /// A worker thread: runs its job, then queued ones, then parks.
    fn work(self: Arc<Self>, first: Job) {
        let _runtime = self.runtime.get().map(Handle::enter);
        let handover = Arc::new(SlotHandover::new(Arc::clone(&self)));
        crate::plugin::observe_waits_on_this_thread(handover.clone());
        let parked = Arc::new(Parked::default());
        let mut job = first;
        loop {
            // A panic is printed by the hook; the waiting request gets a 500.
            let _ = catch_unwind(AssertUnwindSafe(job));
            let has_slot = handover.job_done();
            let mut state = self.lock();
            state.finished += 1;
            if has_slot {
                if let Some(next) = state.queue.pop_front() {
                    job = next;
                    continue;
                }
                state.running -= 1;
            }
            if state.shutdown {
                state.threads -= 1;
                return;
            }
            state.idle.push(Arc::clone(&parked));
            drop(state);
            match self.park(&parked) {
                Some(next) => job = next,
                None => return,
            }
        }
    }

    /// Waits for a job handed to `parked`; `None` when the thread should
    /// exit (idle for [`KEEP_ALIVE`], or shutdown).
    fn park(&self, parked: &Arc<Parked>) -> Option<Job> {
        let mut slot = parked.job.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(job) = slot.take() {
                return Some(job);
            }
            let (guard, timeout) = parked
                .wake
                .wait_timeout(slot, KEEP_ALIVE)
                .unwrap_or_else(|e| e.into_inner());
            slot = guard;
            if let Some(job) = slot.take() {
                return Some(job);
            }
            let mut state = self.lock();
            let listed = state.idle.iter().position(|p| Arc::ptr_eq(p, parked));
            if state.shutdown || (timeout.timed_out() && listed.is_some()) {
                // Still listed as idle (or shutting down): nobody can hand
                // it a job now.
                if let Some(i) = listed {
                    state.idle.remove(i);
                }
                state.threads -= 1;
                return None;
            }
            // Otherwise a job is being handed over: wait for it.
        }
    }

    /// Starts a thread beyond the hot ones whenever jobs wait and none has
    /// finished for [`STALL`].
    fn watch(self: Arc<Self>) {
        let mut state = self.lock();
        loop {
            if state.shutdown {
                return;
            }
            if state.queue.is_empty() {
                state.watchdog_asleep = true;
                state = self.watchdog.wait(state).unwrap_or_else(|e| e.into_inner());
                continue;
            }
            let seen = state.finished;
            state = self
                .watchdog
                .wait_timeout(state, self.stall)
                .unwrap_or_else(|e| e.into_inner())
                .0;
            if state.finished == seen
                && state.running < self.max
                && let Some(job) = state.queue.pop_front()
            {
                tracing::debug!(
                    running = state.running,
                    "request work stalled: starting another thread"
                );
                self.start(state, job);
                state = self.lock();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::mpsc;
    use std::time::Instant;

    use super::*;

    #[tokio::test]
    async fn runs_jobs_and_returns_their_results() {
        let pool = WorkPool::new(2);
        let results =
            futures_util::future::join_all((0..50).map(|i| pool.run(move || i * 2))).await;
        let results: Vec<i32> = results.into_iter().map(Result::unwrap).collect();
        assert_eq!(results, (0..50).map(|i| i * 2).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn a_panicking_job_is_an_error_and_the_pool_keeps_serving() {
        let pool = WorkPool::new(1);
        assert!(pool.run(|| panic!("a faulty job")).await.is_err());
        assert_eq!(pool.run(|| 7).await.unwrap(), 7);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn runs_at_most_hot_jobs_at_once_when_they_progress() {
        // A stall allowance no busy job on a loaded machine reaches.
        let pool = WorkPool::with_stall(2, Duration::from_secs(2));
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let jobs = (0..40).map(|_| {
            let (running, most) = (running.clone(), most.clone());
            pool.run(move || {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                // Busy, not blocked: well under the stall allowance each.
                let until = Instant::now() + Duration::from_micros(300);
                while Instant::now() < until {}
                running.fetch_sub(1, Ordering::SeqCst);
            })
        });
        futures_util::future::join_all(jobs).await;
        assert_eq!(most.load(Ordering::SeqCst), 2);
        assert_eq!(pool.threads(), 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn blocked_jobs_do_not_hold_up_the_queue() {
        // The only hot thread blocks until a job queued behind it has run:
        // only a thread the watchdog starts can run that job. Its release
        // is the event; the wait's ceiling is for a watchdog that never
        // comes, and then the blocked job reports it.
        let pool = WorkPool::new(1);
        let (tx, rx) = mpsc::channel::<()>();
        let blocked = pool.run(move || rx.recv_timeout(Duration::from_secs(600)).is_ok());
        let unblocker = pool.run(move || tx.send(()).is_ok());
        let (blocked, unblocker) = tokio::join!(blocked, unblocker);
        assert!(unblocker.unwrap(), "the queued job ran");
        assert!(blocked.unwrap(), "the blocked job was released by it");
        assert_eq!(pool.threads(), 2, "a thread beyond the hot one ran it");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_job_waiting_in_a_guest_call_hands_its_slot_to_the_next() {
        // One slot, and no stall rescue within the test's time: the job
        // queued behind the waiting one runs only if the wait gives up
        // the slot. It is what ends the wait (else the wait times out).
        let pool = WorkPool::with_stall(1, Duration::from_secs(600));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let waiting = pool.run(move || {
            let mut limit = crate::plugin::WaitLimit::default();
            limit.set_deadline(Instant::now() + Duration::from_secs(60));
            limit.bound(rx).is_ok()
        });
        // Submitted when polled, after the waiting job took the slot.
        let releasing = pool.run(move || tx.send(()).is_ok());
        let (waited, released) = tokio::join!(waiting, releasing);
        assert!(released.unwrap(), "the queued job ran");
        assert!(waited.unwrap(), "and ended the wait before its deadline");
        all_slots_free(&pool).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_job_waiting_for_the_database_hands_its_slot_to_the_next() {
        // As above, for storage work that waits on the network
        // (PostgreSQL): the queued job runs only if the wait gives up the
        // slot, and it is what the wait waits for.
        let pool = WorkPool::with_stall(1, Duration::from_secs(600));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let waiting = pool.run(move || {
            let answer = async { tokio::time::timeout(Duration::from_secs(60), rx).await };
            matches!(crate::storage::wait(answer), Ok(Ok(())))
        });
        let answering = pool.run(move || tx.send(()).is_ok());
        let (waited, answered) = tokio::join!(waiting, answering);
        assert!(answered.unwrap(), "the queued job ran");
        assert!(waited.unwrap(), "and ended the wait before its ceiling");
        all_slots_free(&pool).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_job_whose_plugin_call_is_throttled_gives_its_slot_away() {
        // One slot and no stall rescue, as above: the queued job runs only
        // if the throttled one gives its slot away; it is what ends it.
        let pool = WorkPool::with_stall(1, Duration::from_secs(600));
        let (tx, rx) = mpsc::channel::<()>();
        let long = pool.run(move || {
            crate::plugin::report_ran_long();
            // A wait after it must not count the slot twice.
            crate::plugin::WaitLimit::default()
                .bound(async { rx.recv_timeout(Duration::from_secs(60)).is_ok() })
                .unwrap()
        });
        let next = pool.run(move || tx.send(()).is_ok());
        let (long, next) = tokio::join!(long, next);
        assert!(next.unwrap(), "the queued job ran");
        assert!(long.unwrap(), "while the throttled one still ran");
        // The slot is back: one job at a time again.
        all_slots_free(&pool).await;
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let jobs = (0..10).map(|_| {
            let (running, most) = (running.clone(), most.clone());
            pool.run(move || {
                most.fetch_max(running.fetch_add(1, Ordering::SeqCst) + 1, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(1));
                running.fetch_sub(1, Ordering::SeqCst);
            })
        });
        futures_util::future::join_all(jobs).await;
        assert_eq!(most.load(Ordering::SeqCst), 1);
        all_slots_free(&pool).await;
    }

    /// Waits until no job holds a slot: a job's result reaches its caller
    /// just before its thread frees the slot. A slot never freed fails.
    async fn all_slots_free(pool: &WorkPool) {
        for _ in 0..60_000 {
            if pool.shared.lock().running == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        panic!("{} slots still held", pool.shared.lock().running);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_most_recently_idle_thread_takes_the_next_job() {
        let pool = WorkPool::new(2);
        let name = || std::thread::current().id();
        // Two threads, the second finishing once the first has parked.
        let (tx, rx) = mpsc::channel::<()>();
        let first = pool.run(move || {
            rx.recv().unwrap();
            name()
        });
        let shared = Arc::clone(&pool.shared);
        let second = pool.run(move || {
            tx.send(()).unwrap();
            while shared.lock().idle.is_empty() {
                std::thread::sleep(Duration::from_millis(1));
            }
            name()
        });
        let (first, second) = tokio::join!(first, second);
        let (first, second) = (first.unwrap(), second.unwrap());
        assert_ne!(first, second);
        // A result arrives just before its thread parks: let both park.
        while pool.shared.lock().idle.len() < 2 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        for _ in 0..5 {
            assert_eq!(pool.run(name).await.unwrap(), second);
            while pool.shared.lock().running > 0 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    }
}
