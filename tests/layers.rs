//! Guards the layering (docs: architecture): the engine knows no CLI, app or backend; the
//! connectors know no CLI; the app prints nothing.
use std::path::Path;

fn sources(dir: &Path) -> Vec<(String, String)> {
    let mut out = vec![];
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(sources(&p));
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push((p.display().to_string(), std::fs::read_to_string(&p).unwrap()));
        }
    }
    out
}

fn forbid(dir: &str, needles: &[&str]) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src").join(dir);
    for (file, text) in sources(&root) {
        for n in needles {
            assert!(!text.contains(n), "{file} uses {n}, which its layer must not");
        }
    }
}

#[test]
fn engine_knows_only_its_traits() {
    forbid("kloset", &["crate::cli", "crate::app", "crate::connectors", "clap::", "println!", "eprintln!"]);
}

#[test]
fn connectors_know_no_cli() {
    forbid("connectors", &["crate::cli", "crate::app", "clap::", "println!", "eprintln!"]);
}

#[test]
fn app_prints_nothing() {
    forbid("app", &["crate::cli", "clap::", "println!", "eprintln!"]);
}
