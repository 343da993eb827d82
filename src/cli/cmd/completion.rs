//! `completion bash|zsh|fish`: a completion script for the shell, generated from the same
//! clap definitions as the parser (cli/shape.rs), so commands after `at STORE` complete too.

use crate::cli::shape;
use anyhow::Result;

#[derive(clap::Args)]
pub struct Args {
    /// The shell to complete in
    #[arg(value_enum)]
    shell: clap_complete::Shell,
}

pub fn run(a: Args) -> Result<i32> {
    let mut out = std::io::stdout().lock();
    clap_complete::generate(a.shell, &mut shape::command(), "plakar", &mut out);
    Ok(0)
}
