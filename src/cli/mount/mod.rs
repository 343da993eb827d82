//! `plakar mount`: snapshots as a read-only filesystem (FUSE) or a read-only HTTP tree. The
//! view (view.rs) is shared; fuse.rs and http.rs put it in front of the kernel or a
//! browser. The engine knows nothing of either: it gives trees and byte ranges.
//!
//! A mount ends cleanly: SIGINT, SIGTERM and SIGHUP unmount the directory and the command
//! exits 0; an unmount from outside (`umount DIR`, `fusermount3 -u DIR`) ends it too.

mod fuse;
pub mod http;

mod inodes;
pub mod view;

use crate::cli::exit::{Coded, UNAVAILABLE};
use anyhow::{Context, Result};
use std::path::Path;
use std::sync::Arc;
use view::View;

/// The FUSE device; tests point it elsewhere (PLAKAR_FUSE_DEVICE) to see the command fail
/// as on a machine without FUSE.
fn fuse_device() -> std::path::PathBuf {
    std::env::var_os("PLAKAR_FUSE_DEVICE").map(Into::into).unwrap_or_else(|| "/dev/fuse".into())
}

fn in_path(name: &str) -> bool {
    std::env::var_os("PATH").map(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file())).unwrap_or(false)
}

fn unavailable(why: String) -> anyhow::Error {
    Coded(UNAVAILABLE, format!("FUSE is not available: {why}")).into()
}

/// Whether this process can mount: root mounts through mount(2) with /dev/fuse alone;
/// anyone else needs the setuid helper fusermount3 (Debian's `fuse3` package).
fn check_available() -> Result<()> {
    let dev = fuse_device();
    if let Err(e) = std::fs::OpenOptions::new().read(true).write(true).open(&dev) {
        return Err(unavailable(format!(
            "{} cannot be opened ({e}); load the fuse module (modprobe fuse) or, in a container, pass the device through (--device /dev/fuse)",
            dev.display()
        )));
    }
    // SAFETY: geteuid cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    if !root && !in_path("fusermount3") && !in_path("fusermount") {
        return Err(unavailable(
            "fusermount3 is not installed (apt-get install fuse3), and only root can mount without it".into(),
        ));
    }
    Ok(())
}

/// Mounts the view on `dir` and serves it until a signal or an unmount from outside.
pub fn serve_fuse(view: Arc<View>, dir: &Path, allow_others: bool, announce: impl FnOnce()) -> Result<()> {
    check_available()?;
    let meta = std::fs::metadata(dir).with_context(|| format!("mountpoint {}", dir.display()))?;
    if !meta.is_dir() {
        anyhow::bail!("mountpoint {} is not a directory", dir.display());
    }
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    // Taken before mounting: a signal from now on is queued for the unmounting thread
    // instead of killing the process with the directory still mounted.
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])?;
    let mut config = fuser::Config::default();
    config.mount_options = vec![
        fuser::MountOption::RO,
        fuser::MountOption::FSName("plakar".into()),
        fuser::MountOption::Subtype("plakar".into()),
        fuser::MountOption::NoDev,
        fuser::MountOption::NoSuid,
    ];
    config.acl = if allow_others { fuser::SessionACL::All } else { fuser::SessionACL::Owner };
    // Reads wait on the store: a few threads keep a slow read from holding up `ls`.
    config.n_threads = Some(4);
    let mut session =
        fuser::Session::new(fuse::PlakarFs::new(view), dir, &config).map_err(|e| match e.raw_os_error() {
            Some(libc::ENODEV | libc::ENOENT | libc::EPERM | libc::EACCES) if !dir_problem(dir) => {
                unavailable(format!("mounting {} failed: {e}", dir.display()))
            }
            _ => anyhow::Error::new(e).context(format!("cannot mount on {}", dir.display())),
        })?;
    let mut unmounter = session.unmount_callable();
    let target = dir.to_path_buf();
    std::thread::spawn(move || {
        if let Some(sig) = signals.forever().next() {
            let name = match sig {
                SIGINT => "interrupted",
                SIGTERM => "terminated",
                _ => "hung up",
            };
            eprintln!("plakar mount: {name}: unmounting {}", target.display());
            if let Err(e) = unmounter.unmount() {
                // Busy (a shell inside it): detach it now; it goes away when released.
                eprintln!("plakar mount: {e}: detaching {} lazily", target.display());
                lazy_unmount(&target);
            }
        }
    });
    announce();
    session.run().context("FUSE session")?;
    Ok(())
}

/// Whether the mountpoint itself is what is missing (then the error is not about FUSE).
fn dir_problem(dir: &Path) -> bool {
    std::fs::metadata(dir).is_err()
}

fn lazy_unmount(dir: &Path) {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else { return };
    // SAFETY: a valid NUL-terminated path.
    if unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) } != 0 {
        let _ = std::process::Command::new("fusermount3").arg("-u").arg("-z").arg(dir).status();
    }
}
