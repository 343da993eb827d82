//! `digest [-hashing SHA256|BLAKE3] SNAPSHOT[:PATH]...`: Plakar's `ALGO (PATH) = HEX` line
//! for each regular file at or below each path, computed from the store without restoring.
//! Every reference is resolved before anything is printed, so a typo fails at once.

use crate::cli::{exit, snapref, Ctx};
use crate::kloset::ops::digest::{self, Hashing};
use crate::kloset::Repository;
use anyhow::Result;

#[derive(clap::Args)]
pub struct Args {
    /// SHA256 or BLAKE3
    #[arg(long, default_value = "SHA256", value_name = "ALGORITHM")]
    hashing: String,
    /// SNAPSHOT[:PATH]...; a directory gives every file below it
    targets: Vec<String>,
}

/// A path as Plakar prints it: control characters (a line break in a name) as `?`, so
/// that each digest stays on its own line.
fn printable(p: &[u8]) -> String {
    String::from_utf8_lossy(p).chars().map(|c| if c.is_control() { '?' } else { c }).collect()
}

pub fn run(ctx: &Ctx, a: Args) -> Result<i32> {
    let hashing = Hashing::parse(&a.hashing).ok_or_else(|| {
        exit::coded(
            exit::USAGE,
            format!("unsupported hashing algorithm {:?}: use one of {}", a.hashing, Hashing::NAMES),
        )
    })?;
    if a.targets.is_empty() {
        return Err(exit::coded(
            exit::USAGE,
            "digest needs a file or directory: plakar at STORE digest [-hashing SHA256|BLAKE3] SNAPSHOT[:PATH]...",
        ));
    }
    let repo = ctx.open()?;
    let mut found = Vec::with_capacity(a.targets.len());
    for t in &a.targets {
        let (h, path) = snapref::resolve(&repo, t)?;
        let path = path.unwrap_or_else(|| Repository::absolute(&h, ""));
        let entry = repo.lookup(&h, &path)?;
        found.push((h, path, entry));
    }
    let mut partial = false;
    for (h, path, entry) in &found {
        digest::digest(&repo, entry, path, hashing, &mut |p, d| match d {
            Ok(d) => println!("{} ({}) = {}", hashing.name(), printable(p), hex::encode(d)),
            Err(why) => {
                partial = true;
                eprintln!("{}: KO ✘ {}: {why}", h.id.short(), printable(p));
            }
        })?;
    }
    Ok(if partial { exit::PARTIAL } else { exit::OK })
}
