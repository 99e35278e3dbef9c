//! Turning `auth.path` into a component file: a `.wasm` is used as is, a
//! plugin crate directory is built for `wasm32-wasip2` with cargo.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::error::LoadError;

/// The component a plugin path names: the file itself, or the `.wasm` that
/// building the crate in that directory produces. Cargo's progress and
/// diagnostics go to standard error.
pub fn locate_component(path: &Path) -> Result<PathBuf, LoadError> {
    if path.is_dir() {
        build_crate(path)
    } else if path.exists() {
        Ok(path.to_owned())
    } else {
        Err(LoadError::NotFound {
            path: path.to_owned(),
        })
    }
}

fn build_crate(dir: &Path) -> Result<PathBuf, LoadError> {
    let manifest = dir.join("Cargo.toml");
    let fail = |reason: String| LoadError::Build {
        dir: dir.to_owned(),
        reason,
    };
    if !manifest.is_file() {
        return Err(fail("no Cargo.toml in the directory".into()));
    }
    let manifest = manifest
        .canonicalize()
        .map_err(|e| fail(format!("{}: {e}", manifest.display())))?;
    ensure_wasm_target();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    tracing::info!(dir = %dir.display(), "building the plugin crate for wasm32-wasip2");
    let mut child = Command::new(&cargo)
        .args(["build", "--release", "--target", WASM_TARGET])
        .args([
            "--message-format",
            "json-render-diagnostics",
            "--manifest-path",
        ])
        .arg(&manifest)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| fail(format!("cannot run {}: {e}", cargo.to_string_lossy())))?;

    let mut artefact = None;
    let stdout = child.stdout.take().expect("piped stdout");
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        let Ok(message) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        let is_ours = message["reason"] == "compiler-artifact"
            && message["manifest_path"].as_str().map(Path::new) == Some(manifest.as_path());
        if is_ours {
            let wasm = message["filenames"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|f| f.as_str())
                .find(|f| f.ends_with(".wasm"));
            if let Some(wasm) = wasm {
                artefact = Some(PathBuf::from(wasm));
            }
        }
    }
    let status = child.wait().map_err(|e| fail(e.to_string()))?;
    if !status.success() {
        return Err(fail(format!(
            "cargo exited with {status} (its output is above)"
        )));
    }
    artefact
        .ok_or_else(|| fail("the crate produced no .wasm: is its crate-type \"cdylib\"?".into()))
}

/// The Rust target plugins are built for.
const WASM_TARGET: &str = "wasm32-wasip2";

/// Installs the wasm32-wasip2 target with rustup when it is missing, so a
/// fresh checkout serves its examples with one command. Without rustup the
/// build itself reports what is missing.
fn ensure_wasm_target() {
    let Ok(installed) = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
    else {
        return;
    };
    if String::from_utf8_lossy(&installed.stdout)
        .lines()
        .any(|t| t.trim() == WASM_TARGET)
    {
        return;
    }
    tracing::info!("installing the {WASM_TARGET} target with rustup");
    let added = Command::new("rustup")
        .args(["target", "add", WASM_TARGET])
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .status();
    if !matches!(added, Ok(status) if status.success()) {
        tracing::warn!(
            "`rustup target add {WASM_TARGET}` failed; the build will say what is missing"
        );
    }
}
