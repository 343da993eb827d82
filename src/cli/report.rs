//! Drill reports for CI systems: a JSON summary and a JUnit XML file.
//!
//! JUnit has no formal standard; what Jenkins, GitLab, GitHub test reporters and Azure
//! read is Ant's format: `<testsuites>` holding `<testsuite>`s with `tests`, `failures`,
//! `errors`, `skipped` and `time`, each holding `<testcase name classname time>` with an
//! optional `<failure message type>`, `<skipped message>` or `<system-out>`. The XML is
//! written with quick-xml, which escapes `& < > " '`; characters XML 1.0 cannot carry at
//! all (control characters from odd file names or messages) are replaced first.

use crate::kloset::importer::FileKind;
use crate::kloset::ops::drill::{DrillOptions, DrillReport, Item, Status};
use crate::kloset::SnapshotId;
use quick_xml::events::{BytesDecl, BytesText, Event};
use quick_xml::Writer;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;

/// Everything a report says about one drill.
pub struct DrillSummary<'a> {
    pub report: &'a DrillReport,
    pub snapshot: SnapshotId,
    pub store: String,
    pub started: chrono::DateTime<chrono::Utc>,
    pub elapsed: Duration,
    pub opts: &'a DrillOptions,
    pub against: Option<String>,
    /// Where the restored copy was left (-keep), if it was.
    pub kept: Option<String>,
    pub hostname: String,
    /// ok, partial (files unreadable at backup time) or failed.
    pub status: &'static str,
    pub exit_code: i32,
}

impl DrillSummary<'_> {
    pub fn throughput(&self) -> u64 {
        let secs = self.elapsed.as_secs_f64().max(0.001);
        (self.report.bytes_verified as f64 / secs) as u64
    }
}

pub fn kind_name(k: FileKind) -> &'static str {
    match k {
        FileKind::File => "file",
        FileKind::Dir => "directory",
        FileKind::Symlink => "symlink",
        FileKind::Special => "other",
    }
}

pub fn json(s: &DrillSummary) -> Value {
    let r = s.report;
    let sample = s
        .opts
        .sampled()
        .then(|| json!({"percent": s.opts.percent, "max_bytes": s.opts.max_bytes, "seed": s.opts.seed}));
    json!({
        "snapshot": s.snapshot.to_hex(),
        "store": s.store,
        "path": r.root,
        "status": s.status,
        "exit_code": s.exit_code,
        "started": s.started.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "duration_ms": s.elapsed.as_millis() as u64,
        "sample": sample,
        "files_total": r.files_total,
        "bytes_total": r.bytes_total,
        "files_checked": r.count(FileKind::File),
        "directories_checked": r.count(FileKind::Dir),
        "symlinks_checked": r.count(FileKind::Symlink),
        "bytes_checked": r.bytes_verified,
        "chunks_verified": r.chunks_verified,
        "throughput_bytes_per_sec": s.throughput(),
        "failures": r.failures().map(|(i, m)| json!({"path": i.path, "kind": kind_name(i.kind), "reason": m})).collect::<Vec<_>>(),
        "unreadable": r.unreadable().map(|(i, m)| json!({"path": i.path, "reason": m})).collect::<Vec<_>>(),
        "against": s.against,
        "changed": r.changed().map(|(i, c)| json!({"path": i.path, "change": c})).collect::<Vec<_>>(),
        "added": r.added,
        "kept": s.kept,
    })
}

/// Replaces what XML 1.0 cannot hold; in attributes, line breaks and tabs too (parsers
/// would turn them into spaces anyway).
fn xml_safe(s: &str, attribute: bool) -> String {
    s.chars()
        .map(|c| match c {
            '\t' | '\n' | '\r' if attribute => ' ',
            '\t' | '\n' | '\r' => c,
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => '\u{FFFD}',
            c => c,
        })
        .collect()
}

fn secs(micros: u64) -> String {
    format!("{:.3}", micros as f64 / 1e6)
}

/// One `<testcase>`: its name, class, time, and what it found.
struct Case {
    name: String,
    classname: String,
    micros: u64,
    failures: Vec<String>,
    skipped: Vec<String>,
    out: Vec<String>,
}

fn parent(path: &str) -> String {
    match path.rfind('/') {
        Some(0) => "/".into(),
        Some(i) => path[..i].to_string(),
        None => path.to_string(),
    }
}

fn cases(r: &DrillReport, per_dir: bool) -> Vec<Case> {
    let one = |i: &Item, name: String, classname: String| {
        let mut c = Case { name, classname, micros: i.micros, failures: vec![], skipped: vec![], out: vec![] };
        let who = if per_dir { format!("{}: ", i.path) } else { String::new() };
        match &i.status {
            Status::Ok => {}
            Status::Failed(m) => c.failures.push(format!("{who}{m}")),
            Status::Unreadable(m) => c.skipped.push(format!("{who}{m}")),
        }
        if let Some(ch) = &i.changed {
            c.out.push(format!("{who}{ch}"));
        }
        c
    };
    if !per_dir {
        return r.items.iter().map(|i| one(i, i.path.clone(), parent(&i.path))).collect();
    }
    // One case per directory, holding what its files (and itself) found.
    let mut by_dir: BTreeMap<String, Case> = BTreeMap::new();
    for i in &r.items {
        let dir = if i.kind == FileKind::Dir { i.path.clone() } else { parent(&i.path) };
        let c = one(i, dir.clone(), "plakar.drill".into());
        let e = by_dir.entry(dir.clone()).or_insert_with(|| Case {
            name: dir,
            classname: "plakar.drill".into(),
            micros: 0,
            failures: vec![],
            skipped: vec![],
            out: vec![],
        });
        e.micros += c.micros;
        e.failures.extend(c.failures);
        e.skipped.extend(c.skipped);
        e.out.extend(c.out);
    }
    by_dir.into_values().collect()
}

/// The JUnit XML document: one suite for the drill, one case per checked path (or per
/// directory). A damaged or wrongly restored path is a failure; a file that could not be
/// read at backup time is skipped; a change against the live tree is only system-out.
pub fn junit(s: &DrillSummary, per_dir: bool) -> std::io::Result<Vec<u8>> {
    let r = s.report;
    let cases = cases(r, per_dir);
    let tests = cases.len().to_string();
    let failures = cases.iter().filter(|c| !c.failures.is_empty()).count().to_string();
    let skipped = cases.iter().filter(|c| c.failures.is_empty() && !c.skipped.is_empty()).count().to_string();
    let time = format!("{:.3}", s.elapsed.as_secs_f64());
    let suite_name = xml_safe(&format!("plakar drill {} {}", s.snapshot.short(), r.root), true);
    let mut w = Writer::new_with_indent(Vec::new(), b' ', 2);
    w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    let timestamp = s.started.format("%Y-%m-%dT%H:%M:%S").to_string();
    let host = xml_safe(&s.hostname, true);
    let mut props: Vec<(&str, String)> = vec![
        ("snapshot", s.snapshot.to_hex()),
        ("store", s.store.clone()),
        ("path", r.root.clone()),
        ("status", s.status.to_string()),
        ("files_total", r.files_total.to_string()),
        ("bytes_total", r.bytes_total.to_string()),
        ("bytes_checked", r.bytes_verified.to_string()),
        ("chunks_verified", r.chunks_verified.to_string()),
        ("throughput_bytes_per_sec", s.throughput().to_string()),
    ];
    if s.opts.sampled() {
        if let Some(p) = s.opts.percent {
            props.push(("sample_percent", p.to_string()));
        }
        if let Some(m) = s.opts.max_bytes {
            props.push(("sample_max_bytes", m.to_string()));
        }
        props.push(("seed", s.opts.seed.to_string()));
    }
    if let Some(a) = &s.against {
        props.push(("against", a.clone()));
        props.push(("added_since_snapshot", r.added.len().to_string()));
    }
    w.create_element("testsuites")
        .with_attributes([
            ("name", "plakar drill"),
            ("tests", tests.as_str()),
            ("failures", failures.as_str()),
            ("errors", "0"),
            ("skipped", skipped.as_str()),
            ("time", time.as_str()),
        ])
        .write_inner_content(|w| {
            w.create_element("testsuite")
                .with_attributes([
                    ("name", suite_name.as_str()),
                    ("tests", tests.as_str()),
                    ("failures", failures.as_str()),
                    ("errors", "0"),
                    ("skipped", skipped.as_str()),
                    ("time", time.as_str()),
                    ("timestamp", timestamp.as_str()),
                    ("hostname", host.as_str()),
                ])
                .write_inner_content(|w| {
                    w.create_element("properties").write_inner_content(|w| {
                        for (k, v) in &props {
                            let v = xml_safe(v, true);
                            w.create_element("property")
                                .with_attributes([("name", *k), ("value", &v)])
                                .write_empty()?;
                        }
                        Ok(())
                    })?;
                    for c in &cases {
                        let name = xml_safe(&c.name, true);
                        let class = xml_safe(&c.classname, true);
                        let t = secs(c.micros);
                        let el = w.create_element("testcase").with_attributes([
                            ("name", name.as_str()),
                            ("classname", class.as_str()),
                            ("time", t.as_str()),
                        ]);
                        if c.failures.is_empty() && c.skipped.is_empty() && c.out.is_empty() {
                            el.write_empty()?;
                            continue;
                        }
                        el.write_inner_content(|w| {
                            if !c.failures.is_empty() {
                                let msg = if c.failures.len() == 1 {
                                    xml_safe(&c.failures[0], true)
                                } else {
                                    format!("{} paths failed", c.failures.len())
                                };
                                w.create_element("failure")
                                    .with_attributes([("message", msg.as_str()), ("type", "drill")])
                                    .write_text_content(BytesText::new(&xml_safe(&c.failures.join("\n"), false)))?;
                            } else if !c.skipped.is_empty() {
                                let msg = xml_safe(&c.skipped.join("; "), true);
                                w.create_element("skipped").with_attribute(("message", msg.as_str())).write_empty()?;
                            }
                            if !c.out.is_empty() {
                                w.create_element("system-out")
                                    .write_text_content(BytesText::new(&xml_safe(&c.out.join("\n"), false)))?;
                            }
                            Ok(())
                        })?;
                    }
                    Ok(())
                })?;
            Ok(())
        })?;
    let mut out = w.into_inner();
    out.push(b'\n');
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_safe_replaces_what_xml_cannot_hold() {
        assert_eq!(xml_safe("a\u{1}b\nc", false), "a\u{FFFD}b\nc");
        assert_eq!(xml_safe("a\nb\tc", true), "a b c");
        assert_eq!(parent("/a/b"), "/a");
        assert_eq!(parent("/a"), "/");
    }
}
