use crate::cli::{snapref, Ctx};
use crate::kloset::importer::FileKind;
use crate::kloset::ops::diff::{diff, Change};
use crate::kloset::reader::ChunkReader;
use anyhow::Result;
use std::io::Read;

#[derive(clap::Args)]
pub struct Args {
    #[arg(long, hide = true)]
    highlight: bool,
    #[arg(long, hide = true)]
    recursive: bool,
    /// SNAPSHOT[:PATH]
    a: String,
    /// SNAPSHOT[:PATH]
    b: String,
}

fn content(repo: &crate::kloset::Repository, e: &crate::kloset::tree::Entry) -> Result<String> {
    let mut s = Vec::new();
    ChunkReader::new(repo, &e.chunks).read_to_end(&mut s)?;
    Ok(String::from_utf8_lossy(&s).into_owned())
}

pub fn run(ctx: &Ctx, a: Args) -> Result<i32> {
    let repo = ctx.open()?;
    let (ha, pa) = snapref::resolve(&repo, &a.a)?;
    let (hb, pb) = snapref::resolve(&repo, &a.b)?;
    let pa = pa.unwrap_or_else(|| b"/".to_vec());
    let pb = pb.unwrap_or_else(|| pa.clone());
    let ea = repo.lookup(&ha, &pa)?;
    let eb = repo.lookup(&hb, &pb)?;
    if ea.kind() == FileKind::File && eb.kind() == FileKind::File {
        if ea.chunks != eb.chunks {
            let (ta, tb) = (content(&repo, &ea)?, content(&repo, &eb)?);
            let la = format!("{}:{}", ha.id.short(), String::from_utf8_lossy(&pa));
            let lb = format!("{}:{}", hb.id.short(), String::from_utf8_lossy(&pb));
            print!("{}", similar::TextDiff::from_lines(&ta, &tb).unified_diff().header(&la, &lb));
        }
        return Ok(0);
    }
    let mut changes = Vec::new();
    diff(&repo, &ea, &eb, &pa, &mut changes)?;
    for c in changes {
        match c {
            Change::Added(p) => println!("+ {p}"),
            Change::Removed(p) => println!("- {p}"),
            Change::Modified(p) => println!("~ {p}"),
        }
    }
    Ok(0)
}
