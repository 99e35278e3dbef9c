//! Per-request cost of authenticate + authorize on `examples/reference/auth`.
//!
//! Modes, interleaved round by round so that machine drift hits them alike:
//! - `fresh`: a new pooled instance per request (what the server does);
//! - `fresh-no-deadline`: the same on an engine without epoch interruption,
//!   to price the deadline machinery;
//! - `fresh-madvise`: the same with nothing kept resident in pool slots
//!   (every page released with `madvise`, faulted in again next time);
//! - `instantiate`: only creating the instance;
//! - `reused`: one instance serving every request (not what Warden does);
//! - `native`: the same policy compiled natively, no wasm;
//! - `fresh-v0.1` / `inst-v0.1`: `fresh` / `instantiate` for the same
//!   policy built against `warden:auth@0.1.0` (`tests/fixtures/contract-v0-1`,
//!   raw `wit-bindgen`): what the 0.2.0 contract saves;
//! - what a fresh instance's cost depends on, each `fresh-*`/`inst-*` pair
//!   a variant of `fresh`/`instantiate`: pool slots keeping 256 KiB or
//!   8 MiB resident instead of 2 MiB (`-keep256k`, `-keep8m`), and the
//!   plugin built with the workspace's `guest` profile (`opt-level = "s"`,
//!   LTO, one codegen unit, stripped: `-small`) and the same profile under
//!   its other name `guest-measure`, built with linker flags to try
//!   (`-small-flags`, e.g. a 64 KiB shadow stack or a 2 MiB initial
//!   memory). A variant whose component is not built is left out (build
//!   them: `cargo build --profile guest --target wasm32-wasip2 -p
//!   reference-auth`; `CARGO_TARGET_WASM32_WASIP2_RUSTFLAGS="-C
//!   link-arg=-zstack-size=65536" cargo build --profile guest-measure
//!   --target wasm32-wasip2 -p reference-auth`).
//!
//! `cargo bench -p warden --bench plugin_call` (needs the guests built:
//! `cargo build --release --target wasm32-wasip2 -p reference-auth`).
//! `WARDEN_BENCH_ROUNDS` / `WARDEN_BENCH_ITERS` change the sample size;
//! `WARDEN_BENCH_MODES=fresh,native` runs only the modes named (for profiling);
//! `WARDEN_BENCH_COMPONENTS=old=<path.wasm>,...` adds `fresh-old` /
//! `inst-old` for other builds of the policy (e.g. from an older commit, or
//! the policy in Python: `python=examples/python/.warden-build/auth.wasm`),
//! and `WARDEN_BENCH_KEEP_MIB=16,64` each of those with that much kept
//! resident in its pool slot (`fresh-python-keep64m`).

use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use warden::plugin::{AuthPlugin, Limits, Runtime, RuntimeOptions};
use warden::types::{Action, AuthContext, Request, Resource, ThreadAction};

/// The allocator `warden serve` runs with.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn component() -> PathBuf {
    component_in("release")
}

/// The reference plugin built with cargo profile `profile`.
fn component_in(profile: &str) -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    target.join(format!("wasm32-wasip2/{profile}/reference_auth.wasm"))
}

fn request() -> Request {
    Request::new("GET", "/threads/0193a0d2-8a3e-7c4e-9d1b-3f2a1b0c9d8e")
        .with_header("host", "127.0.0.1:8123")
        .with_header("user-agent", "langgraph-sdk-py/0.4.14")
        .with_header("accept", "application/json")
        .with_header("authorization", "Bearer user1-token")
}

fn value() -> serde_json::Value {
    json!({"thread_id": "0193a0d2-8a3e-7c4e-9d1b-3f2a1b0c9d8e"})
}

fn wasm_request(
    session: &mut warden::plugin::Session,
    request: &Request,
    value: &serde_json::Value,
) {
    let user = session.authenticate(request).unwrap().unwrap();
    black_box(
        session
            .authorize(&user, ThreadAction::Read, value)
            .unwrap()
            .unwrap(),
    );
}

fn load(options: RuntimeOptions) -> (Runtime, Arc<AuthPlugin>) {
    load_from(options, &component())
}

fn load_from(options: RuntimeOptions, path: &std::path::Path) -> (Runtime, Arc<AuthPlugin>) {
    let runtime = Runtime::new(options).unwrap();
    let plugin = AuthPlugin::load(&runtime, "auth", path, Limits::default()).unwrap_or_else(|e| {
        panic!("{e} (build it: cargo build --release --target wasm32-wasip2 -p reference-auth)")
    });
    (runtime, plugin)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let rounds = env_or("WARDEN_BENCH_ROUNDS", 10);
    let iters = env_or("WARDEN_BENCH_ITERS", 2000);
    let (_rt, plugin) = load(RuntimeOptions::default());
    let (_rt2, plugin_nodeadline) = load(RuntimeOptions {
        deadlines: false,
        ..RuntimeOptions::default()
    });
    let (_rt3, plugin_madvise) = load(RuntimeOptions {
        keep_resident_bytes: 0,
        ..RuntimeOptions::default()
    });
    // What a fresh instance's cost depends on: pool settings, guest build.
    let mut variants: Vec<(String, (Runtime, Arc<AuthPlugin>))> = Vec::new();
    for (name, keep) in [("keep256k", 256 << 10), ("keep8m", 8 << 20)] {
        let options = RuntimeOptions {
            keep_resident_bytes: keep,
            ..RuntimeOptions::default()
        };
        variants.push((name.into(), load(options)));
    }
    // Other builds to compare, e.g. the plugin from an older commit:
    // `WARDEN_BENCH_COMPONENTS=old=/tmp/old/reference_auth.wasm`.
    let others = std::env::var("WARDEN_BENCH_COMPONENTS").unwrap_or_default();
    for pair in others.split(',').filter(|p| !p.is_empty()) {
        let (name, path) = pair
            .split_once('=')
            .expect("WARDEN_BENCH_COMPONENTS: `name=path,...`");
        let path = PathBuf::from(path);
        variants.push((name.into(), load_from(RuntimeOptions::default(), &path)));
        // `WARDEN_BENCH_KEEP_MIB=16,64`: the same component in pool slots
        // keeping that much resident (`fresh-<name>-keep<n>m`).
        let keeps = std::env::var("WARDEN_BENCH_KEEP_MIB").unwrap_or_default();
        for mib in keeps.split(',').filter_map(|k| k.parse::<usize>().ok()) {
            let options = RuntimeOptions {
                keep_resident_bytes: mib << 20,
                ..RuntimeOptions::default()
            };
            variants.push((format!("{name}-keep{mib}m"), load_from(options, &path)));
        }
    }
    for (name, profile) in [("small", "guest"), ("small-flags", "guest-measure")] {
        let path = component_in(profile);
        if path.exists() {
            variants.push((name.into(), load_from(RuntimeOptions::default(), &path)));
        }
    }
    // The 0.1.0 contract (every header and the user sent on each call, the
    // whole value returned): a raw wit-bindgen plugin with the same policy.
    let old = component_in("release").with_file_name("fixture_contract_v0_1.wasm");
    let (_rt4, plugin_v01) = load_from(RuntimeOptions::default(), &old);
    let native = reference_auth::auth();
    let request = request();
    let value = value();
    let mut reused = plugin.session().unwrap();

    type Mode<'a> = (&'static str, Box<dyn FnMut() + 'a>);
    let mut modes: Vec<Mode> = vec![
        (
            "fresh",
            Box::new(|| wasm_request(&mut plugin.session().unwrap(), &request, &value)),
        ),
        (
            "fresh-no-deadline",
            Box::new(|| wasm_request(&mut plugin_nodeadline.session().unwrap(), &request, &value)),
        ),
        (
            "fresh-madvise",
            Box::new(|| wasm_request(&mut plugin_madvise.session().unwrap(), &request, &value)),
        ),
        (
            "instantiate",
            Box::new(|| drop(black_box(plugin.session().unwrap()))),
        ),
        (
            "fresh-v0.1",
            Box::new(|| wasm_request(&mut plugin_v01.session().unwrap(), &request, &value)),
        ),
        (
            "inst-v0.1",
            Box::new(|| drop(black_box(plugin_v01.session().unwrap()))),
        ),
        (
            "reused",
            Box::new(|| wasm_request(&mut reused, &request, &value)),
        ),
        (
            "native",
            Box::new(|| {
                let user = native.authenticate(&request).unwrap();
                let ctx = AuthContext::new(user, Resource::Threads, Action::Read);
                let mut v = value.clone();
                black_box(native.authorize(&ctx, &mut v).unwrap());
            }),
        ),
    ];
    for (name, (_, plugin)) in &variants {
        let fresh: &'static str = format!("fresh-{name}").leak();
        let inst: &'static str = format!("inst-{name}").leak();
        let (request, value) = (&request, &value);
        modes.push((
            fresh,
            Box::new(move || wasm_request(&mut plugin.session().unwrap(), request, value)),
        ));
        modes.push((
            inst,
            Box::new(move || drop(black_box(plugin.session().unwrap()))),
        ));
    }
    if let Ok(only) = std::env::var("WARDEN_BENCH_MODES") {
        let only: Vec<&str> = only.split(',').collect();
        modes.retain(|(name, _)| only.contains(name));
    }
    let mut samples: Vec<Vec<Duration>> = vec![Vec::with_capacity(rounds * iters); modes.len()];
    for (_, run) in modes.iter_mut() {
        for _ in 0..iters / 10 {
            run(); // warm up
        }
    }
    for _ in 0..rounds {
        for (i, (_, run)) in modes.iter_mut().enumerate() {
            for _ in 0..iters {
                let start = Instant::now();
                run();
                samples[i].push(start.elapsed());
            }
        }
    }
    println!(
        "authenticate + authorize(threads.read) on examples/reference/auth, {rounds} interleaved rounds x {iters} calls"
    );
    println!(
        "{:<20} {:>10} {:>10} {:>10} {:>10}",
        "mode", "p50 µs", "p90 µs", "p99 µs", "mean µs"
    );
    let mut p50s = Vec::new();
    for ((name, _), s) in modes.iter().zip(samples.iter_mut()) {
        s.sort();
        let mean = s.iter().sum::<Duration>() / s.len() as u32;
        let us = |d: Duration| d.as_secs_f64() * 1e6;
        println!(
            "{:<20} {:>10.1} {:>10.1} {:>10.1} {:>10.1}",
            name,
            us(percentile(s, 0.5)),
            us(percentile(s, 0.9)),
            us(percentile(s, 0.99)),
            us(mean)
        );
        p50s.push((*name, us(percentile(s, 0.5))));
    }
    let sizes = [("release", component()), ("guest", component_in("guest"))];
    for (profile, path) in sizes {
        if let Ok(meta) = std::fs::metadata(&path) {
            println!("component size, profile {profile}: {} bytes", meta.len());
        }
    }
    if p50s.len() < 6 {
        return; // ratios need every mode
    }
    let p50 = |n: &str| {
        p50s.iter()
            .find(|(m, _)| *m == n)
            .map(|(_, v)| *v)
            .unwrap_or(f64::NAN)
    };
    println!(
        "ratios (p50): fresh/native {:.1}x, fresh/reused {:.1}x, keep-resident gain {:.1}x, deadline cost {:+.1} µs ({:+.0} %)",
        p50("fresh") / p50("native"),
        p50("fresh") / p50("reused"),
        p50("fresh-madvise") / p50("fresh"),
        p50("fresh") - p50("fresh-no-deadline"),
        (p50("fresh") / p50("fresh-no-deadline") - 1.0) * 100.0
    );
}
