//! The lab's folders: root's alone, checked before every use.
//!
//! The lab runs as root and keeps charon's configs (keys included) and the VICI socket in its
//! run folders. Those live under `/tmp`, where any user can make a folder first: a folder that
//! root did not make for itself could hand root charon an `updown=` script or a VICI socket that
//! another user listens on. So every folder is checked before use (owner, mode, no symlink
//! anywhere in its path) and refused when it fails; files the daemons read are written 0600.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::NetlabError;

/// Where the lab keeps its folders.
/// Not under /run: each charon mounts a private tmpfs over /run and would not see it.
pub const LAB_DIR: &str = "/tmp/dxvpn-lab";

/// The lab's top folder, [`LAB_DIR`]. One per machine: a run's leftovers are found, and a
/// namespace without a run is removed, by looking there.
pub fn lab_dir() -> PathBuf {
    PathBuf::from(LAB_DIR)
}

/// Makes `dir` and any folder missing on the way to it, mode 0700, and checks the whole path:
/// no symlink, nothing writable by another user without the sticky bit (as `/tmp` has), and
/// `dir` and every lab folder on the way (the lab's top folder included) this user's alone. A
/// folder that fails is refused and never written into; only a folder of this user's that
/// nobody else could write in is closed to others' reads instead (an older dxvpn made 0755).
pub fn private_dir(dir: &Path) -> Result<(), NetlabError> {
    let me = rustix::process::geteuid().as_raw();
    let mut at = PathBuf::new();
    for part in dir.components() {
        at.push(part);
        match std::fs::symlink_metadata(&at) {
            Ok(meta) => {
                let ours = at.as_path() == dir || at.starts_with(LAB_DIR);
                check_component(&at, &meta, me, ours)?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::DirBuilder::new()
                    .mode(0o700)
                    .create(&at)
                    .map_err(|e| NetlabError::io(&at, e))?;
                // The mode asked for is masked by the umask: set it whole.
                std::fs::set_permissions(&at, std::fs::Permissions::from_mode(0o700))
                    .map_err(|e| NetlabError::io(&at, e))?;
                let meta = std::fs::symlink_metadata(&at).map_err(|e| NetlabError::io(&at, e))?;
                check_component(&at, &meta, me, true)?;
            }
            Err(e) => return Err(NetlabError::io(&at, e)),
        }
    }
    Ok(())
}

fn check_component(
    at: &Path,
    meta: &std::fs::Metadata,
    me: u32,
    ours: bool,
) -> Result<(), NetlabError> {
    let unsafe_dir = |why: String| NetlabError::UnsafeDir {
        path: at.display().to_string(),
        why,
    };
    if meta.file_type().is_symlink() {
        return Err(unsafe_dir("it is a symbolic link".into()));
    }
    if !meta.is_dir() {
        return Err(unsafe_dir("it is not a folder".into()));
    }
    let mode = meta.mode() & 0o7777;
    if meta.uid() != me && meta.uid() != 0 {
        return Err(unsafe_dir(format!("it belongs to uid {}", meta.uid())));
    }
    if ours && meta.uid() != me {
        return Err(unsafe_dir(format!("it belongs to uid {}", meta.uid())));
    }
    if mode & 0o022 != 0 && (ours || mode & 0o1000 == 0) {
        // Another user may have put or renamed entries in it.
        return Err(unsafe_dir(format!(
            "its mode is {mode:o}: others may write in it"
        )));
    }
    if ours && mode & 0o077 != 0 {
        // This user's, and nobody else could write in it (an older dxvpn made it 0755): closing
        // it to others' reads loses nothing.
        std::fs::set_permissions(at, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| NetlabError::io(at, e))?;
    }
    Ok(())
}

/// Writes `contents` to `path` readable by this user only (0600), whatever the umask.
pub fn write_private(path: &Path, contents: impl AsRef<[u8]>) -> Result<(), NetlabError> {
    let io = |e| NetlabError::io(path, e);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(io)?;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(io)?;
    file.write_all(contents.as_ref()).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("dxvpn-private-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn a_missing_folder_is_made_private() {
        let top = scratch("fresh");
        let run = top.join("run");
        private_dir(&top).expect("made");
        private_dir(&run).expect("made");
        let mode = std::fs::metadata(&run).expect("exists").mode() & 0o777;
        assert_eq!(mode, 0o700);
        write_private(&run.join("conf"), "x").expect("written");
        let mode = std::fs::metadata(run.join("conf")).expect("exists").mode() & 0o777;
        assert_eq!(mode, 0o600);
        std::fs::remove_dir_all(&top).expect("cleaned");
    }

    #[test]
    fn an_open_folder_or_a_symlink_is_refused_and_left_as_it_was() {
        let top = scratch("open");
        std::fs::create_dir(&top).expect("made");
        std::fs::set_permissions(&top, std::fs::Permissions::from_mode(0o777)).expect("chmod");
        let refused = private_dir(&top).expect_err("an open folder is refused");
        assert!(refused.to_string().contains("777"), "{refused}");
        assert!(
            private_dir(&top.join("run")).is_err(),
            "nor used as a parent"
        );
        assert_eq!(std::fs::read_dir(&top).expect("listed").count(), 0);
        let link = scratch("link");
        std::os::unix::fs::symlink(&top, &link).expect("linked");
        let refused = private_dir(&link).expect_err("a symlink is refused");
        assert!(refused.to_string().contains("symbolic link"), "{refused}");
        std::fs::remove_file(&link).expect("cleaned");
        std::fs::remove_dir_all(&top).expect("cleaned");
    }
}
