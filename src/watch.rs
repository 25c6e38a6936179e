//! The file watcher for `--live-reload`: inotify, read in the same event loop as signals.
//!
//! A watched *file* is watched through its parent directory, filtered on its name: editors and
//! deploy tools replace files atomically (write a temporary, rename it over the original), and a
//! watch on the file's own inode would stay on the old, unlinked inode and miss every later
//! change. A watched *directory* is watched with all its subdirectories, including ones created
//! later; a subdirectory that cannot be watched is skipped with a warning. `.git` and editor
//! temporaries never trigger a restart. This module only says "something relevant changed"; the
//! trailing-edge debounce is the supervisor's (it is time logic).

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, WatchDescriptor};

use crate::exit_status::Fatal;
use crate::spawn;

/// What one inotify watch (one directory) is for.
#[derive(Debug)]
struct Watch {
    dir: PathBuf,
    /// `None`: any entry of the directory; `Some(names)`: only these entries.
    names: Option<Vec<OsString>>,
}

pub struct Watcher {
    inotify: Inotify,
    watches: HashMap<WatchDescriptor, Watch>,
}

fn mask() -> AddWatchFlags {
    AddWatchFlags::IN_CREATE
        | AddWatchFlags::IN_DELETE
        | AddWatchFlags::IN_MODIFY
        | AddWatchFlags::IN_CLOSE_WRITE
        | AddWatchFlags::IN_ATTRIB
        | AddWatchFlags::IN_MOVED_FROM
        | AddWatchFlags::IN_MOVED_TO
        | AddWatchFlags::IN_DELETE_SELF
        | AddWatchFlags::IN_MOVE_SELF
}

/// Names that never trigger a restart: version-control metadata and editor temporaries
/// (vim's `*.swp`/`*.swx` and its `4913` write probe, `*~` backups, emacs `.#*` locks).
pub fn is_ignored(name: &OsStr) -> bool {
    let bytes = name.as_bytes();
    bytes == b".git"
        || bytes == b"4913"
        || bytes.ends_with(b".swp")
        || bytes.ends_with(b".swx")
        || bytes.ends_with(b"~")
        || bytes.starts_with(b".#")
}

/// Resolves a command like `execvp` does, for the default watch path: a name with a `/` is a
/// path, if it exists; otherwise the first executable regular file among its
/// [`spawn::candidates`] in `PATH`. `None`: the command is not there.
pub fn resolve_command(command: &OsStr, path_var: Option<&OsStr>) -> Option<PathBuf> {
    if command.as_bytes().contains(&b'/') {
        return Some(PathBuf::from(command)).filter(|path| path.exists());
    }
    spawn::candidates(command, path_var).into_iter().find(|candidate| {
        std::fs::metadata(candidate)
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    })
}

/// A part of a directory tree that is not watched.
#[derive(Debug, PartialEq)]
enum Skipped {
    /// A subdirectory that cannot be watched, and so its whole subtree.
    Dir(PathBuf, Errno),
    /// A directory that is watched but cannot be listed: its subdirectories are not watched.
    Subdirs(PathBuf, Errno),
}

impl std::fmt::Display for Skipped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Skipped::Dir(path, errno) => {
                write!(f, "cannot watch '{}': {}; skipping it", path.display(), errno.desc())
            }
            Skipped::Subdirs(path, errno) => write!(
                f,
                "cannot list '{}': {}; its subdirectories are not watched",
                path.display(),
                errno.desc()
            ),
        }
    }
}

/// Calls `watch` on `dir` and on each of its subdirectories (ignored names excluded), parents
/// before their children. Only an error for `dir` itself is returned as one: a subdirectory
/// that cannot be watched (no permission; for root too, a FUSE mount closed to other users or a
/// path too long for inotify) is skipped with its subtree, so that one such directory does not
/// stop the whole tree from being watched; the skipped parts are returned for the warnings.
/// An explicit stack rather than recursion: a deep tree must not grow PID 1's stack.
fn walk(
    dir: &Path,
    watch: &mut impl FnMut(&Path) -> Result<(), Errno>,
) -> Result<Vec<Skipped>, Errno> {
    watch(dir)?;
    let mut skipped = Vec::new();
    let mut to_list = vec![dir.to_path_buf()];
    while let Some(parent) = to_list.pop() {
        let entries = match std::fs::read_dir(&parent) {
            Ok(entries) => entries,
            Err(e) => {
                let errno = e.raw_os_error().map_or(Errno::UnknownErrno, Errno::from_raw);
                skipped.push(Skipped::Subdirs(parent, errno));
                continue;
            }
        };
        for entry in entries.flatten() {
            let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
            if !is_dir || is_ignored(&entry.file_name()) {
                continue;
            }
            let path = entry.path();
            match watch(&path) {
                Ok(()) => to_list.push(path),
                Err(errno) => skipped.push(Skipped::Dir(path, errno)),
            }
        }
    }
    Ok(skipped)
}

impl Watcher {
    /// Watches every path. A missing path is an error (one line): watching nothing silently
    /// would make `--live-reload` a no-op nobody notices. Below a directory, a subdirectory that
    /// cannot be watched is only a warning (see [`walk`]).
    pub fn new(paths: &[PathBuf]) -> Result<Watcher, Fatal> {
        let inotify = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)
            .map_err(|e| Fatal::setup(format!("cannot start the file watcher: {}", e.desc())))?;
        let mut watcher = Watcher { inotify, watches: HashMap::new() };
        for path in paths {
            let meta = std::fs::metadata(path)
                .map_err(|e| Fatal::setup(format!("cannot watch '{}': {e}", path.display())))?;
            let added = if meta.is_dir() {
                watcher.add_tree(path)
            } else {
                let parent = match path.parent() {
                    Some(p) if !p.as_os_str().is_empty() => p,
                    _ => Path::new("."),
                };
                let name = path.file_name().map(OsString::from).unwrap_or_default();
                watcher.add(parent, Some(name))
            };
            added.map_err(|e| {
                Fatal::setup(format!("cannot watch '{}': {}", path.display(), e.desc()))
            })?;
        }
        Ok(watcher)
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.inotify.as_fd()
    }

    fn add(&mut self, dir: &Path, name: Option<OsString>) -> Result<(), Errno> {
        let wd = self.inotify.add_watch(dir, mask())?;
        // inotify returns the same descriptor for a directory watched twice: merge the filters.
        let watch = self
            .watches
            .entry(wd)
            .or_insert_with(|| Watch { dir: dir.to_path_buf(), names: Some(Vec::new()) });
        match (&mut watch.names, name) {
            (Some(names), Some(name)) => names.push(name),
            (names, None) => *names = None,
            (None, Some(_)) => {}
        }
        Ok(())
    }

    /// Watches a directory and its subdirectories (see [`walk`]); the error is only for `dir`
    /// itself, each part of the tree that is skipped gets one warning.
    fn add_tree(&mut self, dir: &Path) -> Result<(), Errno> {
        for skipped in walk(dir, &mut |path| self.add(path, None))? {
            warn!("{skipped}");
        }
        Ok(())
    }

    /// Reads every pending event; true if at least one is relevant.
    pub fn changed(&mut self) -> bool {
        let mut relevant = false;
        loop {
            let events = match self.inotify.read_events() {
                Ok(events) => events,
                Err(Errno::EAGAIN) => break,
                Err(Errno::EINTR) => continue,
                Err(errno) => {
                    warn!("reading file change events failed: {}", errno.desc());
                    break;
                }
            };
            for event in events {
                if event.mask.contains(AddWatchFlags::IN_Q_OVERFLOW) {
                    // Events were lost: assume the worst.
                    relevant = true;
                    continue;
                }
                if event.mask.contains(AddWatchFlags::IN_IGNORED) {
                    self.watches.remove(&event.wd);
                    continue;
                }
                let Some(watch) = self.watches.get(&event.wd) else {
                    continue;
                };
                let matches = match (&event.name, &watch.names) {
                    (Some(name), _) if is_ignored(name) => false,
                    (Some(name), Some(names)) => names.contains(name),
                    _ => true,
                };
                if !matches {
                    continue;
                }
                debug!(
                    "file change: {:?} in {} ({:?})",
                    event.name,
                    watch.dir.display(),
                    event.mask
                );
                relevant = true;
                let new_dir = event.mask.contains(AddWatchFlags::IN_ISDIR)
                    && event.mask.intersects(AddWatchFlags::IN_CREATE | AddWatchFlags::IN_MOVED_TO)
                    && watch.names.is_none();
                if let (true, Some(name)) = (new_dir, &event.name) {
                    let path = watch.dir.join(name);
                    if let Err(errno) = self.add_tree(&path) {
                        warn!("cannot watch new directory '{}': {}", path.display(), errno.desc());
                    }
                }
            }
        }
        relevant
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // inotify queues events inside the system call that causes them, so each check below
    // reads them right after the change, without waiting.

    #[test]
    fn git_and_editor_temporaries_are_ignored() {
        for name in [".git", "main.rs.swp", ".main.rs.swx", "main.rs~", ".#main.rs", "4913"] {
            assert!(is_ignored(OsStr::new(name)), "{name}");
        }
        for name in ["main.rs", "app", ".gitignore", "swp", "49130", "config.toml"] {
            assert!(!is_ignored(OsStr::new(name)), "{name}");
        }
    }

    #[test]
    fn commands_resolve_through_path_like_execvp() {
        let dir = temp_dir("resolve");
        let tool = dir.join("tool");
        std::fs::write(&tool, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(dir.join("data"), "").unwrap();
        let path = format!("/nonexistent:{}", dir.display());
        assert_eq!(resolve_command(OsStr::new("tool"), Some(OsStr::new(&path))), Some(tool));
        // Not executable, or absent: not found.
        assert_eq!(resolve_command(OsStr::new("data"), Some(OsStr::new(&path))), None);
        assert_eq!(resolve_command(OsStr::new("absent"), Some(OsStr::new(&path))), None);
        // A name with a slash is taken as a path, searched nowhere.
        let data = dir.join("data");
        assert_eq!(resolve_command(data.as_os_str(), Some(OsStr::new("/nonexistent"))), Some(data));
        assert_eq!(resolve_command(OsStr::new("./x/y"), None), None);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn missing_watch_path_is_an_error() {
        let error = Watcher::new(&[PathBuf::from("/nonexistent/scinit-watch")]).err().unwrap();
        assert_eq!(error.code, 1);
        assert!(
            error.message.starts_with("cannot watch '/nonexistent/scinit-watch'"),
            "{}",
            error.message
        );
    }

    #[test]
    fn atomic_replace_of_a_watched_file_is_seen_and_siblings_are_not() {
        let dir = temp_dir("replace");
        let file = dir.join("app.conf");
        std::fs::write(&file, "a").unwrap();
        let mut watcher = Watcher::new(std::slice::from_ref(&file)).unwrap();

        std::fs::write(dir.join("other"), "x").unwrap();
        std::fs::write(dir.join(".app.conf.swp"), "x").unwrap();
        assert!(!watcher.changed());

        std::fs::write(dir.join("app.conf.tmp"), "b").unwrap();
        std::fs::rename(dir.join("app.conf.tmp"), &file).unwrap();
        assert!(watcher.changed());
        // A second replace is still seen: the watch is on the directory, not the old inode.
        std::fs::write(dir.join("app.conf.tmp"), "c").unwrap();
        std::fs::rename(dir.join("app.conf.tmp"), &file).unwrap();
        assert!(watcher.changed());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn new_subdirectories_of_a_watched_directory_are_watched_too() {
        let dir = temp_dir("tree");
        std::fs::create_dir(dir.join(".git")).unwrap();
        let mut watcher = Watcher::new(std::slice::from_ref(&dir)).unwrap();
        std::fs::write(dir.join(".git").join("index"), "x").unwrap();
        assert!(!watcher.changed());
        std::fs::create_dir(dir.join("src")).unwrap();
        assert!(watcher.changed());
        std::fs::write(dir.join("src").join("main.rs"), "x").unwrap();
        assert!(watcher.changed());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_subdirectory_that_cannot_be_watched_is_skipped_with_its_subtree_only() {
        let dir = temp_dir("walk");
        for sub in ["a/a1", "b/b1/b2", ".git/objects", "c"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        std::fs::write(dir.join("a").join("file"), "").unwrap();
        let failing = dir.join("b");
        let mut watched = Vec::new();
        let skipped = walk(&dir, &mut |path| {
            if path == failing {
                return Err(Errno::EACCES);
            }
            watched.push(path.to_path_buf());
            Ok(())
        })
        .unwrap();
        watched.sort();
        assert_eq!(watched, [dir.clone(), dir.join("a"), dir.join("a/a1"), dir.join("c")]);
        assert_eq!(skipped, [Skipped::Dir(failing.clone(), Errno::EACCES)]);
        assert_eq!(
            skipped[0].to_string(),
            format!("cannot watch '{}': Permission denied; skipping it", failing.display())
        );

        // A directory watched but gone before it is listed: only its subdirectories are lost.
        let vanishing = dir.join("c");
        let skipped = walk(&dir, &mut |path| {
            if path == vanishing {
                std::fs::remove_dir(path).unwrap();
            }
            Ok(())
        })
        .unwrap();
        assert_eq!(skipped, [Skipped::Subdirs(vanishing, Errno::ENOENT)]);

        // Only the top directory failing fails the walk.
        assert_eq!(walk(&dir, &mut |_| Err(Errno::EACCES)), Err(Errno::EACCES));
        std::fs::remove_dir_all(dir).unwrap();
    }

    fn temp_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("scinit-watch-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
