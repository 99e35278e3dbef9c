//! Turning `auth.path` into a component file: a `.wasm` is used as is; a
//! plugin crate directory is built for `wasm32-wasip2` with cargo; a Python
//! policy (`auth.py:auth`, or a directory holding `pyproject.toml` and
//! `auth.py`) with componentize-py; a JavaScript or TypeScript package (a
//! directory holding `package.json`) with its `build` script.

use std::io::{BufRead, BufReader};
use std::path::{Component, Path, PathBuf};
use std::process::{Command, Stdio};

use sha2::{Digest, Sha256};

use super::error::LoadError;

/// Where a plugin comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PluginSource {
    /// A component file, used as is.
    Component(PathBuf),
    /// A Rust crate directory.
    Crate(PathBuf),
    /// A Python module `module` in `dir` whose global `object` is a
    /// `warden_auth.Auth`.
    Python {
        /// The directory on the Python path.
        dir: PathBuf,
        /// The module's name (the file's stem).
        module: String,
        /// The `Auth` object's name in the module.
        object: String,
    },
    /// An npm package directory whose `build` script writes the component.
    Npm(PathBuf),
}

impl PluginSource {
    /// What `path` names: `dir/auth.py:auth` (`:auth` may be left out) is a
    /// Python policy; a directory is a crate, a Python project or an npm
    /// package by the manifest it holds; anything else a component file.
    pub fn of(path: &Path) -> Result<Self, LoadError> {
        let text = path.to_string_lossy();
        if let Some((file, object)) = python_object(&text) {
            let file = PathBuf::from(file);
            if !file.is_file() {
                return Err(LoadError::NotFound { path: file });
            }
            let module = file
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let dir = file
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."))
                .to_owned();
            return Ok(Self::Python {
                dir,
                module,
                object: object.to_owned(),
            });
        }
        if path.is_dir() {
            return if path.join("Cargo.toml").is_file() {
                Ok(Self::Crate(path.to_owned()))
            } else if path.join("pyproject.toml").is_file() {
                Ok(Self::Python {
                    dir: path.to_owned(),
                    module: "auth".into(),
                    object: "auth".into(),
                })
            } else if path.join("package.json").is_file() {
                Ok(Self::Npm(path.to_owned()))
            } else {
                Err(LoadError::Build {
                    dir: path.to_owned(),
                    reason: "the directory holds no Cargo.toml, pyproject.toml or package.json"
                        .into(),
                })
            };
        }
        if path.exists() {
            Ok(Self::Component(path.to_owned()))
        } else {
            Err(LoadError::NotFound {
                path: path.to_owned(),
            })
        }
    }

    /// The directory whose source edits call for a rebuild (`warden dev`);
    /// none for a component file.
    pub fn sources(&self) -> Option<&Path> {
        match self {
            Self::Component(_) => None,
            Self::Crate(dir) | Self::Npm(dir) | Self::Python { dir, .. } => Some(dir),
        }
    }

    /// The component: the file itself, or what building the sources
    /// produces. Build tools' progress and diagnostics go to standard error.
    pub fn build(&self) -> Result<PathBuf, LoadError> {
        match self {
            Self::Component(path) => Ok(path.clone()),
            Self::Crate(dir) => build_crate(dir),
            Self::Python {
                dir,
                module,
                object,
            } => build_python(dir, module, object),
            Self::Npm(dir) => build_npm(dir),
        }
    }
}

/// `(file, object)` when `path` names a Python file, `file.py[:object]`.
fn python_object(path: &str) -> Option<(&str, &str)> {
    if path.ends_with(".py") {
        return Some((path, "auth"));
    }
    let (file, object) = path.rsplit_once(':')?;
    let valid = file.ends_with(".py")
        && !object.is_empty()
        && object.chars().all(|c| c.is_alphanumeric() || c == '_');
    valid.then_some((file, object))
}

/// The component a plugin path names (see [`PluginSource::of`]), built if
/// the path names sources.
pub fn locate_component(path: &Path) -> Result<PathBuf, LoadError> {
    PluginSource::of(path)?.build()
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

/// The contract Python and JavaScript plugins are built against, as the
/// WIT package and its dependency the build tools read.
const AUTH_WIT: &str = include_str!("../../../wit/auth/v0.2.0/auth.wit");
const COMMON_WIT: &str = include_str!("../../../wit/common/v0.1.0/common.wit");

/// WASI 0.2.12's WIT (as wasmtime-wasi-http 50 ships it), for a Python
/// plugin's outbound HTTP: `(dependency folder, text)`.
const WASI_WIT: [(&str, &str); 7] = [
    ("cli", include_str!("../../../wit/wasi/v0.2.12/cli.wit")),
    (
        "clocks",
        include_str!("../../../wit/wasi/v0.2.12/clocks.wit"),
    ),
    (
        "filesystem",
        include_str!("../../../wit/wasi/v0.2.12/filesystem.wit"),
    ),
    ("http", include_str!("../../../wit/wasi/v0.2.12/http.wit")),
    ("io", include_str!("../../../wit/wasi/v0.2.12/io.wit")),
    (
        "random",
        include_str!("../../../wit/wasi/v0.2.12/random.wit"),
    ),
    (
        "sockets",
        include_str!("../../../wit/wasi/v0.2.12/sockets.wit"),
    ),
];

/// The world a Python plugin is built for: the contract's, and the
/// `wasi:http` client every plugin may use (within `allowed_hosts`), so
/// that componentize-py generates its Python bindings.
const PYTHON_WORLD: &str = "/// Written by `warden build`: `auth-plugin` and outbound HTTP.
world auth-plugin-python {
    include auth-plugin;
    import wasi:http/outgoing-handler@0.2.12;
}
";

/// Where a Python or npm plugin's build keeps its output and inputs: a
/// hidden directory beside the sources, which `warden dev` does not watch.
const BUILD_DIR: &str = ".warden-build";

/// The Python module componentize-py is asked to wrap: it imports the
/// policy and serves it.
const PYTHON_APP: &str = "warden_auth_app";
/// The module componentize-py takes the exported `session` resource from.
const PYTHON_EXPORTS: &str = "warden_auth_exports";

/// A Python or npm build's directories: the sources (absolute, as the
/// build tools run there), the build directory, and the contract's WIT
/// written where the tools read it (`<build>/wit/auth.wit` and
/// `<build>/wit/deps/common/common.wit`).
struct Prepared {
    dir: PathBuf,
    build: PathBuf,
    wit: PathBuf,
}

impl Prepared {
    fn in_dir(dir: &Path) -> Result<Self, LoadError> {
        let absolute = dir.canonicalize().map_err(|source| LoadError::Read {
            path: dir.to_owned(),
            source,
        })?;
        let build = absolute.join(BUILD_DIR);
        let wit = build.join("wit");
        let written = std::fs::create_dir_all(wit.join("deps/common"))
            .and_then(|()| std::fs::write(wit.join("auth.wit"), AUTH_WIT))
            .and_then(|()| std::fs::write(wit.join("deps/common/common.wit"), COMMON_WIT));
        written.map_err(|e| LoadError::Build {
            dir: absolute.clone(),
            reason: e.to_string(),
        })?;
        Ok(Self {
            dir: absolute,
            build,
            wit,
        })
    }
}

/// Builds a Python policy with componentize-py (`WARDEN_COMPONENTIZE_PY`,
/// else `componentize-py` on the PATH, else the one in `dir/.venv`). The
/// `warden_auth` package must be importable: installed in the active
/// virtual environment (`VIRTUAL_ENV`, or `dir/.venv`). The build is
/// skipped when nothing it reads changed since the last one.
fn build_python(dir: &Path, module: &str, object: &str) -> Result<PathBuf, LoadError> {
    let Prepared { dir, build, wit } = Prepared::in_dir(dir)?;
    let dir = dir.as_path();
    let fail = |reason: String| LoadError::Build {
        dir: dir.to_owned(),
        reason,
    };
    let io = |e: std::io::Error| fail(e.to_string());
    std::fs::write(wit.join("python.wit"), PYTHON_WORLD).map_err(io)?;
    for (package, text) in WASI_WIT {
        let deps = wit.join("deps").join(package);
        std::fs::create_dir_all(&deps).map_err(io)?;
        std::fs::write(deps.join(format!("{package}.wit")), text).map_err(io)?;
    }
    let shims = build.join("python");
    std::fs::create_dir_all(&shims).map_err(io)?;
    let app = format!(
        "# Generated by `warden build`: serves `{module}.{object}` as a Warden plugin.\n\
         from warden_auth import _component\n\
         import {module} as _policy\n\
         _component.install(_policy.{object})\n\
         WardenAuthExports = _component.WardenAuthExports\n"
    );
    let exports = "# Generated by `warden build`.\nfrom warden_auth._component import Session\n";
    std::fs::write(shims.join(format!("{PYTHON_APP}.py")), &app).map_err(io)?;
    std::fs::write(shims.join(format!("{PYTHON_EXPORTS}.py")), exports).map_err(io)?;

    let venv = std::env::var_os("VIRTUAL_ENV")
        .map(PathBuf::from)
        .or_else(|| Some(dir.join(".venv")).filter(|v| v.is_dir()));
    let tool = std::env::var_os("WARDEN_COMPONENTIZE_PY")
        .map(PathBuf::from)
        .or_else(|| find_on_path("componentize-py"))
        .or_else(|| {
            venv.as_ref()
                .map(|v| v.join("bin/componentize-py"))
                .filter(|p| p.is_file())
        })
        .ok_or_else(|| {
            fail(
                "componentize-py is not installed: `pip install componentize-py==0.25.1` \
                 (or set WARDEN_COMPONENTIZE_PY)"
                    .into(),
            )
        })?;

    let output = build.join(format!("{module}.wasm"));
    let mut inputs = Inputs::default();
    inputs.tool(&tool);
    inputs.text(&app);
    inputs.text(AUTH_WIT);
    inputs.text(COMMON_WIT);
    inputs.text(PYTHON_WORLD);
    for (_, text) in WASI_WIT {
        inputs.text(text);
    }
    inputs.tree(dir, &["py", "toml"]);
    if let Some(sdk) = venv.as_deref().and_then(installed_sdk) {
        inputs.tree(&sdk, &["py"]);
    }
    if inputs.matches(&output) {
        tracing::info!(dir = %dir.display(), "Python plugin unchanged since its last build");
        return Ok(output);
    }

    tracing::info!(dir = %dir.display(), module, "building the Python plugin with componentize-py");
    let mut command = Command::new(&tool);
    command
        .arg("-d")
        .arg(&wit)
        .args(["-w", "auth-plugin-python"])
        .args([
            "--export-interface-name",
            &format!("warden:auth/handlers@0.2.0={PYTHON_EXPORTS}"),
        ])
        .args(["componentize", PYTHON_APP, "-p"])
        .arg(&shims)
        .arg("-p")
        .arg(dir)
        .arg("-o")
        .arg(&output)
        .current_dir(dir);
    if let Some(venv) = &venv {
        command.env("VIRTUAL_ENV", venv);
    }
    run_build(command, &output, &inputs).map_err(|reason| {
        fail(format!(
            "{reason}; a `No module named 'warden_auth'` above means the SDK is not \
             installed where componentize-py looks: `pip install <warden>/guest-sdk/python` \
             in the active virtual environment"
        ))
    })
}

/// Builds an npm package: `npm run --silent build` in `dir`, with
/// `WARDEN_WIT_DIR` naming the contract's WIT and `WARDEN_COMPONENT_OUT`
/// the file the script must write (`guest-sdk/typescript`'s
/// `warden-auth-build` does both). Skipped when nothing it reads changed.
fn build_npm(dir: &Path) -> Result<PathBuf, LoadError> {
    let Prepared { dir, build, wit } = Prepared::in_dir(dir)?;
    let dir = dir.as_path();
    let fail = |reason: String| LoadError::Build {
        dir: dir.to_owned(),
        reason,
    };
    let output = build.join("plugin.wasm");
    let npm = find_on_path("npm")
        .ok_or_else(|| fail("npm is not installed (Node.js 20 or later)".into()))?;
    let mut inputs = Inputs::default();
    inputs.tool(&npm);
    inputs.text(AUTH_WIT);
    inputs.text(COMMON_WIT);
    inputs.tree(dir, &["ts", "js", "mjs", "cjs", "mts", "json"]);
    if inputs.matches(&output) {
        tracing::info!(dir = %dir.display(), "npm plugin unchanged since its last build");
        return Ok(output);
    }
    tracing::info!(dir = %dir.display(), "building the plugin with `npm run build`");
    let mut command = Command::new(npm);
    command
        .args(["run", "--silent", "build"])
        .env("WARDEN_WIT_DIR", &wit)
        .env("WARDEN_COMPONENT_OUT", &output)
        .current_dir(dir);
    run_build(command, &output, &inputs).map_err(fail)
}

/// Runs a build tool (its output on standard error) and records the inputs
/// of the component it wrote.
fn run_build(mut command: Command, output: &Path, inputs: &Inputs) -> Result<PathBuf, String> {
    let _ = std::fs::remove_file(output);
    // The tools are Rust programs: their errors, without a Rust backtrace.
    command
        .env("RUST_BACKTRACE", "0")
        .env("RUST_LIB_BACKTRACE", "0");
    let program = command.get_program().to_string_lossy().into_owned();
    let status = command
        .stdin(Stdio::null())
        .stdout(Stdio::from(std::io::stderr()))
        .stderr(Stdio::inherit())
        .status()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if !status.success() {
        return Err(format!(
            "{program} exited with {status} (its output is above)"
        ));
    }
    if !output.is_file() {
        return Err(format!("{program} wrote no {}", output.display()));
    }
    inputs.record(output);
    Ok(output.to_owned())
}

/// The installed `warden_auth` package in a virtual environment.
fn installed_sdk(venv: &Path) -> Option<PathBuf> {
    std::fs::read_dir(venv.join("lib"))
        .ok()?
        .flatten()
        .map(|entry| entry.path().join("site-packages/warden_auth"))
        .find(|sdk| sdk.is_dir())
}

fn find_on_path(program: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

/// A digest of everything a build reads, kept beside its output: the next
/// build with the same digest reuses the output.
#[derive(Default)]
struct Inputs(Sha256);

impl Inputs {
    fn text(&mut self, text: &str) {
        self.0.update((text.len() as u64).to_le_bytes());
        self.0.update(text);
    }

    /// The tool's identity: its path, size and modification time.
    fn tool(&mut self, tool: &Path) {
        let meta = std::fs::metadata(tool).ok();
        let modified = meta.as_ref().and_then(|m| m.modified().ok());
        self.text(&format!(
            "{} {:?} {modified:?}",
            tool.display(),
            meta.map(|m| m.len())
        ));
    }

    /// The files under `dir` with one of `extensions` (skipping hidden
    /// entries, `node_modules` other than Warden's own SDK, `__pycache__`
    /// and `target`), by relative path and content.
    fn tree(&mut self, dir: &Path, extensions: &[&str]) {
        let mut files = Vec::new();
        collect(dir, dir, extensions, &mut files);
        files.sort();
        for (name, path) in files {
            self.text(&name);
            self.text(&String::from_utf8_lossy(
                &std::fs::read(&path).unwrap_or_default(),
            ));
        }
    }

    fn record_path(output: &Path) -> PathBuf {
        output.with_extension("inputs")
    }

    fn hex(&self) -> String {
        format!("{:x}", self.0.clone().finalize())
    }

    fn matches(&self, output: &Path) -> bool {
        output.is_file()
            && std::fs::read_to_string(Self::record_path(output)).is_ok_and(|d| d == self.hex())
    }

    fn record(&self, output: &Path) {
        let _ = std::fs::write(Self::record_path(output), self.hex());
    }
}

fn collect(root: &Path, dir: &Path, extensions: &[&str], out: &mut Vec<(String, PathBuf)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || name == "__pycache__" || name == "target" {
            continue;
        }
        let relative = path.strip_prefix(root).unwrap_or(&path);
        let in_node_modules = relative
            .components()
            .any(|c| c == Component::Normal("node_modules".as_ref()));
        if path.is_dir() {
            let is_modules = name == "node_modules";
            if is_modules {
                collect(root, &path.join("@warden"), extensions, out);
            } else if !in_node_modules || relative.starts_with("node_modules/@warden") {
                collect(root, &path, extensions, out);
            }
        } else if extensions
            .iter()
            .any(|e| path.extension().is_some_and(|x| x == *e))
        {
            out.push((relative.to_string_lossy().into_owned(), path));
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_paths_name_a_module_and_its_auth_object() {
        assert_eq!(
            python_object("./a/auth.py:auth"),
            Some(("./a/auth.py", "auth"))
        );
        assert_eq!(
            python_object("./a/policy.py"),
            Some(("./a/policy.py", "auth"))
        );
        assert_eq!(
            python_object("./a/auth.py:my_auth"),
            Some(("./a/auth.py", "my_auth"))
        );
        assert_eq!(python_object("./auth"), None);
        assert_eq!(python_object("./auth.wasm"), None);
        assert_eq!(python_object("./auth.py:"), None);
        assert_eq!(python_object("./auth.py:a.b"), None);
    }

    #[test]
    fn a_directory_is_what_its_manifest_says() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for (name, manifest) in [
            ("rust", "Cargo.toml"),
            ("py", "pyproject.toml"),
            ("js", "package.json"),
        ] {
            std::fs::create_dir(root.join(name)).unwrap();
            std::fs::write(root.join(name).join(manifest), "").unwrap();
        }
        std::fs::write(root.join("py/policy.py"), "").unwrap();
        assert_eq!(
            PluginSource::of(&root.join("rust")).unwrap(),
            PluginSource::Crate(root.join("rust"))
        );
        assert_eq!(
            PluginSource::of(&root.join("py")).unwrap(),
            PluginSource::Python {
                dir: root.join("py"),
                module: "auth".into(),
                object: "auth".into()
            }
        );
        let file = PluginSource::of(&root.join("py/policy.py:gate")).unwrap();
        assert_eq!(
            file,
            PluginSource::Python {
                dir: root.join("py"),
                module: "policy".into(),
                object: "gate".into()
            }
        );
        assert_eq!(file.sources(), Some(root.join("py").as_path()));
        assert_eq!(
            PluginSource::of(&root.join("js")).unwrap(),
            PluginSource::Npm(root.join("js"))
        );
        std::fs::create_dir(root.join("empty")).unwrap();
        assert!(matches!(
            PluginSource::of(&root.join("empty")),
            Err(LoadError::Build { .. })
        ));
        assert!(matches!(
            PluginSource::of(&root.join("py/missing.py:auth")),
            Err(LoadError::NotFound { .. })
        ));
    }

    #[test]
    fn a_build_is_reused_only_while_its_inputs_are_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        std::fs::create_dir_all(src.join("__pycache__")).unwrap();
        std::fs::write(src.join("auth.py"), "a = 1").unwrap();
        let output = dir.path().join("out.wasm");
        std::fs::write(&output, "component").unwrap();
        let inputs = |src: &Path| {
            let mut inputs = Inputs::default();
            inputs.text("shim");
            inputs.tree(src, &["py"]);
            inputs
        };
        assert!(!inputs(&src).matches(&output), "never built");
        inputs(&src).record(&output);
        assert!(inputs(&src).matches(&output));
        // Bytecode caches and other extensions are not inputs.
        std::fs::write(src.join("__pycache__/auth.pyc"), "x").unwrap();
        std::fs::write(src.join("notes.txt"), "x").unwrap();
        assert!(inputs(&src).matches(&output));
        std::fs::write(src.join("auth.py"), "a = 2").unwrap();
        assert!(!inputs(&src).matches(&output), "a source changed");
    }
}
