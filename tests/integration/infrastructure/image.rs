//! The image factory: an in-memory tar context built `FROM scratch` with the recipe humans use
//! too (`docker/Dockerfile.test`), tagged by a hash of everything in it. An unchanged tree reuses
//! its image; a changed binary always gets a fresh one.

use std::collections::{BTreeMap, HashMap};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};

use anyhow::{anyhow, bail, Context, Result};

use super::engine::{self, LABEL_SUITE};
use crate::static_build::{static_binaries, StaticBinaries};

/// Where Debian's busybox-static puts its binary.
const BUSYBOX: &str = "/bin/busybox";
/// Repository part of every test image tag.
pub const IMAGE_REPOSITORY: &str = "scinit-test";
/// Marks images built by the factory: kept between runs as a cache, listed by `make clean-images`.
pub const LABEL_IMAGE: &str = "scinit.test.image";
/// The machine that built an image ([`engine::machine`]): at the end of a run, `tests/run-suite`
/// removes the stale images of its own machine only, never those another runner sharing the
/// engine may still use.
pub const LABEL_BUILDER: &str = "scinit.test.builder";

/// One entry of the image's root file system. A file's `mtime` is 0 except for files copied
/// from a host tree, which keep theirs: Python trusts a `__pycache__` file only while its
/// source's mtime is the one recorded in it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Entry {
    File { data: Arc<Vec<u8>>, mode: u32, mtime: u64 },
    Symlink { target: String },
    Dir { mode: u32 },
}

/// The root file system of a test image, path → entry (sorted, so the hash is stable).
#[derive(Debug, Clone, Default)]
pub struct RootFs {
    entries: BTreeMap<String, Entry>,
}

impl RootFs {
    /// `/tmp`, `/bin/busybox` with its applet links, every helper of `images/binaries.txt` at
    /// its path, and every file of `fixtures/test_scripts/` under `/scripts/`.
    pub fn standard(binaries: &StaticBinaries) -> Result<RootFs> {
        let mut fs = RootFs::default();
        fs.dir("/tmp", 0o1777);
        for helper in &binaries.helpers {
            if let Some(at) = &helper.image_path {
                fs.host_file(at, &binaries.path(&helper.binary))?;
            }
        }
        fs.busybox()?;
        let scripts = crate::static_build::workspace_root().join("fixtures/test_scripts");
        for entry in
            std::fs::read_dir(&scripts).with_context(|| format!("listing {}", scripts.display()))?
        {
            let path = entry?.path();
            if let Some(name) = path.file_name().and_then(|n| n.to_str()) {
                if path.is_file() {
                    let data = std::fs::read(&path)
                        .with_context(|| format!("reading {}", path.display()))?;
                    fs.file(&format!("/scripts/{name}"), data, 0o755);
                }
            }
        }
        Ok(fs)
    }

    pub fn dir(&mut self, path: &str, mode: u32) -> &mut Self {
        self.entries.insert(path.to_string(), Entry::Dir { mode });
        self
    }

    pub fn file(&mut self, path: &str, data: Vec<u8>, mode: u32) -> &mut Self {
        self.entries.insert(path.to_string(), Entry::File { data: Arc::new(data), mode, mtime: 0 });
        self
    }

    pub fn symlink(&mut self, path: &str, target: &str) -> &mut Self {
        self.entries.insert(path.to_string(), Entry::Symlink { target: target.to_string() });
        self
    }

    /// Copies a host executable to `path`, reading through symlinks.
    pub fn host_file(&mut self, path: &str, host: &Path) -> Result<&mut Self> {
        let data = read_cached(host)?;
        self.entries.insert(path.to_string(), Entry::File { data, mode: 0o755, mtime: 0 });
        Ok(self)
    }

    /// Copies a host executable to `path` together with its dynamic-library closure, each
    /// library at the same absolute path as on the host (Debian's loader needs no cache).
    pub fn host_program(&mut self, path: &str, host: &Path) -> Result<&mut Self> {
        self.host_file(path, host)?;
        self.shared_libraries(host)
    }

    /// Copies the libraries `ldd` lists for `host`, each at its host path.
    fn shared_libraries(&mut self, host: &Path) -> Result<&mut Self> {
        for lib in ldd_closure(host)? {
            let data = read_cached(&lib)?;
            let path = lib.to_string_lossy().into_owned();
            self.entries.insert(path, Entry::File { data, mode: 0o755, mtime: 0 });
        }
        Ok(self)
    }

    /// Copies the host directory `root` to the same path: directories and files with their
    /// modes (files with their mtimes too), symlinks as symlinks, except the sub-paths in `skip`
    /// (relative to `root`, e.g. `test` or `lib-dynload/_sqlite3.so`) and everything under them.
    /// ELF files (a Python's extension modules) come with their shared libraries, as a
    /// [`RootFs::host_program`] does, so that whatever loads them finds what they link.
    pub fn host_tree(&mut self, root: &Path, skip: &[&str]) -> Result<&mut Self> {
        let skip: Vec<&str> = skip.iter().map(|s| s.trim_end_matches('/')).collect();
        self.host_subtree(root, "", &skip)?;
        Ok(self)
    }

    fn host_subtree(&mut self, host: &Path, relative: &str, skip: &[&str]) -> Result<()> {
        let meta = std::fs::symlink_metadata(host)
            .with_context(|| format!("reading {}", host.display()))?;
        let path = host.to_str().with_context(|| format!("{} is not UTF-8", host.display()))?;
        let mode = meta.permissions().mode() & 0o7777;
        if meta.file_type().is_symlink() {
            let target = std::fs::read_link(host)
                .with_context(|| format!("reading the link {}", host.display()))?;
            let target = target
                .to_str()
                .with_context(|| format!("the link {} is not UTF-8", host.display()))?;
            self.symlink(path, target);
        } else if meta.is_file() {
            let data = read_cached(host)?;
            let elf = data.starts_with(b"\x7fELF");
            let mtime = u64::try_from(meta.mtime()).unwrap_or(0);
            self.entries.insert(path.to_string(), Entry::File { data, mode, mtime });
            if elf {
                self.shared_libraries(host)?;
            }
        } else if meta.is_dir() {
            self.dir(path, mode);
            for entry in
                std::fs::read_dir(host).with_context(|| format!("listing {}", host.display()))?
            {
                let entry = entry.with_context(|| format!("listing {}", host.display()))?;
                let name = entry.file_name();
                let name = name
                    .to_str()
                    .with_context(|| format!("a name in {} is not UTF-8", host.display()))?;
                let below = if relative.is_empty() {
                    name.to_string()
                } else {
                    format!("{relative}/{name}")
                };
                if !skip.contains(&below.as_str()) {
                    self.host_subtree(&entry.path(), &below, skip)?;
                }
            }
        } else {
            bail!("{} is neither a file, a directory nor a symlink", host.display());
        }
        Ok(())
    }

    fn busybox(&mut self) -> Result<()> {
        let host = Path::new(BUSYBOX);
        if !host.exists() {
            bail!("{BUSYBOX} is missing: install Debian's busybox-static (`make deps`)");
        }
        self.host_file("/bin/busybox", host)?;
        let list = Command::new(host).arg("--list").output().context("running busybox --list")?;
        for applet in String::from_utf8_lossy(&list.stdout).split_whitespace() {
            if applet != "busybox" {
                self.symlink(&format!("/bin/{applet}"), "busybox");
            }
        }
        Ok(())
    }

    /// A hash of the recipe and every entry: the image tag.
    fn content_hash(&self, dockerfile: &str) -> u64 {
        let mut h = Fnv64::default();
        h.write(dockerfile.as_bytes());
        for (path, entry) in &self.entries {
            h.write(path.as_bytes());
            match entry {
                Entry::File { data, mode, mtime } => {
                    h.write(b"f");
                    h.write(&mode.to_le_bytes());
                    h.write(&mtime.to_le_bytes());
                    h.write(data);
                }
                Entry::Symlink { target } => {
                    h.write(b"l");
                    h.write(target.as_bytes());
                }
                Entry::Dir { mode } => {
                    h.write(b"d");
                    h.write(&mode.to_le_bytes());
                }
            }
            h.write(b"\0");
        }
        h.0
    }

    /// The build context: the Dockerfile plus `rootfs/...`, with mtime 0 (a host tree's files:
    /// theirs) so that the same content gives the same context.
    fn tar_context(&self, dockerfile: &str) -> Result<Vec<u8>> {
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_size(dockerfile.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        builder.append_data(&mut header, "Dockerfile", dockerfile.as_bytes())?;
        for (path, entry) in &self.entries {
            let name = format!("rootfs{path}");
            let mut header = tar::Header::new_gnu();
            header.set_mtime(0);
            match entry {
                Entry::File { data, mode, mtime } => {
                    header.set_mtime(*mtime);
                    header.set_entry_type(tar::EntryType::Regular);
                    header.set_size(data.len() as u64);
                    header.set_mode(*mode);
                    builder.append_data(&mut header, &name, data.as_slice())?;
                }
                Entry::Symlink { target } => {
                    header.set_entry_type(tar::EntryType::Symlink);
                    header.set_size(0);
                    header.set_mode(0o777);
                    builder.append_link(&mut header, &name, target)?;
                }
                Entry::Dir { mode } => {
                    header.set_entry_type(tar::EntryType::Directory);
                    header.set_size(0);
                    header.set_mode(*mode);
                    builder.append_data(&mut header, format!("{name}/"), std::io::empty())?;
                }
            }
        }
        Ok(builder.into_inner()?)
    }
}

/// The recipe shared with humans (`make image`).
fn dockerfile() -> Result<&'static str> {
    static RECIPE: OnceLock<Result<String, String>> = OnceLock::new();
    RECIPE
        .get_or_init(|| {
            let path = crate::static_build::workspace_root().join("docker/Dockerfile.test");
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))
        })
        .as_deref()
        .map_err(|e| anyhow!("reading the test image recipe {e}"))
}

/// Builds the image for `fs` unless an image with its content tag exists; returns the tag.
/// Concurrent callers in one process wait for a single build, and so do other test processes
/// on this machine (nextest runs each test in its own): one builds under a lock file named by
/// the content, the others wait for the lock and then find the image. Without it, processes
/// built the same content at once and every loser's image was left behind untagged.
pub async fn ensure(fs: &RootFs) -> Result<String> {
    static BUILDS: OnceLock<Mutex<HashMap<u64, Arc<tokio::sync::OnceCell<String>>>>> =
        OnceLock::new();
    let recipe = dockerfile()?;
    let hash = fs.content_hash(recipe);
    let cell = {
        let mut builds = BUILDS
            .get_or_init(Default::default)
            .lock()
            .map_err(|_| anyhow!("image build table poisoned"))?;
        builds.entry(hash).or_default().clone()
    };
    let tag = cell
        .get_or_try_init(|| async {
            let tag = format!("{IMAGE_REPOSITORY}:{hash:016x}");
            let docker = engine::client().await?;
            if engine::image_exists(&docker, &tag).await {
                return Ok(tag);
            }
            let _lock = build_lock(hash).await?;
            if engine::image_exists(&docker, &tag).await {
                return Ok(tag);
            }
            let labels =
                [(LABEL_SUITE, "1"), (LABEL_IMAGE, "1"), (LABEL_BUILDER, engine::machine())];
            engine::build_image(&docker, fs.tar_context(recipe)?, &tag, &labels).await?;
            Ok::<_, anyhow::Error>(tag)
        })
        .await?;
    record_use(tag)?;
    Ok(tag.clone())
}

/// An exclusive lock on `<temp dir>/scinit-test-images/<hash>.lock`, held until dropped (or the
/// process dies). The directory is shared by every user, and `flock` works on a read-only
/// descriptor, so a lock file another user made is usable too.
async fn build_lock(hash: u64) -> Result<nix::fcntl::Flock<std::fs::File>> {
    let dir = std::env::temp_dir().join("scinit-test-images");
    tokio::task::spawn_blocking(move || {
        if std::fs::create_dir(&dir).is_ok() {
            // Sticky and writable by all, like /tmp: any user's test run may lock here.
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o1777))?;
        }
        let path = dir.join(format!("{hash:016x}.lock"));
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .or_else(|_| std::fs::File::open(&path))
            .with_context(|| format!("opening the image build lock {}", path.display()))?;
        nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive)
            .map_err(|(_, e)| anyhow!("locking {}: {e}", path.display()))
    })
    .await?
}

/// Appends `tag` to `images-used.txt` in the results directory: at the end of a run,
/// `tests/run-suite` removes every suite image the run did not use, so the cache holds the
/// current content and nothing stale.
fn record_use(tag: &str) -> Result<()> {
    use std::io::Write;
    let dir = super::results::results_dir();
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join("images-used.txt");
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    writeln!(file, "{tag}").with_context(|| format!("writing {}", path.display()))
}

/// The static binaries of this tree (scinit, testkit, broken-init), built on first use; the
/// build blocks, so it runs off the async threads.
pub async fn built_binaries() -> Result<StaticBinaries> {
    tokio::task::spawn_blocking(|| static_binaries().cloned()).await?.map_err(|e| anyhow!(e))
}

/// Files are read once per process: many images share busybox and the testkit.
fn read_cached(path: &Path) -> Result<Arc<Vec<u8>>> {
    static FILES: OnceLock<Mutex<HashMap<PathBuf, Arc<Vec<u8>>>>> = OnceLock::new();
    let mut files =
        FILES.get_or_init(Default::default).lock().map_err(|_| anyhow!("file cache poisoned"))?;
    if let Some(data) = files.get(path) {
        return Ok(data.clone());
    }
    let data =
        Arc::new(std::fs::read(path).with_context(|| format!("reading {}", path.display()))?);
    files.insert(path.to_path_buf(), data.clone());
    Ok(data)
}

/// The shared libraries `ldd` lists for `binary` (empty for a static binary).
fn ldd_closure(binary: &Path) -> Result<Vec<PathBuf>> {
    let out = Command::new("ldd").arg(binary).output().context("running ldd")?;
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(parse_ldd(&text))
}

fn parse_ldd(text: &str) -> Vec<PathBuf> {
    text.lines()
        .filter_map(|line| {
            let line = line.trim();
            let path = match line.split_once("=>") {
                Some((_, rest)) => rest.split_whitespace().next()?,
                None => line.split_whitespace().next()?,
            };
            path.starts_with('/').then(|| PathBuf::from(path))
        })
        .collect()
}

/// FNV-1a, 64 bit: stable across runs and toolchains, unlike `DefaultHasher`.
struct Fnv64(u64);

impl Default for Fnv64 {
    fn default() -> Self {
        Fnv64(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv64 {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ldd_output_gives_the_library_paths() {
        let text = "\tlinux-vdso.so.1 (0x00007f)\n\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x7f)\n\t/lib64/ld-linux-x86-64.so.2 (0x7f)\n";
        assert_eq!(
            parse_ldd(text),
            vec![
                PathBuf::from("/lib/x86_64-linux-gnu/libc.so.6"),
                PathBuf::from("/lib64/ld-linux-x86-64.so.2")
            ]
        );
        assert!(parse_ldd("\tnot a dynamic executable\n").is_empty());
    }

    #[test]
    fn content_hash_changes_with_any_byte_and_mode() {
        let mut a = RootFs::default();
        a.file("/bin/x", vec![1, 2, 3], 0o755);
        let mut b = a.clone();
        assert_eq!(a.content_hash("FROM scratch"), b.content_hash("FROM scratch"));
        b.file("/bin/x", vec![1, 2, 4], 0o755);
        assert_ne!(a.content_hash("FROM scratch"), b.content_hash("FROM scratch"));
        let mut c = a.clone();
        c.file("/bin/x", vec![1, 2, 3], 0o644);
        assert_ne!(a.content_hash("FROM scratch"), c.content_hash("FROM scratch"));
        assert_ne!(a.content_hash("FROM scratch"), a.content_hash("FROM scratch\nENV A=1"));
    }

    #[test]
    fn a_host_tree_keeps_modes_mtimes_and_symlinks_and_leaves_out_what_is_skipped() {
        use std::time::{Duration, UNIX_EPOCH};
        let root = std::env::temp_dir().join(format!("scinit-host-tree-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let mtime = 1_613_166_224;
        let write = |relative: &str, data: &str, mode: u32, mtime: u64| {
            let path = root.join(relative);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, data).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            let file = std::fs::File::options().write(true).open(&path).unwrap();
            file.set_modified(UNIX_EPOCH + Duration::from_secs(mtime)).unwrap();
        };
        write("bin/tool", "#!/bin/sh\n", 0o750, mtime);
        write("lib/mod.py", "x = 1\n", 0o644, mtime);
        write("lib/unused.so", "not wanted", 0o644, mtime);
        write("test/test_mod.py", "not wanted", 0o644, mtime);
        std::os::unix::fs::symlink("../bin/tool", root.join("lib/tool")).unwrap();
        for (dir, mode) in [("", 0o755), ("bin", 0o711), ("lib", 0o700)] {
            std::fs::set_permissions(root.join(dir), std::fs::Permissions::from_mode(mode))
                .unwrap();
        }
        let tree = || {
            let mut fs = RootFs::default();
            fs.host_tree(&root, &["test/", "lib/unused.so"])?;
            anyhow::Ok(fs)
        };
        let copied = tree();
        write("lib/mod.py", "x = 1\n", 0o644, mtime + 1);
        let touched = tree();
        std::fs::remove_dir_all(&root).unwrap();

        let (copied, touched) = (copied.unwrap(), touched.unwrap());
        let at = |relative: &str| format!("{}{relative}", root.display());
        let file = |data: &str, mode: u32| Entry::File {
            data: Arc::new(data.as_bytes().to_vec()),
            mode,
            mtime,
        };
        let expected = BTreeMap::from([
            (at(""), Entry::Dir { mode: 0o755 }),
            (at("/bin"), Entry::Dir { mode: 0o711 }),
            (at("/bin/tool"), file("#!/bin/sh\n", 0o750)),
            (at("/lib"), Entry::Dir { mode: 0o700 }),
            (at("/lib/mod.py"), file("x = 1\n", 0o644)),
            (at("/lib/tool"), Entry::Symlink { target: "../bin/tool".into() }),
        ]);
        assert_eq!(copied.entries, expected);
        assert_ne!(
            copied.content_hash("FROM scratch"),
            touched.content_hash("FROM scratch"),
            "a file's mtime must change the tag"
        );
    }
}
