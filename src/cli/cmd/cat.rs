use crate::cli::{snapref, Ctx};
use crate::kloset::importer::FileKind;
use crate::kloset::reader::ChunkReader;
use crate::kloset::Error;
use anyhow::{Context, Result};

#[derive(clap::Args)]
pub struct Args {
    #[arg(long, hide = true)]
    no_decompress: bool,
    #[arg(long, hide = true)]
    decompress: bool,
    #[arg(long, hide = true)]
    highlight: bool,
    /// SNAPSHOT:PATH...
    #[arg(required = true)]
    files: Vec<String>,
}

pub fn run(ctx: &Ctx, a: Args) -> Result<i32> {
    let repo = ctx.open()?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for r in &a.files {
        let (h, path) = snapref::resolve(&repo, r)?;
        let path = path.ok_or_else(|| Error::BadReference(format!("{r}: give a file, as SNAPSHOT:/path/to/file")))?;
        let e = repo.lookup(&h, &path)?;
        if e.kind() != FileKind::File {
            return Err(Error::BadReference(format!("{r}: not a regular file")).into());
        }
        let mut reader = ChunkReader::new(&repo, &e.chunks);
        std::io::copy(&mut reader, &mut out).with_context(|| format!("cannot print {r}"))?;
    }
    Ok(0)
}
