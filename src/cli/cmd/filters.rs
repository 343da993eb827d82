//! Snapshot filter flags shared by ls, rm, check, locate and restore.

use crate::cli::time;
use crate::kloset::ops::filter::Filter;
use anyhow::Result;

#[derive(clap::Args, Debug, Default, Clone)]
pub struct FilterArgs {
    /// Only snapshots taken before this time (RFC 3339, YYYY-MM-DD, or a duration like 30d)
    #[arg(long)]
    pub before: Option<String>,
    /// Only snapshots taken since this time
    #[arg(long)]
    pub since: Option<String>,
    /// Only snapshots with these tags (a,b; !c excludes)
    #[arg(long, value_delimiter = ',')]
    pub tag: Vec<String>,
    /// Only snapshots with this name
    #[arg(long)]
    pub name: Option<String>,
    /// Only the latest matching snapshot
    #[arg(long)]
    pub latest: bool,
    #[arg(long, hide = true)]
    pub category: Option<String>,
    #[arg(long, hide = true)]
    pub environment: Option<String>,
    #[arg(long, hide = true)]
    pub perimeter: Option<String>,
    #[arg(long, hide = true)]
    pub job: Option<String>,
}

impl FilterArgs {
    pub fn filter(&self) -> Result<Filter> {
        Ok(Filter {
            before: self.before.as_deref().map(time::parse).transpose()?,
            since: self.since.as_deref().map(time::parse).transpose()?,
            tags: self.tag.iter().filter(|t| !t.is_empty()).cloned().collect(),
            name: self.name.clone(),
            latest: self.latest,
        })
    }
}
