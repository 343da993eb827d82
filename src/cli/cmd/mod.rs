//! One file per command; each mirrors an operation in `kloset/ops`.

mod archive;
mod backup;
mod cat;
mod check;
mod completion;
pub mod config;
mod create;
mod diff;
mod digest;
mod drill;
mod dup;
mod filters;
mod info;
mod locate;
mod locking;
pub mod ls;
mod maintenance;
mod man;
mod mount;
mod passwd;
pub mod policy;
mod prune;
mod ptar;
mod restore;
mod rm;
mod server;
mod sync;
mod ui;
mod version;

use super::Ctx;
use anyhow::Result;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Create a store
    Create(create::Args),
    /// Back up a directory into a new snapshot
    Backup(backup::Args),
    /// List snapshots, or the files of one
    Ls(ls::Args),
    /// Restore a snapshot or part of it
    Restore(restore::Args),
    /// Write a snapshot or part of it as one tar, tar.gz or zip file (or to stdout)
    Archive(archive::Args),
    /// Verify snapshots
    Check(check::Args),
    /// Prove a snapshot restores: restore it (or a sample) to a scratch directory and verify
    Drill(drill::Args),
    /// Print files from a snapshot
    Cat(cat::Args),
    /// Print the SHA-256 or BLAKE3 of files in a snapshot, without restoring them
    Digest(digest::Args),
    /// Show store or snapshot details
    Info(info::Args),
    /// Remove snapshots
    Rm(rm::Args),
    /// Compare snapshots or files
    Diff(diff::Args),
    /// Find files in snapshots
    Locate(locate::Args),
    /// Mount snapshots read-only: -to DIR (FUSE) or -to http://ADDR
    Mount(mount::Args),
    /// Drop unreferenced data and compact packfiles
    Maintenance(maintenance::Args),
    /// Remove the snapshots a retention policy does not keep (-apply; without it, a preview)
    Prune(prune::Args),
    /// Change the store's passphrase (-add: one more), without rewriting data
    Passwd(passwd::Args),
    /// Write a one-file archive of stores and paths
    Ptar(ptar::Args),
    /// Copy snapshots between stores: [SNAPSHOT] to|from|with STORE
    Sync(sync::Args),
    /// Copy snapshots under new ids, in the same store
    Dup(dup::Args),
    /// Serve the store's objects over HTTP(S) to http:// and https:// stores
    Server(server::Args),
    /// Browse the store in a web page (local server, token in the printed URL)
    Ui(ui::Args),
    /// Print the version and connectors
    Version,
    /// Print a shell completion script: bash, zsh or fish
    Completion(completion::Args),
    /// Write man pages: plakar.1 and plakar-COMMAND.1 into DIR, or plakar.1 to stdout
    Man(man::Args),
}

pub fn dispatch(ctx: &Ctx, cmd: Command) -> Result<i32> {
    match cmd {
        Command::Create(a) => create::run(ctx, a),
        Command::Backup(a) => backup::run(ctx, a),
        Command::Ls(a) => ls::run(ctx, a),
        Command::Restore(a) => restore::run(ctx, a),
        Command::Archive(a) => archive::run(ctx, a),
        Command::Check(a) => check::run(ctx, a),
        Command::Drill(a) => drill::run(ctx, a),
        Command::Cat(a) => cat::run(ctx, a),
        Command::Digest(a) => digest::run(ctx, a),
        Command::Info(a) => info::run(ctx, a),
        Command::Rm(a) => rm::run(ctx, a),
        Command::Diff(a) => diff::run(ctx, a),
        Command::Locate(a) => locate::run(ctx, a),
        Command::Maintenance(a) => maintenance::run(ctx, a),
        Command::Mount(a) => mount::run(ctx, a),
        Command::Passwd(a) => passwd::run(ctx, a),
        Command::Prune(a) => prune::run(ctx, a),
        Command::Ptar(a) => ptar::run(ctx, a),
        Command::Sync(a) => sync::run(ctx, a),
        Command::Dup(a) => dup::run(ctx, a),
        Command::Server(a) => server::run(ctx, a),
        Command::Ui(a) => ui::run(ctx, a),
        Command::Version => version::run(),
        Command::Completion(a) => completion::run(a),
        Command::Man(a) => man::run(ctx.g.quiet, a),
    }
}
