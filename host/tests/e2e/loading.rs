//! Loading: what is refused and why, and the compiled-artefact cache.

use std::path::Path;

use warden::plugin::{ArtefactKeySource, AuthPlugin, Limits, LoadError, Runtime, RuntimeOptions};

use crate::support::{component, runtime};

fn load_bytes(bytes: &[u8]) -> LoadError {
    match AuthPlugin::from_bytes(
        runtime(),
        "t",
        Path::new("x.wasm"),
        bytes,
        Limits::default(),
    ) {
        Ok(_) => panic!("loaded"),
        Err(e) => e,
    }
}

#[test]
fn a_plugin_for_another_contract_version_is_refused_naming_both() {
    let path = component("fixture_future_contract");
    let err = AuthPlugin::load(runtime(), "future", &path, Limits::default())
        .err()
        .expect("refused");
    let message = err.to_string();
    assert!(matches!(err, LoadError::Contract { .. }), "{message}");
    assert!(message.contains("warden:auth@9.0.0"), "{message}");
    assert!(message.contains("warden:auth@0.1.0"), "{message}");
    assert!(message.contains("warden:auth@0.2.0"), "{message}");
}

#[test]
fn a_core_module_is_not_a_component() {
    let err = load_bytes(b"\0asm\x01\0\0\0");
    assert!(
        err.to_string().contains("a core WebAssembly module"),
        "{err}"
    );
    assert!(err.to_string().contains("wasm32-wasip2"), "{err}");
    let err = load_bytes(b"#!/bin/sh\necho hi\n");
    assert!(
        err.to_string().contains("not a WebAssembly binary"),
        "{err}"
    );
}

#[test]
fn a_truncated_component_does_not_compile() {
    let bytes = std::fs::read(component("tutorial_auth")).unwrap();
    let err = load_bytes(&bytes[..bytes.len() / 2]);
    assert!(matches!(err, LoadError::Compile { .. }), "{err}");
}

#[test]
fn a_missing_file_is_named() {
    let err = AuthPlugin::load(
        runtime(),
        "t",
        Path::new("/nope/auth.wasm"),
        Limits::default(),
    )
    .err()
    .unwrap();
    assert_eq!(
        err.to_string(),
        "/nope/auth.wasm: no such file or directory"
    );
}

#[test]
fn compiled_artefacts_are_cached_by_digest() {
    let dir = tempfile::tempdir().unwrap();
    let key = tempfile::tempdir().unwrap();
    // A new runtime has an empty in-memory cache: it finds the disk.
    let runtime = || {
        Runtime::new(RuntimeOptions {
            cache_dir: Some(dir.path().to_owned()),
            artefact_key: ArtefactKeySource::File(key.path().join("artefact.key")),
            ..RuntimeOptions::default()
        })
        .unwrap()
    };
    let path = component("reference_auth");
    let first = AuthPlugin::load(&runtime(), "auth", &path, Limits::default()).unwrap();
    let cached: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().collect();
    assert_eq!(cached.len(), 1);
    let name = cached[0].file_name().into_string().unwrap();
    assert!(name.starts_with(&first.info().digest), "{name}");

    let second = AuthPlugin::load(&runtime(), "auth", &path, Limits::default()).unwrap();
    assert_eq!(second.info().digest, first.info().digest);
    assert_eq!(second.registered(), first.registered());

    // A corrupt artefact is ignored and the component recompiled.
    std::fs::write(cached[0].path(), b"garbage").unwrap();
    let third = AuthPlugin::load(&runtime(), "auth", &path, Limits::default()).unwrap();
    assert_eq!(third.registered(), first.registered());
}
