//! The compiled-artefact cache trusts only what this server wrote: every
//! artefact carries an HMAC tag made with a key kept outside the data
//! directory, and one whose tag does not verify (tampered, another
//! component's under this digest, another key's) is compiled again, never
//! loaded. A cache directory others can write, and a key file others can
//! read, are refused.
//!
//! Every test keeps its cache and its key in its own temporary directory.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use warden::plugin::{ArtefactKeySource, AuthPlugin, Limits, Runtime, RuntimeOptions};

use crate::support::{bearer, component, login};

/// A runtime caching in `cache`, with the key in `key`.
fn runtime(cache: &Path, key: &Path) -> Runtime {
    Runtime::new(RuntimeOptions {
        cache_dir: Some(cache.to_owned()),
        artefact_key: ArtefactKeySource::File(key.to_owned()),
        ..RuntimeOptions::default()
    })
    .expect("the runtime starts")
}

/// Loads `crate_name` in a fresh runtime (an empty in-memory cache: it
/// reads the disk), checks it with `check`, and drops the runtime, which
/// waits for the artefact to be written: the plugin's digest.
fn load_once(
    cache: &Path,
    key: &Path,
    crate_name: &str,
    check: impl FnOnce(&Arc<AuthPlugin>),
) -> String {
    let runtime = runtime(cache, key);
    let plugin = AuthPlugin::load(
        &runtime,
        crate_name,
        &component(crate_name),
        Limits::default(),
    )
    .unwrap_or_else(|e| panic!("{crate_name} loads: {e}"));
    check(&plugin);
    plugin.info().digest.clone()
}

/// The reference policy, not anything else: a known token is its user, an
/// unknown one is refused.
fn behaves_as_reference(plugin: &Arc<AuthPlugin>) {
    let user = login(plugin, &bearer("user1-token"));
    assert_eq!(user.identity.as_str(), "user1");
    let forged = plugin
        .session()
        .expect("instantiates")
        .authenticate(&bearer("forged"))
        .expect("no fault");
    assert_eq!(
        forged.as_ref().map_err(|e| e.status).err(),
        Some(401),
        "a forged token was accepted: {forged:?}"
    );
}

/// The one artefact of the component with `digest` in `cache`.
fn artefact(cache: &Path, digest: &str) -> PathBuf {
    let found: Vec<_> = std::fs::read_dir(cache)
        .unwrap()
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| {
            let name = path.file_name().unwrap().to_string_lossy();
            name.starts_with(digest) && name.ends_with(".cwasm")
        })
        .collect();
    assert_eq!(found.len(), 1, "{found:?}");
    found.into_iter().next().unwrap()
}

/// What changes when a file is replaced or written.
fn stamp(path: &Path) -> (u64, i64, i64, Vec<u8>) {
    let meta = std::fs::metadata(path).unwrap();
    (
        meta.ino(),
        meta.mtime(),
        meta.mtime_nsec(),
        std::fs::read(path).unwrap(),
    )
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

/// Log output, captured for this thread.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// `f`'s result and the warnings logged on this thread meanwhile (loading
/// from the cache, and reading the key, happen on the loading thread).
fn logged<T>(f: impl FnOnce() -> T) -> (T, String) {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_max_level(tracing::Level::WARN)
        .with_writer(move || writer.clone())
        .finish();
    let result = tracing::subscriber::with_default(subscriber, f);
    let text = String::from_utf8_lossy(&captured.0.lock().unwrap()).into_owned();
    (result, text)
}

/// No warning about the cache or its key.
fn assert_quiet(log: &str) {
    assert!(
        !log.contains("warden::plugin::cache") && !log.contains("warden::plugin::artefact_key"),
        "{log}"
    );
}

/// A temporary directory with `data/plugins` (the cache, created by the
/// runtime) and `state/warden/artefact.key` (the key, likewise).
struct Dirs {
    _root: tempfile::TempDir,
    cache: PathBuf,
    key: PathBuf,
}

fn dirs() -> Dirs {
    let root = tempfile::tempdir().unwrap();
    Dirs {
        cache: root.path().join("data/plugins"),
        key: root.path().join("state/warden/artefact.key"),
        _root: root,
    }
}

/// The artefact at `file` (of `reference_auth`) has been tampered with: a
/// runtime with `key` does not load it but compiles the reference policy,
/// says so naming the file, and replaces it with an artefact that the next
/// runtime loads as it is.
fn assert_refused_and_replaced(cache: &Path, key: &Path, file: &Path) {
    let tampered = std::fs::read(file).unwrap();
    let (_, log) = logged(|| load_once(cache, key, "reference_auth", behaves_as_reference));
    assert!(log.contains("recompiling"), "{log}");
    assert!(log.contains(&file.display().to_string()), "{log}");
    let rewritten = stamp(file);
    assert_ne!(
        rewritten.3, tampered,
        "the tampered artefact is still there"
    );

    let (_, log) = logged(|| load_once(cache, key, "reference_auth", behaves_as_reference));
    assert_quiet(&log);
    assert_eq!(
        stamp(file),
        rewritten,
        "the rewritten artefact was not reused"
    );
}

#[test]
fn an_artefact_is_reused_by_the_next_runtime_with_the_same_key() {
    let Dirs { cache, key, .. } = &dirs();
    let (digest, log) = logged(|| load_once(cache, key, "reference_auth", behaves_as_reference));
    assert_quiet(&log);
    assert_eq!(mode(key), 0o600, "a new key file is private");
    assert_eq!(mode(key.parent().unwrap()), 0o700);
    assert_eq!(mode(cache), 0o700, "a new cache directory is private");
    let file = artefact(cache, &digest);
    assert_eq!(mode(&file), 0o600);
    let written = stamp(&file);

    // Loaded, not compiled: a compilation would have replaced the file.
    let (again, log) = logged(|| load_once(cache, key, "reference_auth", behaves_as_reference));
    assert_eq!(again, digest);
    assert_quiet(&log);
    assert_eq!(stamp(&file), written);
    assert_eq!(std::fs::read_dir(cache).unwrap().count(), 1);
}

#[test]
fn another_components_artefact_under_this_digest_is_not_loaded() {
    let Dirs { cache, key, .. } = &dirs();
    let hostile = load_once(cache, key, "fixture_hostile", |_| {});
    let reference = load_once(cache, key, "reference_auth", behaves_as_reference);
    let (hostile, reference) = (artefact(cache, &hostile), artefact(cache, &reference));

    // The hostile fixture (which lets anyone in) compiled and tagged by this
    // very server, under the reference policy's name: the tag binds the
    // digest, so it does not verify.
    std::fs::copy(&hostile, &reference).unwrap();
    assert_refused_and_replaced(cache, key, &reference);

    // The same artefact without its tag, as an attacker would write it.
    let bytes = std::fs::read(&hostile).unwrap();
    let elf = bytes
        .windows(4)
        .position(|w| w == b"\x7fELF")
        .expect("an ELF artefact");
    std::fs::write(&reference, &bytes[elf..]).unwrap();
    assert_refused_and_replaced(cache, key, &reference);

    // The tag kept, the artefact's own code with one byte changed.
    let mut bytes = std::fs::read(&reference).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&reference, &bytes).unwrap();
    assert_refused_and_replaced(cache, key, &reference);

    // Truncated, and empty.
    let bytes = std::fs::read(&reference).unwrap();
    std::fs::write(&reference, &bytes[..bytes.len() - 1]).unwrap();
    assert_refused_and_replaced(cache, key, &reference);
    std::fs::write(&reference, b"").unwrap();
    assert_refused_and_replaced(cache, key, &reference);
}

#[test]
fn an_artefact_tagged_with_another_key_is_not_loaded() {
    let first = dirs();
    let digest = load_once(&first.cache, &first.key, "reference_auth", |_| {});
    let original = artefact(&first.cache, &digest);

    // The cache copied to another server's data directory, with its own key.
    let second = dirs();
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&second.cache)
        .unwrap();
    let copy = second.cache.join(original.file_name().unwrap());
    std::fs::copy(&original, &copy).unwrap();
    assert_refused_and_replaced(&second.cache, &second.key, &copy);

    // And the first key does not accept the second's artefact either.
    std::fs::copy(&copy, &original).unwrap();
    assert_refused_and_replaced(&first.cache, &first.key, &original);
}

#[test]
fn a_cache_directory_others_can_write_is_not_used() {
    let Dirs { cache, key, .. } = &dirs();
    std::fs::create_dir_all(cache).unwrap();
    std::fs::set_permissions(cache, std::fs::Permissions::from_mode(0o777)).unwrap();
    let (_, log) = logged(|| load_once(cache, key, "reference_auth", behaves_as_reference));
    assert!(log.contains("not using the compiled-plugin cache"), "{log}");
    assert!(log.contains("0777"), "{log}");
    assert_eq!(std::fs::read_dir(cache).unwrap().count(), 0);

    // Group-writable is as bad.
    std::fs::set_permissions(cache, std::fs::Permissions::from_mode(0o770)).unwrap();
    let (_, log) = logged(|| load_once(cache, key, "reference_auth", behaves_as_reference));
    assert!(log.contains("not using the compiled-plugin cache"), "{log}");
    assert_eq!(std::fs::read_dir(cache).unwrap().count(), 0);
}

#[test]
fn a_cache_directory_another_user_owns_is_not_used() {
    let Dirs { cache, key, .. } = &dirs();
    std::fs::create_dir_all(cache).unwrap();
    std::fs::set_permissions(cache, std::fs::Permissions::from_mode(0o755)).unwrap();
    // Only root can give a directory away; otherwise there is nothing to test.
    if std::os::unix::fs::chown(cache, Some(65534), Some(65534)).is_err() {
        return;
    }
    let (_, log) = logged(|| load_once(cache, key, "reference_auth", behaves_as_reference));
    assert!(log.contains("not using the compiled-plugin cache"), "{log}");
    assert!(log.contains("owned by uid 65534"), "{log}");
    assert_eq!(std::fs::read_dir(cache).unwrap().count(), 0);
}

#[test]
fn a_key_file_others_can_read_is_refused() {
    let Dirs { cache, key, .. } = &dirs();
    std::fs::create_dir_all(key.parent().unwrap()).unwrap();
    std::fs::write(key, [7; 32]).unwrap();
    std::fs::set_permissions(key, std::fs::Permissions::from_mode(0o644)).unwrap();

    let (digest, log) = logged(|| load_once(cache, key, "reference_auth", behaves_as_reference));
    assert!(log.contains("refusing the artefact key file"), "{log}");
    assert!(log.contains("0644"), "{log}");
    // Left as it is: neither used nor "fixed".
    assert_eq!(mode(key), 0o644);
    assert_eq!(std::fs::read(key).unwrap(), [7; 32]);

    // The key lived as long as that runtime: the next one (refusing the
    // file again) cannot trust what it cached.
    let file = artefact(cache, &digest);
    let (_, log) = logged(|| load_once(cache, key, "reference_auth", behaves_as_reference));
    assert!(log.contains("refusing the artefact key file"), "{log}");
    assert!(log.contains("recompiling"), "{log}");
    assert!(log.contains(&file.display().to_string()), "{log}");
}

#[test]
fn a_key_file_another_user_owns_or_a_link_is_refused() {
    let Dirs { cache, key, .. } = &dirs();
    let parent = key.parent().unwrap();
    std::fs::create_dir_all(parent).unwrap();
    let real = parent.join("real.key");
    std::fs::write(&real, [7; 32]).unwrap();
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::os::unix::fs::symlink(&real, key).unwrap();
    let (_, log) = logged(|| load_once(cache, key, "reference_auth", behaves_as_reference));
    assert!(log.contains("refusing the artefact key file"), "{log}");

    // Only root can give a file away.
    std::fs::remove_file(key).unwrap();
    std::fs::rename(&real, key).unwrap();
    if std::os::unix::fs::chown(key, Some(65534), Some(65534)).is_err() {
        return;
    }
    let (_, log) = logged(|| load_once(cache, key, "reference_auth", behaves_as_reference));
    assert!(log.contains("refusing the artefact key file"), "{log}");
    assert!(log.contains("owned by uid 65534"), "{log}");
}
