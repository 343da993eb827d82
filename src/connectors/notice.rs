//! Warnings a connector has for the user (an unsafe option in use). Connectors do not
//! print: the CLI installs a sink once at start; without one (the library used on its own)
//! warnings are dropped. Each distinct warning is passed on once per process.

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock};

static SINK: OnceLock<fn(&str)> = OnceLock::new();
static SEEN: Mutex<Option<HashSet<String>>> = Mutex::new(None);

/// Where warnings go; the first call wins.
pub fn set_sink(sink: fn(&str)) {
    let _ = SINK.set(sink);
}

pub fn warn(msg: &str) {
    let Some(sink) = SINK.get() else { return };
    let mut seen = SEEN.lock().unwrap_or_else(|p| p.into_inner());
    if seen.get_or_insert_with(HashSet::new).insert(msg.to_string()) {
        sink(msg);
    }
}
