//! A plugin call that computes long is throttled.
//!
//! A request's plugin calls take microseconds. One that computes past
//! [`BUSY_BUDGET`] of its thread's CPU time (its waits in the host, and
//! the time a loaded machine keeps it off a core, not counted) is heavy or
//! hostile: from then on it computes at most one epoch tick at a time and
//! pauses [`BUSY_PAUSE`] after each, so until its deadline it takes at
//! most a fifth of a core however it loops. Its thread's
//! [`super::WaitObserver`] hears of it once
//! ([`super::WaitObserver::ran_long`]): the request work pool gives the
//! call's slot to the next request. The deadline holds: a pause ends at it.
//!
//! Pausing, rather than lowering the thread's priority: a thread at nice 19
//! on a busy machine waits hundreds of milliseconds for a core, so a
//! spinning call would be answered long after its deadline, and a process
//! without `CAP_SYS_NICE` cannot raise the thread's priority again.

use std::time::{Duration, Instant};

use super::engine::EPOCH_TICK;
use super::waits;

/// How much CPU time one plugin call may take before it is throttled.
pub const BUSY_BUDGET: Duration = Duration::from_millis(5);

/// How long a throttled call pauses after each epoch tick of computing.
pub const BUSY_PAUSE: Duration = Duration::from_millis(4);

/// How long the current call has computed: the CPU time its thread has
/// taken since the call started (a call runs on one thread).
#[derive(Debug)]
pub(crate) struct BusyClock {
    /// [`thread_cpu`] when the call started.
    cpu_before: Duration,
    /// Whether the call ran past [`BUSY_BUDGET`] (and it was reported).
    throttled: bool,
}

/// The CPU time the calling thread has taken (`CLOCK_THREAD_CPUTIME_ID`).
fn thread_cpu() -> Duration {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid `timespec` for the call to write; the clock
    // exists on every Linux (on failure `now` stays zero: nothing counts).
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    Duration::new(
        u64::try_from(now.tv_sec).unwrap_or(0),
        u32::try_from(now.tv_nsec).unwrap_or(0),
    )
}

impl BusyClock {
    /// The clock of a call starting now.
    pub(crate) fn start() -> Self {
        Self {
            cpu_before: thread_cpu(),
            throttled: false,
        }
    }

    /// At an epoch check of a call ending at `deadline`: how long the guest
    /// may compute until its next check, or `None` once the deadline has
    /// passed. A call past its budget pauses here (the calling thread
    /// sleeps) before it computes again.
    pub(crate) fn check(&mut self, deadline: Instant) -> Option<Duration> {
        let now = Instant::now();
        let left = deadline
            .checked_duration_since(now)
            .filter(|l| !l.is_zero())?;
        if !self.throttled {
            let busy = thread_cpu().saturating_sub(self.cpu_before);
            if let Some(budget) = BUSY_BUDGET.checked_sub(busy).filter(|b| !b.is_zero()) {
                return Some(left.min(budget));
            }
            self.throttled = true;
            waits::report_ran_long();
        }
        std::thread::sleep(left.min(BUSY_PAUSE));
        let left = deadline
            .checked_duration_since(Instant::now())
            .filter(|l| !l.is_zero())?;
        Some(left.min(EPOCH_TICK))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_within_its_budget_computes_until_the_budget_or_the_deadline() {
        let mut clock = BusyClock::start();
        let far = Instant::now() + Duration::from_secs(600);
        let until = clock.check(far).expect("before the deadline");
        assert!(until <= BUSY_BUDGET && !until.is_zero(), "{until:?}");
        assert!(!clock.throttled);
        let near = Instant::now() + Duration::from_micros(1);
        assert!(
            clock
                .check(near)
                .is_none_or(|d| d <= Duration::from_micros(1))
        );
    }

    #[derive(Default)]
    struct RanLong(std::sync::atomic::AtomicU32);

    impl super::waits::WaitObserver for RanLong {
        fn wait_started(&self) {}
        fn wait_ended(&self) {}
        fn ran_long(&self) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    #[test]
    fn a_call_past_its_budget_is_throttled_and_still_ends_at_its_deadline() {
        let reports = std::sync::Arc::new(RanLong::default());
        super::waits::observe_waits_on_this_thread(reports.clone());
        let mut clock = BusyClock::start();
        // Computing past the budget.
        while thread_cpu().saturating_sub(clock.cpu_before) <= BUSY_BUDGET {}
        let deadline = Instant::now() + Duration::from_secs(600);
        let before = Instant::now();
        let until = clock.check(deadline).expect("before the deadline");
        assert!(clock.throttled);
        assert!(before.elapsed() >= BUSY_PAUSE, "the call paused");
        assert!(until <= EPOCH_TICK, "one tick at a time: {until:?}");
        let _ = clock.check(Instant::now() + Duration::from_secs(600));
        let reported = reports.0.load(std::sync::atomic::Ordering::Relaxed);
        assert_eq!(reported, 1, "reported once per call");
        // A pause never outlasts the deadline: past it, the call ends.
        let deadline = Instant::now() + Duration::from_micros(200);
        assert_eq!(clock.check(deadline), None);
        assert!(Instant::now() >= deadline);
    }
}
