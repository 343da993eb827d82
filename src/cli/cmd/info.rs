use crate::cli::{format, snapref, Ctx};
use crate::kloset::ops::info;
use anyhow::Result;

#[derive(clap::Args)]
pub struct Args {
    /// JSON output
    #[arg(long)]
    json: bool,
    /// List the errors recorded in the snapshot
    #[arg(long)]
    errors: bool,
    /// SNAPSHOT (default: the store)
    snapshot: Option<String>,
}

pub fn run(ctx: &Ctx, a: Args) -> Result<i32> {
    // A snapshot's summary needs its header only; the store's needs every blob counted.
    let repo = if a.snapshot.is_some() { ctx.open_metadata()? } else { ctx.open()? };
    let json = a.json || ctx.g.json;
    if let Some(r) = &a.snapshot {
        let (h, _) = snapref::resolve(&repo, r)?;
        if a.errors {
            for (p, e) in &h.errors {
                println!("{p}: {e}");
            }
            return Ok(0);
        }
        if json {
            println!("{}", serde_json::to_string_pretty(&super::ls::header_json(&h))?);
            return Ok(0);
        }
        let s = &h.summary;
        println!("Version: {}", h.version);
        println!("SnapshotID: {}", h.id.to_hex());
        println!("Timestamp: {}", format::rfc3339_ns(h.timestamp_ns));
        println!("Duration: {}", format::duration_ms(h.duration_ms));
        println!("Name: {}", h.name);
        println!("Tags: {}", h.tags.join(", "));
        println!("Importer:");
        println!(" - Type: {}", h.source.kind);
        println!(" - Origin: {}", h.source.origin);
        println!(" - Directory: {}", h.source.directory);
        println!("Context:");
        println!(" - Hostname: {}", h.hostname);
        println!(" - Username: {}", h.username);
        println!(" - CommandLine: {}", h.command_line);
        println!("Summary:");
        println!(" - Files: {}", s.files);
        println!(" - Directories: {}", s.directories);
        println!(" - Symlinks: {}", s.symlinks);
        println!(" - Size: {} ({} bytes)", format::ibytes(s.size), s.size);
        println!(" - Errors: {}", s.errors);
        println!(" - Files read: {}", s.files_read);
        println!(" - Stored: {}", format::ibytes(s.bytes_stored));
        return Ok(0);
    }
    let i = info::info(&repo)?;
    let c = &repo.config;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({"config": c, "store": i, "location": repo.location()}))?
        );
        return Ok(0);
    }
    println!("Version: {}", crate::kloset::config::FORMAT_VERSION);
    println!("Timestamp: {}", c.created);
    println!("RepositoryID: {}", c.repository_id);
    println!("Location: {}", repo.location());
    println!("Packfile:");
    println!(" - MaxSize: {}", format::ibytes(c.packfile_max_size));
    println!("Chunking:");
    println!(" - Algorithm: {}", c.chunking.algorithm);
    println!(" - MinSize: {}", c.chunking.min_size);
    println!(" - NormalSize: {}", c.chunking.avg_size);
    println!(" - MaxSize: {}", c.chunking.max_size);
    println!("Hashing:");
    println!(" - Algorithm: {}", c.hashing);
    println!(" - Bits: 256");
    match &c.compression {
        Some(z) => {
            println!("Compression:");
            println!(" - Algorithm: {}", z.algorithm);
            println!(" - Level: {}", z.level);
        }
        None => println!("Compression: none"),
    }
    match &c.encryption {
        Some(e) => {
            println!("Encryption:");
            println!(" - DataAlgorithm: {}", e.algorithm);
            for (_, k) in c.slots() {
                println!(
                    " - KDF: {} (memory {} KiB, time {}, threads {})",
                    k.kdf, k.params.m_cost_kib, k.params.t_cost, k.params.p_cost
                );
            }
        }
        None => println!("Encryption: none (plaintext store)"),
    }
    println!("Snapshots: {}", i.snapshots);
    println!("Packfiles: {}", i.packfiles);
    println!("States: {}", i.states);
    println!("Storage size: {} ({} bytes)", format::ibytes(i.storage_size), i.storage_size);
    println!("Logical size: {} ({} bytes)", format::ibytes(i.logical_size), i.logical_size);
    Ok(0)
}
