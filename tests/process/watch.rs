//! Live reload over a directory tree: a subdirectory that cannot be watched is skipped with one
//! warning naming it, and the rest of the tree is still watched.

use std::fs::File;
use std::path::PathBuf;

use nix::fcntl::{openat, OFlag};
use nix::sys::signal::Signal;
use nix::sys::stat::{mkdirat, Mode};

use crate::harness::start;
use crate::sockets::inspect;

/// The longest path inotify (and every other path-taking system call) accepts, NUL included.
const PATH_MAX: usize = 4096;

#[test]
fn a_subdirectory_that_cannot_be_watched_is_skipped_with_one_warning_naming_it() {
    let top = std::env::temp_dir().join(format!("scinit-watch-tree-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&top);
    std::fs::create_dir_all(top.join("src")).unwrap();
    // Tests run as root, which can read any directory whatever its mode. What fails for root
    // too is a path inotify refuses: a chain of directories whose path grows past PATH_MAX.
    // The last one is created relative to its parent, whose own path still fits.
    let name = "d".repeat(255);
    let mut deepest = top.clone();
    while deepest.join(&name).as_os_str().len() < PATH_MAX {
        deepest.push(&name);
        std::fs::create_dir(&deepest).unwrap();
    }
    let deepest_dir = File::open(&deepest).unwrap();
    mkdirat(&deepest_dir, name.as_str(), Mode::from_bits_truncate(0o755)).unwrap();
    let unwatchable: PathBuf = deepest.join(&name);

    let watch = top.display().to_string();
    let mut scinit =
        start(&["--watch-path", &watch, "--debounce-ms", "50"], &["inspect", "--stay"], &[]);
    let (first, _) = inspect(&mut scinit);
    let warning = scinit.stderr_line("cannot watch");
    assert!(
        warning.contains(&format!("'{}'", unwatchable.display()))
            && warning.contains("File name too long"),
        "{warning}"
    );

    // The rest of the tree is watched: a sibling subdirectory, and the deepest directory that
    // fits (written relative to it, as its children's paths are too long).
    std::fs::write(top.join("src").join("main.rs"), "v2").unwrap();
    let (second, _) = inspect(&mut scinit);
    assert_ne!(first, second);
    let mode = Mode::from_bits_truncate(0o644);
    let flags = OFlag::O_CREAT | OFlag::O_WRONLY | OFlag::O_CLOEXEC;
    drop(openat(&deepest_dir, "changed", flags, mode).unwrap());
    let (third, _) = inspect(&mut scinit);
    assert_ne!(second, third);

    scinit.signal(Signal::SIGTERM);
    assert_eq!(scinit.exit_code(), 143);
    let stderr = scinit.stderr();
    assert_eq!(stderr.matches("cannot watch").count(), 1, "{stderr}");
    std::fs::remove_dir_all(&top).unwrap();
}
