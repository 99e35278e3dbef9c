//! Every way a guest can wait, bounded.
//!
//! Epoch interruption stops a guest that computes past its deadline, but
//! not one that waits in the host: `std::thread::sleep`, a `poll` on a
//! clock, a blocking read or write all block inside a WASI call, where no
//! epoch check runs. So Warden links its own versions of the WASI calls
//! that block (`wasi:io/poll`'s `poll` and `block`, and the blocking reads,
//! writes, flushes and splices of `wasi:io/streams`) over wasmtime-wasi's:
//! each races its wait against the call's [`WaitLimit`] (its deadline, and
//! for a run its cancellation). A wait that loses ends the call with
//! [`Trap::Interrupt`], the trap epoch interruption raises, so the fault is
//! reported as the same timeout (or cancellation).
//!
//! A wait that blocks also tells the thread's [`WaitObserver`], if it has
//! one: the request work pool hands the thread's slot to the next request
//! meanwhile, so a waiting guest costs neither CPU nor a slot. The observer
//! also hears of a plugin call throttled for computing long
//! ([`super::busy`]).

use std::cell::RefCell;
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Poll;
use std::time::{Duration, Instant};

use wasmtime::Trap;
use wasmtime::component::{HasData, Linker, Resource, ResourceTable};
use wasmtime_wasi::p2::bindings::io as async_io;
use wasmtime_wasi::p2::bindings::sync::io::{poll, streams};
use wasmtime_wasi::p2::{DynInputStream, DynOutputStream, DynPollable, StreamError, StreamResult};
use wasmtime_wasi::runtime::in_tokio;

/// How often a waiting run checks whether it was cancelled.
const CANCEL_CHECK: Duration = Duration::from_millis(5);

/// What bounds a guest's waits: the current call's deadline and, for runs,
/// a cancellation flag.
#[derive(Debug, Clone, Default)]
pub(crate) struct WaitLimit {
    deadline: Option<Instant>,
    cancel: Option<Arc<AtomicBool>>,
}

impl WaitLimit {
    /// Waits end at `deadline`.
    pub(crate) fn set_deadline(&mut self, deadline: Instant) {
        self.deadline = Some(deadline);
    }

    /// The deadline set, if any.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Waits end too once `cancel` is set.
    pub(crate) fn set_cancel(&mut self, cancel: Arc<AtomicBool>) {
        self.cancel = Some(cancel);
    }

    fn cancelled(&self) -> bool {
        self.cancel
            .as_ref()
            .is_some_and(|c| c.load(Ordering::Relaxed))
    }

    /// Resolves when a wait must end: at the deadline, or once cancelled.
    async fn reached(&self) {
        let deadline = async {
            match self.deadline {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        let cancelled = async {
            match &self.cancel {
                Some(_) => {
                    while !self.cancelled() {
                        tokio::time::sleep(CANCEL_CHECK).await;
                    }
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = deadline => {}
            () = cancelled => {}
        }
    }

    /// Runs `wait` to its end, unless the limit is reached first: then
    /// [`Trap::Interrupt`]. The thread's [`WaitObserver`] hears of a wait
    /// that does not end at once.
    pub(crate) fn bound<R>(&self, wait: impl Future<Output = R>) -> Result<R, Trap> {
        if self.cancelled() || self.deadline.is_some_and(|at| Instant::now() >= at) {
            return Err(Trap::Interrupt);
        }
        in_tokio(async {
            let mut wait = pin!(wait);
            let ready = std::future::poll_fn(|cx| Poll::Ready(wait.as_mut().poll(cx))).await;
            if let Poll::Ready(result) = ready {
                return Ok(result);
            }
            let _waiting = Waiting::start();
            tokio::select! {
                result = wait => Ok(result),
                () = self.reached() => Err(Trap::Interrupt),
            }
        })
    }
}

/// Told when a thread starts and stops waiting in a guest's host call (or
/// for the database: [`crate::storage::wait`]), and when its plugin call is
/// throttled for computing long.
pub trait WaitObserver {
    /// The thread blocks: it does no work until [`WaitObserver::wait_ended`].
    fn wait_started(&self);
    /// The thread runs again.
    fn wait_ended(&self);
    /// The thread's plugin call has computed past
    /// [`super::BUSY_BUDGET`]: it is throttled until it ends (at its
    /// deadline at the latest), mostly pausing. Heard at most once per
    /// call, from inside the guest (never during a wait).
    fn ran_long(&self) {}
}

thread_local! {
    static OBSERVER: RefCell<Option<Arc<dyn WaitObserver>>> = const { RefCell::new(None) };
}

/// Tells the thread's observer that its guest runs long.
pub(crate) fn report_ran_long() {
    let observer = OBSERVER.with(|o| o.borrow().clone());
    if let Some(observer) = observer {
        observer.ran_long();
    }
}

/// Makes `observer` hear of the guests' waits on the calling thread.
pub fn observe_waits_on_this_thread(observer: Arc<dyn WaitObserver>) {
    OBSERVER.with(|o| *o.borrow_mut() = Some(observer));
}

/// A wait in progress, reported to the thread's observer until dropped.
pub(crate) struct Waiting {
    observer: Option<Arc<dyn WaitObserver>>,
}

/// Tells the thread's observer that the thread blocks (in the host, not in
/// a guest: waiting for the database), until the returned guard drops.
pub(crate) fn observed_wait() -> Waiting {
    Waiting::start()
}

impl Waiting {
    fn start() -> Self {
        let observer = OBSERVER.with(|o| o.borrow().clone());
        if let Some(observer) = &observer {
            observer.wait_started();
        }
        Self { observer }
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        if let Some(observer) = &self.observer {
            observer.wait_ended();
        }
    }
}

/// A store whose guest's waits are bounded.
pub(crate) trait BoundedWaits: Send + 'static {
    /// The instance's resource table, and what bounds its waits.
    fn bounded_io(&mut self) -> BoundedIo<'_>;
}

/// The WASI I/O of one instance, with the limit on its waits.
pub(crate) struct BoundedIo<'a> {
    pub(crate) table: &'a mut ResourceTable,
    pub(crate) limit: &'a WaitLimit,
}

struct HasBoundedIo;

impl HasData for HasBoundedIo {
    type Data<'a> = BoundedIo<'a>;
}

/// Links the bounded `wasi:io/poll` and `wasi:io/streams` over those that
/// `wasmtime_wasi::p2::add_to_linker_sync` linked.
pub(crate) fn add_to_linker<T: BoundedWaits>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    poll::add_to_linker::<T, HasBoundedIo>(linker, T::bounded_io)?;
    streams::add_to_linker::<T, HasBoundedIo>(linker, T::bounded_io)?;
    linker.allow_shadowing(false);
    Ok(())
}

fn interrupted(trap: Trap) -> StreamError {
    StreamError::Trap(trap.into())
}

impl poll::Host for BoundedIo<'_> {
    fn poll(&mut self, pollables: Vec<Resource<DynPollable>>) -> wasmtime::Result<Vec<u32>> {
        let limit = self.limit;
        limit.bound(async_io::poll::Host::poll(self.table, pollables))?
    }
}

impl poll::HostPollable for BoundedIo<'_> {
    fn ready(&mut self, pollable: Resource<DynPollable>) -> wasmtime::Result<bool> {
        poll::HostPollable::ready(self.table, pollable)
    }

    fn block(&mut self, pollable: Resource<DynPollable>) -> wasmtime::Result<()> {
        let limit = self.limit;
        limit.bound(async_io::poll::HostPollable::block(self.table, pollable))?
    }

    fn drop(&mut self, pollable: Resource<DynPollable>) -> wasmtime::Result<()> {
        poll::HostPollable::drop(self.table, pollable)
    }
}

impl streams::Host for BoundedIo<'_> {
    fn convert_stream_error(&mut self, err: StreamError) -> wasmtime::Result<streams::StreamError> {
        streams::Host::convert_stream_error(self.table, err)
    }
}

impl streams::HostInputStream for BoundedIo<'_> {
    fn drop(&mut self, stream: Resource<DynInputStream>) -> wasmtime::Result<()> {
        let limit = self.limit;
        limit.bound(async_io::streams::HostInputStream::drop(self.table, stream))?
    }

    fn read(&mut self, stream: Resource<DynInputStream>, len: u64) -> StreamResult<Vec<u8>> {
        streams::HostInputStream::read(self.table, stream, len)
    }

    fn blocking_read(
        &mut self,
        stream: Resource<DynInputStream>,
        len: u64,
    ) -> StreamResult<Vec<u8>> {
        let limit = self.limit;
        let read = async_io::streams::HostInputStream::blocking_read(self.table, stream, len);
        limit.bound(read).map_err(interrupted)?
    }

    fn skip(&mut self, stream: Resource<DynInputStream>, len: u64) -> StreamResult<u64> {
        streams::HostInputStream::skip(self.table, stream, len)
    }

    fn blocking_skip(&mut self, stream: Resource<DynInputStream>, len: u64) -> StreamResult<u64> {
        let limit = self.limit;
        let skip = async_io::streams::HostInputStream::blocking_skip(self.table, stream, len);
        limit.bound(skip).map_err(interrupted)?
    }

    fn subscribe(
        &mut self,
        stream: Resource<DynInputStream>,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        streams::HostInputStream::subscribe(self.table, stream)
    }
}

impl streams::HostOutputStream for BoundedIo<'_> {
    fn drop(&mut self, stream: Resource<DynOutputStream>) -> wasmtime::Result<()> {
        let limit = self.limit;
        limit.bound(async_io::streams::HostOutputStream::drop(
            self.table, stream,
        ))?
    }

    fn check_write(&mut self, stream: Resource<DynOutputStream>) -> StreamResult<u64> {
        streams::HostOutputStream::check_write(self.table, stream)
    }

    fn write(&mut self, stream: Resource<DynOutputStream>, bytes: Vec<u8>) -> StreamResult<()> {
        streams::HostOutputStream::write(self.table, stream, bytes)
    }

    fn blocking_write_and_flush(
        &mut self,
        stream: Resource<DynOutputStream>,
        bytes: Vec<u8>,
    ) -> StreamResult<()> {
        let limit = self.limit;
        let write = async_io::streams::HostOutputStream::blocking_write_and_flush(
            self.table, stream, bytes,
        );
        limit.bound(write).map_err(interrupted)?
    }

    fn blocking_write_zeroes_and_flush(
        &mut self,
        stream: Resource<DynOutputStream>,
        len: u64,
    ) -> StreamResult<()> {
        let limit = self.limit;
        let write = async_io::streams::HostOutputStream::blocking_write_zeroes_and_flush(
            self.table, stream, len,
        );
        limit.bound(write).map_err(interrupted)?
    }

    fn subscribe(
        &mut self,
        stream: Resource<DynOutputStream>,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        streams::HostOutputStream::subscribe(self.table, stream)
    }

    fn write_zeroes(&mut self, stream: Resource<DynOutputStream>, len: u64) -> StreamResult<()> {
        streams::HostOutputStream::write_zeroes(self.table, stream, len)
    }

    fn flush(&mut self, stream: Resource<DynOutputStream>) -> StreamResult<()> {
        streams::HostOutputStream::flush(self.table, stream)
    }

    fn blocking_flush(&mut self, stream: Resource<DynOutputStream>) -> StreamResult<()> {
        let limit = self.limit;
        let flush = async_io::streams::HostOutputStream::blocking_flush(self.table, stream);
        limit.bound(flush).map_err(interrupted)?
    }

    fn splice(
        &mut self,
        dst: Resource<DynOutputStream>,
        src: Resource<DynInputStream>,
        len: u64,
    ) -> StreamResult<u64> {
        streams::HostOutputStream::splice(self.table, dst, src, len)
    }

    fn blocking_splice(
        &mut self,
        dst: Resource<DynOutputStream>,
        src: Resource<DynInputStream>,
        len: u64,
    ) -> StreamResult<u64> {
        let limit = self.limit;
        let splice =
            async_io::streams::HostOutputStream::blocking_splice(self.table, dst, src, len);
        limit.bound(splice).map_err(interrupted)?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wait_past_the_deadline_is_an_interrupt() {
        let mut limit = WaitLimit::default();
        limit.set_deadline(Instant::now() + Duration::from_millis(20));
        let result = limit.bound(std::future::pending::<()>());
        assert_eq!(result, Err(Trap::Interrupt));
    }

    #[test]
    fn a_wait_after_cancellation_is_an_interrupt() {
        let cancel = Arc::new(AtomicBool::new(false));
        let mut limit = WaitLimit::default();
        limit.set_cancel(cancel.clone());
        // Cancelled once the wait has begun, and never ready.
        let wait = async move {
            cancel.store(true, Ordering::Relaxed);
            std::future::pending::<()>().await
        };
        assert_eq!(limit.bound(wait), Err(Trap::Interrupt));
    }

    #[test]
    fn a_wait_within_the_limit_ends_as_it_would_and_is_observed() {
        struct Count(std::sync::Mutex<(u32, u32)>);
        impl WaitObserver for Count {
            fn wait_started(&self) {
                self.0.lock().unwrap().0 += 1;
            }
            fn wait_ended(&self) {
                self.0.lock().unwrap().1 += 1;
            }
        }
        let count = Arc::new(Count(Default::default()));
        observe_waits_on_this_thread(count.clone());
        let mut limit = WaitLimit::default();
        limit.set_deadline(Instant::now() + Duration::from_secs(600));
        // Ready at once: not a wait the observer hears of.
        assert_eq!(limit.bound(async { 7 }), Ok(7));
        assert_eq!(*count.0.lock().unwrap(), (0, 0));
        let slept = limit.bound(async {
            tokio::time::sleep(Duration::from_millis(5)).await;
            8
        });
        assert_eq!(slept, Ok(8));
        assert_eq!(*count.0.lock().unwrap(), (1, 1));
    }
}
