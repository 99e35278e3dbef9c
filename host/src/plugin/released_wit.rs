//! Released WIT contracts are frozen. `wit/released.txt` records a digest of
//! every released version folder; these tests fail when one changes (a
//! component built against it could stop loading) or when a contract this
//! host speaks is not recorded. Changes go in a new version folder.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::{AUTH_CONTRACT_VERSIONS, GRAPH_CONTRACT_IN_DEVELOPMENT, GRAPH_CONTRACT_VERSIONS};

/// The repository root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The `(folder, digest)` pairs of `wit/released.txt`.
fn released() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(root().join("wit/released.txt"))
        .expect("wit/released.txt lists the released WIT folders");
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| {
            let (folder, digest) = line
                .split_once(' ')
                .unwrap_or_else(|| panic!("wit/released.txt: `{line}` is not `<folder> <sha256>`"));
            (folder.to_owned(), digest.trim().to_owned())
        })
        .collect()
}

/// SHA-256 over the `sha256sum` lines of the files under `dir`, sorted by
/// their path relative to it (the shell line in `wit/released.txt`).
fn folder_digest(dir: &Path) -> String {
    fn files(dir: &Path, prefix: &str, out: &mut Vec<(String, PathBuf)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_str().unwrap();
            let name = format!("{prefix}{name}");
            if path.is_dir() {
                files(&path, &format!("{name}/"), out);
            } else {
                out.push((name, path));
            }
        }
    }
    let mut found = Vec::new();
    files(dir, "", &mut found);
    found.sort();
    let listing: String = found
        .iter()
        .map(|(name, path)| {
            let bytes = std::fs::read(path).unwrap();
            format!("{:x}  {name}\n", Sha256::digest(bytes))
        })
        .collect();
    format!("{:x}", Sha256::digest(listing))
}

#[test]
fn released_wit_folders_are_unchanged() {
    let changed: Vec<String> = released()
        .into_iter()
        .filter_map(|(folder, recorded)| {
            let dir = root().join(&folder);
            if !dir.is_dir() {
                return Some(format!("{folder} is released and must not be removed"));
            }
            let found = folder_digest(&dir);
            (found != recorded).then(|| {
                format!(
                    "{folder} is released and must not change; put changes in a new version \
                     folder (digest recorded in wit/released.txt: {recorded}, now: {found})"
                )
            })
        })
        .collect();
    assert!(changed.is_empty(), "{}", changed.join("\n"));
}

#[test]
fn the_contracts_this_host_speaks_are_released() {
    let released: Vec<String> = released().into_iter().map(|(folder, _)| folder).collect();
    let auth = AUTH_CONTRACT_VERSIONS
        .iter()
        .map(|version| format!("wit/auth/v{version}"));
    let graph = GRAPH_CONTRACT_VERSIONS
        .iter()
        .filter(|v| Some(**v) != GRAPH_CONTRACT_IN_DEVELOPMENT)
        .map(|version| format!("wit/graph/v{version}"));
    // `warden:auth@0.2.0` uses `warden:common@0.1.0`.
    let shared = ["wit/common/v0.1.0".to_owned()];
    for folder in auth.chain(graph).chain(shared) {
        assert!(
            released.contains(&folder),
            "{folder} is not in wit/released.txt"
        );
    }
    // A version in development is not frozen yet; once released, it is no
    // longer in development.
    if let Some(version) = GRAPH_CONTRACT_IN_DEVELOPMENT {
        let folder = format!("wit/graph/v{version}");
        assert!(
            !released.contains(&folder),
            "{folder} is released: it is no longer in development"
        );
    }
}
