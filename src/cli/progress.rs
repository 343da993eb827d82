//! Progress for the terminal: a spinner with counts on stderr when it is a TTY and not
//! quiet; under cron or `-quiet`, nothing but errors.

use crate::kloset::progress::Progress;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub struct TermProgress {
    bar: Option<ProgressBar>,
    prefix: String,
    verb: &'static str,
    items: AtomicU64,
    bytes: AtomicU64,
    pub errors: AtomicU64,
    silent: bool,
}

impl TermProgress {
    pub fn new(verb: &'static str, prefix: String, quiet: bool, silent: bool) -> Self {
        let bar = (!quiet && !silent && std::io::stderr().is_terminal()).then(|| {
            let b = ProgressBar::new_spinner();
            b.set_style(ProgressStyle::with_template("{spinner} {msg}").expect("valid template"));
            b.enable_steady_tick(Duration::from_millis(120));
            b
        });
        Self {
            bar,
            prefix,
            verb,
            items: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            silent,
        }
    }

    fn refresh(&self) {
        if let Some(b) = &self.bar {
            b.set_message(format!(
                "{}: {} items, {}{}",
                self.verb,
                self.items.load(Ordering::Relaxed),
                crate::cli::format::ibytes(self.bytes.load(Ordering::Relaxed)),
                match self.errors.load(Ordering::Relaxed) {
                    0 => String::new(),
                    n => format!(", {n} errors"),
                }
            ));
        }
    }

    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

impl Progress for TermProgress {
    fn item(&self, _path: &[u8], _size: u64) {
        if self.items.fetch_add(1, Ordering::Relaxed).is_multiple_of(64) {
            self.refresh();
        }
    }
    fn bytes(&self, n: u64) {
        self.bytes.fetch_add(n, Ordering::Relaxed);
    }
    fn error(&self, path: &[u8], msg: &str) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        if self.silent {
            return;
        }
        // One line per error, whatever the message holds: log readers and cron mail count lines.
        let msg: String = msg.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
        let line = format!("{}: KO ✘ {}: {msg}", self.prefix, String::from_utf8_lossy(path).replace('\n', " "));
        match &self.bar {
            Some(b) => b.suspend(|| eprintln!("{line}")),
            None => eprintln!("{line}"),
        }
    }
}
