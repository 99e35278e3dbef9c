//! `warden new`: a plugin crate (or, with `--graph`, a graph crate) of
//! one's own, with native tests and a `langgraph.json` that serves it,
//! ready for `cargo test` and `warden dev`.
//!
//! The crate is standalone (an empty `[workspace]` table: it builds inside
//! any other workspace too) and depends on the SDK by path, since the SDKs
//! are not published: by default on the `guest-sdk/` of the source tree
//! this `warden` was built from. The tree's `Cargo.lock` is copied beside
//! the new manifest so the crate starts from the versions Warden is tested
//! with (cargo drops the entries it does not need).
//!
//! The files are the templates under `host/templates/`, embedded in the
//! binary, with `{{name}}`-style placeholders filled in.

use std::fmt;
use std::io::Write;
use std::path::{Component, Path, PathBuf};

/// The `guest-sdk/` of the source tree this binary was built from.
const BUILT_FROM_SDK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../guest-sdk");

/// The bearer token the auth template accepts for `alice`.
const AUTH_EXAMPLE_TOKEN: &str = "alice-token";

/// `warden new`'s arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct NewArgs {
    /// The directory to create (or an empty directory to fill).
    pub dir: PathBuf,
    /// Create a graph crate (`warden-graph`) rather than an auth plugin.
    #[arg(long)]
    pub graph: bool,
    /// The crate's name; default: the directory's name.
    #[arg(long, value_name = "CRATE-NAME")]
    pub name: Option<String>,
    /// The `guest-sdk` directory of a Warden source tree (or the tree
    /// itself); default: the one this `warden` was built from.
    #[arg(long, value_name = "PATH")]
    pub sdk: Option<PathBuf>,
}

/// What a new crate is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An auth plugin, on `warden-sdk`.
    Auth,
    /// A graph, on `warden-graph`.
    Graph,
}

impl Kind {
    /// The SDK crate it depends on.
    pub fn sdk_crate(self) -> &'static str {
        match self {
            Kind::Auth => "warden-sdk",
            Kind::Graph => "warden-graph",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Kind::Auth => "auth plugin",
            Kind::Graph => "graph",
        }
    }
}

/// Why `warden new` created nothing.
#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    /// The directory holds files already.
    #[error(
        "{} exists and is not empty: name a new or empty directory \
         (`warden new` never writes over files)",
        .0.display()
    )]
    NotEmpty(PathBuf),
    /// The path is a file, not a directory.
    #[error("{} exists and is not a directory", .0.display())]
    NotADirectory(PathBuf),
    /// The crate name `cargo` would refuse.
    #[error("{what} {name:?} is not a valid crate name: {reason}{hint}")]
    InvalidName {
        /// `the crate name` or `the directory name`.
        what: &'static str,
        /// The name.
        name: String,
        /// What is wrong with it.
        reason: String,
        /// What to do instead.
        hint: &'static str,
    },
    /// No name can be taken from the directory's path.
    #[error("cannot take a crate name from {}: pass --name <CRATE-NAME>", .0.display())]
    NoName(PathBuf),
    /// The SDK `warden` was built from is not there and `--sdk` is absent.
    #[error(
        "no Warden SDK: this warden was built from a source tree whose guest SDK \
         ({}) is gone; pass --sdk <PATH> naming the guest-sdk directory of a \
         Warden source tree",
        .0.display()
    )]
    NoSdk(PathBuf),
    /// `--sdk` (or the built-in default) does not hold the SDK.
    #[error("--sdk {}: {reason}", path.display())]
    BadSdk {
        /// The path.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Reading or writing a file failed.
    #[error("{action} {}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// To which file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

/// What [`create`] made.
#[derive(Debug, Clone)]
pub struct Created {
    /// An auth plugin or a graph.
    pub kind: Kind,
    /// The crate's name (and, for a graph, its graph id).
    pub name: String,
    /// The directory, as given.
    pub dir: PathBuf,
    /// The directory of the SDK crate it depends on.
    pub sdk: PathBuf,
    /// The files written, relative to `dir`.
    pub files: Vec<&'static str>,
}

/// Creates the crate `args` describe. Everything is checked before the
/// first file is written; when writing fails, a directory this call
/// created is removed again.
pub fn create(args: &NewArgs) -> Result<Created, ScaffoldError> {
    let kind = if args.graph { Kind::Graph } else { Kind::Auth };
    let name = match &args.name {
        Some(name) => {
            check_name(name).map_err(|reason| ScaffoldError::InvalidName {
                what: "the crate name",
                name: name.clone(),
                reason,
                hint: "",
            })?;
            name.clone()
        }
        None => name_of_dir(&args.dir)?,
    };
    let must_create = vacancy(&args.dir)?;
    let sdk = Sdk::find(args.sdk.as_deref(), kind)?;
    let sdk_path = sdk
        .dependency
        .to_str()
        .ok_or_else(|| ScaffoldError::BadSdk {
            path: sdk.dependency.clone(),
            reason: "the path is not valid UTF-8, which Cargo.toml cannot hold".into(),
        })?;

    let lib_name = name.replace('-', "_");
    let values = [
        ("name", name.as_str()),
        ("lib_name", lib_name.as_str()),
        ("sdk_path", &toml_escape(sdk_path)),
        ("sdk_dir", sdk_path),
    ];
    let mut files: Vec<(&'static str, String)> = templates(kind)
        .iter()
        .map(|(file, template)| (*file, render(template, &values)))
        .collect();
    if let Some(lock) = &sdk.lockfile {
        let text = std::fs::read_to_string(lock).map_err(|source| ScaffoldError::Io {
            action: "reading",
            path: lock.clone(),
            source,
        })?;
        files.push(("Cargo.lock", text));
    }

    if must_create {
        std::fs::create_dir_all(&args.dir).map_err(|source| ScaffoldError::Io {
            action: "creating",
            path: args.dir.clone(),
            source,
        })?;
    }
    if let Err(error) = write_files(&args.dir, &files) {
        if must_create {
            // Only what this call created: the directory was not there.
            let _ = std::fs::remove_dir_all(&args.dir);
        }
        return Err(error);
    }
    Ok(Created {
        kind,
        name,
        dir: args.dir.clone(),
        sdk: sdk.dependency,
        files: files.iter().map(|(file, _)| *file).collect(),
    })
}

/// The files of a new crate and their templates.
fn templates(kind: Kind) -> &'static [(&'static str, &'static str)] {
    const GITIGNORE: &str = include_str!("../templates/gitignore.tmpl");
    match kind {
        Kind::Auth => &[
            (
                "Cargo.toml",
                include_str!("../templates/auth/Cargo.toml.tmpl"),
            ),
            ("src/lib.rs", include_str!("../templates/auth/lib.rs.tmpl")),
            (
                "langgraph.json",
                include_str!("../templates/auth/langgraph.json.tmpl"),
            ),
            (
                "README.md",
                include_str!("../templates/auth/README.md.tmpl"),
            ),
            (".gitignore", GITIGNORE),
        ],
        Kind::Graph => &[
            (
                "Cargo.toml",
                include_str!("../templates/graph/Cargo.toml.tmpl"),
            ),
            ("src/lib.rs", include_str!("../templates/graph/lib.rs.tmpl")),
            (
                "langgraph.json",
                include_str!("../templates/graph/langgraph.json.tmpl"),
            ),
            (
                "README.md",
                include_str!("../templates/graph/README.md.tmpl"),
            ),
            (".gitignore", GITIGNORE),
        ],
    }
}

/// Writes each file under `dir`, refusing to replace one.
fn write_files(dir: &Path, files: &[(&str, String)]) -> Result<(), ScaffoldError> {
    for (file, text) in files {
        let path = dir.join(file);
        let io = |action| {
            let path = path.clone();
            move |source| ScaffoldError::Io {
                action,
                path,
                source,
            }
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io("creating"))?;
        }
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .and_then(|mut f| f.write_all(text.as_bytes()))
            .map_err(io("writing"))?;
    }
    Ok(())
}

/// Whether `dir` must be created: `false` when it is an empty directory,
/// an error when it is anything else but absent.
fn vacancy(dir: &Path) -> Result<bool, ScaffoldError> {
    let io = |source| ScaffoldError::Io {
        action: "reading",
        path: dir.to_owned(),
        source,
    };
    match std::fs::metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(io(e)),
        Ok(meta) if !meta.is_dir() => Err(ScaffoldError::NotADirectory(dir.to_owned())),
        Ok(_) => match std::fs::read_dir(dir).map_err(io)?.next() {
            None => Ok(false),
            Some(_) => Err(ScaffoldError::NotEmpty(dir.to_owned())),
        },
    }
}

/// The crate name a directory gives: its last component (of its real
/// path for `.` and the like).
fn name_of_dir(dir: &Path) -> Result<String, ScaffoldError> {
    let last = match dir.file_name() {
        Some(name) => Some(name.to_owned()),
        None => dir
            .canonicalize()
            .ok()
            .and_then(|real| real.file_name().map(ToOwned::to_owned)),
    };
    let name = last
        .and_then(|name| name.into_string().ok())
        .ok_or_else(|| ScaffoldError::NoName(dir.to_owned()))?;
    check_name(&name).map_err(|reason| ScaffoldError::InvalidName {
        what: "the directory name",
        name: name.clone(),
        reason,
        hint: "; pass --name <CRATE-NAME>",
    })?;
    Ok(name)
}

/// Why Cargo would refuse `name` as a package name, if it would (and the
/// SDK crates' own names, which would make the crate depend on itself).
pub fn check_name(name: &str) -> Result<(), String> {
    const KEYWORDS: &[&str] = &[
        "Self", "abstract", "as", "async", "await", "become", "box", "break", "const", "continue",
        "crate", "do", "dyn", "else", "enum", "extern", "false", "final", "fn", "for", "gen", "if",
        "impl", "in", "let", "loop", "macro", "match", "mod", "move", "mut", "override", "priv",
        "pub", "ref", "return", "self", "static", "struct", "super", "trait", "true", "try",
        "type", "typeof", "unsafe", "unsized", "use", "virtual", "where", "while", "yield",
    ];
    const BUILT_IN: &[&str] = &["alloc", "core", "proc_macro", "std", "test"];
    const SDK: &[&str] = &["warden_sdk", "warden_graph", "warden_types"];
    let Some(first) = name.chars().next() else {
        return Err("it is empty".into());
    };
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
    {
        return Err(format!(
            "{bad:?} is not allowed: use ASCII letters, digits, `-` and `_`"
        ));
    }
    if !(first.is_ascii_alphabetic() || first == '_') {
        return Err("it must start with a letter or `_`".into());
    }
    let lib_name = name.replace('-', "_");
    if KEYWORDS.contains(&lib_name.as_str()) {
        return Err("it is a Rust keyword".into());
    }
    if BUILT_IN.contains(&lib_name.as_str()) {
        return Err("it is the name of a library built into Rust".into());
    }
    if SDK.contains(&lib_name.as_str()) {
        return Err("it is the name of a Warden SDK crate".into());
    }
    Ok(())
}

/// Where the SDK is.
struct Sdk {
    /// The directory of the crate to depend on, canonical.
    dependency: PathBuf,
    /// The source tree's `Cargo.lock`, if there is one.
    lockfile: Option<PathBuf>,
}

impl Sdk {
    /// The SDK at `given`, or else the one this binary was built from.
    fn find(given: Option<&Path>, kind: Kind) -> Result<Self, ScaffoldError> {
        let given = match given {
            Some(path) => path.to_owned(),
            None => {
                let built_from = Path::new(BUILT_FROM_SDK);
                if !built_from.join("Cargo.toml").is_file() {
                    return Err(ScaffoldError::NoSdk(built_from.to_owned()));
                }
                built_from.to_owned()
            }
        };
        let bad = |reason: String| ScaffoldError::BadSdk {
            path: given.clone(),
            reason,
        };
        let real = given
            .canonicalize()
            .map_err(|e| bad(format!("cannot be read ({e})")))?;
        // The source tree itself names its guest SDK.
        let root = if real.join("guest-sdk/Cargo.toml").is_file() {
            real.join("guest-sdk")
        } else {
            real
        };
        let dependency = match kind {
            Kind::Auth => root.clone(),
            Kind::Graph => root.join("graph"),
        };
        let manifest = dependency.join("Cargo.toml");
        let text = std::fs::read_to_string(&manifest).unwrap_or_default();
        let wanted = format!("name=\"{}\"", kind.sdk_crate());
        let declares = text
            .lines()
            .any(|line| line.replace([' ', '\t'], "") == wanted);
        if !declares {
            return Err(bad(format!(
                "{} is not the manifest of {}: name the guest-sdk directory of a Warden \
                 source tree",
                manifest.display(),
                kind.sdk_crate()
            )));
        }
        let lockfile = root
            .parent()
            .map(|tree| tree.join("Cargo.lock"))
            .filter(|lock| lock.is_file());
        Ok(Self {
            dependency,
            lockfile,
        })
    }
}

/// `template` with each `{{key}}` of `values` replaced, in one pass (a
/// value is never read as a template); other text is kept as is.
fn render(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let known = after.find("}}").and_then(|end| {
            let key = &after[..end];
            let (_, value) = values.iter().find(|(k, _)| *k == key)?;
            Some((value, end))
        });
        match known {
            Some((value, end)) => {
                out.push_str(value);
                rest = &after[end + 2..];
            }
            None => {
                out.push_str("{{");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// `text` as the inside of a TOML basic string.
fn toml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out
}

/// `path` as a POSIX shell word.
fn shell_word(path: &Path) -> String {
    let text = path.to_string_lossy();
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./+=:@%,".contains(c));
    if plain {
        text.into_owned()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

impl fmt::Display for Created {
    /// What was created and the commands that come next.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "Created the {} `{}` in {}:",
            self.kind.describe(),
            self.name,
            self.dir.display()
        )?;
        for file in &self.files {
            let what = match *file {
                "Cargo.toml" => format!(
                    "the crate; {} from {}",
                    self.kind.sdk_crate(),
                    self.sdk.display()
                ),
                "Cargo.lock" => "the dependency versions Warden is tested with".into(),
                "src/lib.rs" => match self.kind {
                    Kind::Auth => "the policy, and its native tests".into(),
                    Kind::Graph => "the graph, and its native tests".into(),
                },
                "langgraph.json" => match self.kind {
                    Kind::Auth => "serves this crate as the auth plugin".into(),
                    Kind::Graph => format!("serves this crate as the graph `{}`", self.name),
                },
                "README.md" => "how to test, serve and call it".into(),
                ".gitignore" => "leaves target/ and .warden/ out of git".into(),
                _ => String::new(),
            };
            writeln!(f, "  {file:<16}{what}")?;
        }
        writeln!(f)?;
        writeln!(f, "Next:")?;
        let here = self.dir.components().all(|c| c == Component::CurDir);
        if !here {
            writeln!(f, "  cd {}", shell_word(&self.dir))?;
        }
        writeln!(f, "  cargo test                           # natively")?;
        writeln!(
            f,
            "  warden dev --config langgraph.json   # build, serve, rebuild on save"
        )?;
        match self.kind {
            Kind::Auth => writeln!(
                f,
                "  warden call . authenticate -H 'Authorization: Bearer {AUTH_EXAMPLE_TOKEN}'"
            ),
            Kind::Graph => writeln!(
                f,
                "  curl -s -XPOST 127.0.0.1:8123/runs/wait -d '{{\"assistant_id\": \"{}\", \
                 \"input\": {{\"messages\": [{{\"role\": \"user\", \"content\": \"hi\"}}]}}}}'",
                self.name
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crate_names_are_checked_as_cargo_does() {
        for good in ["my-plugin", "my_graph", "_x", "Auth2", "a"] {
            assert_eq!(check_name(good), Ok(()), "{good}");
        }
        for (bad, why) in [
            ("", "empty"),
            ("my plugin", "' ' is not allowed"),
            ("café", "'é' is not allowed"),
            ("2fa", "start with a letter"),
            ("-x", "start with a letter"),
            ("fn", "keyword"),
            ("test", "built into Rust"),
            ("warden-sdk", "Warden SDK"),
            ("warden_graph", "Warden SDK"),
        ] {
            let reason = check_name(bad).unwrap_err();
            assert!(reason.contains(why), "{bad:?}: {reason}");
        }
    }

    #[test]
    fn placeholders_are_replaced_in_one_pass() {
        let values = [("name", "{{sdk}}"), ("sdk", "/s")];
        assert_eq!(
            render("a {{name}} {{sdk}} {{other}} {{ }}", &values),
            "a {{sdk}} /s {{other}} {{ }}"
        );
        assert_eq!(
            render("format!(\"{{}}\") {{", &values),
            "format!(\"{{}}\") {{"
        );
    }

    #[test]
    fn every_placeholder_of_every_template_is_filled() {
        let values = [
            ("name", "n"),
            ("lib_name", "n"),
            ("sdk_path", "/p"),
            ("sdk_dir", "/p"),
        ];
        for kind in [Kind::Auth, Kind::Graph] {
            for (file, template) in templates(kind) {
                let text = render(template, &values);
                assert!(!text.contains("{{"), "{kind:?} {file}: {text}");
            }
        }
    }

    #[test]
    fn toml_strings_and_shell_words_are_quoted() {
        assert_eq!(toml_escape(r#"/a "b"\c"#), r#"/a \"b\"\\c"#);
        assert_eq!(toml_escape("a\nb"), "a\\u000Ab");
        assert_eq!(shell_word(Path::new("dir/my-plugin")), "dir/my-plugin");
        assert_eq!(shell_word(Path::new("it's mine")), r"'it'\''s mine'");
    }

    /// A fake SDK tree: `guest-sdk/`, `guest-sdk/graph/`, a `Cargo.lock`.
    fn sdk_tree() -> tempfile::TempDir {
        let tree = tempfile::tempdir().unwrap();
        let sdk = tree.path().join("guest-sdk");
        std::fs::create_dir_all(sdk.join("graph")).unwrap();
        std::fs::write(sdk.join("Cargo.toml"), "[package]\nname = \"warden-sdk\"\n").unwrap();
        std::fs::write(
            sdk.join("graph/Cargo.toml"),
            "[package]\nname = \"warden-graph\"\n",
        )
        .unwrap();
        std::fs::write(tree.path().join("Cargo.lock"), "# the lock\n").unwrap();
        tree
    }

    fn args(dir: &Path, sdk: &Path) -> NewArgs {
        NewArgs {
            dir: dir.to_owned(),
            graph: false,
            name: None,
            sdk: Some(sdk.to_owned()),
        }
    }

    #[test]
    fn creates_a_crate_named_after_its_directory_with_the_lockfile() {
        let tree = sdk_tree();
        let out = tempfile::tempdir().unwrap();
        let dir = out.path().join("deep/my-plugin");
        let created = create(&args(&dir, &tree.path().join("guest-sdk"))).unwrap();
        assert_eq!(created.name, "my-plugin");
        let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
        let sdk = tree.path().canonicalize().unwrap().join("guest-sdk");
        assert!(manifest.contains("name = \"my-plugin\""), "{manifest}");
        assert!(
            manifest.contains(&format!("warden-sdk = {{ path = \"{}\" }}", sdk.display())),
            "{manifest}"
        );
        assert!(manifest.contains("\n[workspace]\n"), "{manifest}");
        let lock = std::fs::read_to_string(dir.join("Cargo.lock")).unwrap();
        assert_eq!(lock, "# the lock\n");
        for file in ["src/lib.rs", "langgraph.json", "README.md", ".gitignore"] {
            assert!(dir.join(file).is_file(), "{file}");
        }
        let report = created.to_string();
        assert!(report.contains("Bearer alice-token"), "{report}");
    }

    #[test]
    fn a_graph_depends_on_warden_graph_and_is_served_under_its_name() {
        let tree = sdk_tree();
        let out = tempfile::tempdir().unwrap();
        let dir = out.path().join("g");
        let mut args = args(&dir, tree.path());
        args.graph = true;
        args.name = Some("echo-graph".into());
        create(&args).unwrap();
        let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
        assert!(manifest.contains("warden-graph = { path = "), "{manifest}");
        assert!(manifest.contains("guest-sdk/graph\" }"), "{manifest}");
        let config: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("langgraph.json")).unwrap())
                .unwrap();
        assert_eq!(config["graphs"]["echo-graph"], ".");
    }

    #[test]
    fn refusals_write_nothing() {
        let tree = sdk_tree();
        let sdk = tree.path().join("guest-sdk");
        let out = tempfile::tempdir().unwrap();

        let full = out.path().join("full");
        std::fs::create_dir(&full).unwrap();
        std::fs::write(full.join("notes"), "mine").unwrap();
        let error = create(&args(&full, &sdk)).unwrap_err();
        assert!(matches!(error, ScaffoldError::NotEmpty(_)), "{error}");
        assert!(error.to_string().contains("is not empty"), "{error}");

        let bad_name = out.path().join("My Plugin");
        let error = create(&args(&bad_name, &sdk)).unwrap_err();
        assert!(error.to_string().contains("pass --name"), "{error}");
        assert!(!bad_name.exists());

        let nowhere = out.path().join("p");
        let error = create(&args(&nowhere, out.path())).unwrap_err();
        assert!(matches!(error, ScaffoldError::BadSdk { .. }), "{error}");
        assert!(!nowhere.exists());

        let empty = out.path().join("empty");
        std::fs::create_dir(&empty).unwrap();
        create(&args(&empty, &sdk)).unwrap();
        assert!(empty.join("Cargo.toml").is_file());
    }
}
