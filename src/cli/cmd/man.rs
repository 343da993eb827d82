//! `man [DIR]`: man pages generated from the same clap definitions as the parser
//! (cli/shape.rs): plakar.1 and one plakar-COMMAND.1 per command in DIR, or plakar.1 alone
//! on stdout.

use crate::cli::{exit, shape};
use anyhow::Result;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Write plakar.1 and plakar-COMMAND.1 here (created if missing); default: plakar.1 to stdout
    #[arg(value_hint = clap::ValueHint::DirPath)]
    dir: Option<PathBuf>,
}

fn render(cmd: clap::Command) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd).render(&mut out)?;
    Ok(out)
}

pub fn run(quiet: bool, a: Args) -> Result<i32> {
    // `at` and `help` are explained on plakar.1 itself, and get no page of their own.
    let root = shape::command().mut_subcommand("at", |c| c.hide(true)).mut_subcommand("help", |c| c.hide(true));
    let Some(dir) = a.dir else {
        use std::io::Write;
        std::io::stdout().lock().write_all(&render(root)?)?;
        return Ok(0);
    };
    let cant =
        |e: std::io::Error| exit::coded(exit::CANT_CREATE, format!("cannot write man pages to {}: {e}", dir.display()));
    std::fs::create_dir_all(&dir).map_err(cant)?;
    let mut pages = vec![("plakar.1".to_string(), root.clone())];
    for sub in root.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("plakar-{}", sub.get_name());
        let usage = shape::usage_name(sub.get_name());
        pages.push((format!("{name}.1"), sub.clone().name(name).bin_name(usage)));
    }
    for (file, cmd) in &pages {
        std::fs::write(dir.join(file), render(cmd.clone())?).map_err(cant)?;
    }
    if !quiet {
        println!(
            "{} man pages written to {} (read one with: man -l {}/plakar.1)",
            pages.len(),
            dir.display(),
            dir.display()
        );
    }
    Ok(0)
}
