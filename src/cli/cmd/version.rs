use crate::connectors::{EXPORTERS, IMPORTERS, KLOSETS};
use anyhow::Result;

pub fn run() -> Result<i32> {
    println!("plakar/v{}", env!("CARGO_PKG_VERSION"));
    println!();
    println!("importers: {}", IMPORTERS.join(", "));
    println!("exporters: {}", EXPORTERS.join(", "));
    println!("klosets: {}", KLOSETS.join(", "));
    Ok(0)
}
