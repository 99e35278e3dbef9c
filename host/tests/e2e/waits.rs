//! A guest that waits in the host (sleeps, polls a clock, reads its input)
//! is held to its deadline, and a run that waits to its cancellation, as
//! one that computes is. Each waits far longer than its deadline: before
//! waits were bounded, these calls ran to their end and succeeded.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{Value, json};
use warden::plugin::{
    Fault, GraphComponent, GraphEvent, GraphLimits, Invocation, Limits, RunFailure,
};
use warden::types::Request;

use crate::support::{component, login, plugin_with, runtime};

fn authenticate_within(path: &str, timeout: Duration) -> Result<String, Fault> {
    let hostile = plugin_with(
        "fixture_hostile",
        Limits {
            timeout,
            ..Limits::default()
        },
    );
    let mut session = hostile.session().expect("instantiates");
    let result = session
        .authenticate(&Request::new("GET", path))
        .map(|r| r.expect("no http error").identity);
    // The same plugin serves the next request.
    assert_eq!(login(&hostile, &Request::new("GET", "/")).identity, "guest");
    result
}

#[test]
fn a_plugin_that_sleeps_past_its_deadline_times_out() {
    let fault = authenticate_within("/sleep/20000", Duration::from_millis(100)).unwrap_err();
    assert!(matches!(fault, Fault::Timeout(100)), "{fault:?}");
}

#[test]
fn a_plugin_that_polls_a_clock_past_its_deadline_times_out() {
    let fault = authenticate_within("/poll/20000", Duration::from_millis(100)).unwrap_err();
    assert!(matches!(fault, Fault::Timeout(100)), "{fault:?}");
}

#[test]
fn waits_within_the_deadline_end_as_they_would() {
    let timeout = Duration::from_secs(30);
    assert_eq!(authenticate_within("/sleep/5", timeout).unwrap(), "guest");
    assert_eq!(authenticate_within("/poll/5", timeout).unwrap(), "guest");
    // Standard input is empty: reading it ends at once.
    assert_eq!(authenticate_within("/stdin", timeout).unwrap(), "guest");
}

#[test]
fn a_plugin_sleeping_in_an_authorization_handler_times_out() {
    let hostile = plugin_with(
        "fixture_hostile",
        Limits {
            timeout: Duration::from_millis(100),
            ..Limits::default()
        },
    );
    let mut session = hostile.session().unwrap();
    let user = session
        .authenticate(&Request::new("GET", "/"))
        .unwrap()
        .unwrap();
    let fault = session
        .authorize(
            &user,
            warden::types::ThreadAction::Read,
            &json!({"do": "/sleep/20000"}),
        )
        .unwrap_err();
    assert!(matches!(fault, Fault::Timeout(100)), "{fault:?}");
}

fn hostile_graph(timeout: Duration) -> Arc<GraphComponent> {
    let limits = GraphLimits {
        timeout,
        memory_bytes: 64 << 20,
    };
    GraphComponent::load(runtime(), "hostile", &component("hostile_graph"), limits)
        .expect("the hostile graph loads")
}

fn invocation(mode: &str, n: u64) -> Invocation {
    Invocation::input(
        json!({"mode": mode, "n": n}),
        json!({}),
        json!({}),
        Value::Null,
    )
}

#[test]
fn a_graph_that_waits_past_its_deadline_times_out() {
    let graph = hostile_graph(Duration::from_millis(300));
    for mode in ["sleep", "poll"] {
        let never = Arc::new(AtomicBool::new(false));
        let failure = graph
            .run(&invocation(mode, 20), never, Box::new(|_| {}))
            .unwrap_err();
        assert!(
            matches!(failure, RunFailure::Fault(Fault::Timeout(300))),
            "{mode}: {failure:?}"
        );
    }
}

#[test]
fn cancelling_a_graph_that_waits_stops_it() {
    let graph = hostile_graph(Duration::from_secs(600));
    for mode in ["sleep", "poll"] {
        let cancel = Arc::new(AtomicBool::new(false));
        let (started, waiting) = mpsc::channel();
        let sink = Box::new(move |event: GraphEvent| {
            if matches!(event, GraphEvent::Custom(_)) {
                let _ = started.send(());
            }
        });
        let canceller = {
            let cancel = cancel.clone();
            std::thread::spawn(move || {
                waiting.recv().expect("the graph starts waiting");
                cancel.store(true, Ordering::Relaxed);
            })
        };
        let failure = graph.run(&invocation(mode, 20), cancel, sink).unwrap_err();
        canceller.join().unwrap();
        assert!(
            matches!(failure, RunFailure::Cancelled),
            "{mode}: {failure:?}"
        );
    }
}

/// Counts the reports of guests running long on the thread it observes.
#[derive(Default)]
struct RanLong(std::sync::atomic::AtomicU32);

impl warden::plugin::WaitObserver for RanLong {
    fn wait_started(&self) {}
    fn wait_ended(&self) {}
    fn ran_long(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

#[test]
fn a_plugin_computing_past_its_busy_budget_is_reported_once_and_waits_do_not_count() {
    let reports = Arc::new(RanLong::default());
    warden::plugin::observe_waits_on_this_thread(reports.clone());
    let count = || reports.0.load(Ordering::Relaxed);
    // Sleeping twice the budget is waiting, not computing.
    let timeout = Duration::from_secs(30);
    let sleep = format!("/sleep/{}", 2 * warden::plugin::BUSY_BUDGET.as_millis());
    assert_eq!(authenticate_within(&sleep, timeout).unwrap(), "guest");
    assert_eq!(count(), 0, "a waiting plugin was reported as running long");
    // Spinning to the deadline: reported, and still ended on time. (Once
    // per call: `busy`'s unit tests. Here the quick calls around it may be
    // reported too on a machine loaded enough that the kernel's work for
    // a fresh instance — page faults, contended locks — takes the budget.)
    let fault = authenticate_within("/spin/forever", Duration::from_millis(300)).unwrap_err();
    assert!(matches!(fault, Fault::Timeout(300)), "{fault:?}");
    assert!(count() >= 1, "a spinning plugin was not reported");
}
