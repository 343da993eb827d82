//! `plakar help`, `-h`, shell completions and man pages: all from the same clap definitions,
//! showing the real shape of the command line.
use crate::util::*;
use predicates::prelude::*;
use std::fs;
use std::process::Command as Proc;

const COMMANDS: &[&str] = &[
    "create",
    "backup",
    "ls",
    "restore",
    "check",
    "cat",
    "info",
    "rm",
    "diff",
    "locate",
    "maintenance",
    "prune",
    "sync",
    "ptar",
    "ui",
    "server",
    "archive",
    "digest",
    "dup",
    "store",
    "source",
    "destination",
    "policy",
    "completion",
    "version",
];

fn run(args: &[&str]) -> (i32, String, String) {
    let env = Env::new();
    let out = env.cmd().args(args).output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap())
}

#[test]
fn help_shows_the_real_shape_globals_and_config_commands() {
    for args in [&["help"][..], &["-h"], &["--help"], &["-help"]] {
        let (code, out, err) = run(args);
        assert_eq!(code, 0, "{args:?}: {err}");
        assert!(out.contains("plakar [GLOBAL FLAGS] at STORE COMMAND"), "{args:?}:\n{out}");
        for flag in ["-keyfile", "-configdir", "-quiet", "-silent", "-json", "-concurrency"] {
            assert!(out.contains(flag), "{args:?} lacks {flag}:\n{out}");
        }
        for c in COMMANDS {
            assert!(out.lines().any(|l| l.trim_start().starts_with(c)), "{args:?} lacks {c}:\n{out}");
        }
        assert!(out.contains("PLAKAR_REPOSITORY"), "{out}");
    }
}

#[test]
fn help_of_a_command() {
    let (code, out, _) = run(&["help", "backup"]);
    assert_eq!(code, 0);
    assert!(out.contains("plakar [GLOBAL FLAGS] at STORE backup"), "{out}");
    assert!(out.contains("-dry-run") && out.contains("-tag"), "{out}");
    // `CMD -h` says the same.
    let (code, again, _) = run(&["backup", "-h"]);
    assert_eq!((code, again), (0, out));
    let (code, out, _) = run(&["help", "store"]);
    assert_eq!(code, 0);
    for verb in ["add", "set", "unset", "rm", "show", "ls", "ping"] {
        assert!(out.lines().any(|l| l.trim_start().starts_with(verb)), "store help lacks {verb}:\n{out}");
    }
    let (code, out, _) = run(&["help", "policy"]);
    assert_eq!(code, 0);
    assert!(out.contains("policy"), "{out}");
    let (code, _, err) = run(&["help", "frobnicate"]);
    assert_eq!(code, 64);
    assert!(err.contains("frobnicate") && err.contains("plakar help"), "{err}");
}

#[test]
fn bash_completion_parses_and_completes_commands_after_at() {
    let (code, script, _) = run(&["completion", "bash"]);
    assert_eq!(code, 0);
    let env = Env::new();
    let file = env.path("plakar.bash");
    fs::write(&file, &script).unwrap();
    let st = Proc::new("bash").arg("-n").arg(&file).status().unwrap();
    assert!(st.success(), "bash -n rejects the script");
    // What bash would offer after `plakar at /s ar` and `plakar ar`; flags complete in
    // their two-dash form, which plakar takes as well as Plakar's single dash.
    for words in ["plakar at /s ar", "plakar ar", "plakar at /s backup --dry"] {
        let n = words.split(' ').count() - 1;
        let probe = format!(
            "source {}; COMP_WORDS=({words}); COMP_CWORD={n}; COMP_LINE='{words}'; COMP_POINT=${{#COMP_LINE}}; \
             _plakar plakar \"${{COMP_WORDS[{n}]}}\" \"${{COMP_WORDS[{p}]}}\"; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            file.display(),
            p = n - 1
        );
        let out = Proc::new("bash").arg("-c").arg(&probe).output().unwrap();
        let got = String::from_utf8(out.stdout).unwrap();
        let want = if words.ends_with("dry") { "--dry-run" } else { "archive" };
        assert!(got.lines().any(|l| l == want), "{words:?} completes to {got:?}");
    }
    for shell in ["zsh", "fish"] {
        let (code, script, _) = run(&["completion", shell]);
        assert_eq!(code, 0);
        assert!(script.contains("archive") && script.contains("dup"), "{shell}");
        if Proc::new(shell).arg("--version").output().is_ok() {
            let f = env.path(&format!("plakar.{shell}"));
            fs::write(&f, &script).unwrap();
            assert!(Proc::new(shell).arg("-n").arg(&f).status().unwrap().success(), "{shell} -n");
        }
    }
    let (code, _, err) = run(&["completion", "tcsh"]);
    assert_eq!(code, 2);
    assert!(err.contains("bash") && err.contains("zsh") && err.contains("fish"), "{err}");
}

#[test]
fn man_pages_render_and_name_every_command() {
    let env = Env::new();
    let dir = env.path("man");
    env.cmd().args(["man", dir.to_str().unwrap()]).assert().success();
    let page = dir.join("plakar.1");
    let text = fs::read_to_string(&page).unwrap();
    for c in COMMANDS {
        assert!(text.contains(c), "plakar.1 lacks {c}");
    }
    for c in ["backup", "archive", "digest", "dup", "store"] {
        assert!(dir.join(format!("plakar-{c}.1")).is_file(), "no plakar-{c}.1");
    }
    let rendered = Proc::new("man").arg("-l").arg(&page).env("MANPAGER", "cat").env("MANWIDTH", "100").output();
    if let Some(out) = rendered.ok().filter(|o| o.status.success()) {
        let s = String::from_utf8_lossy(&out.stdout);
        assert!(s.contains("GLOBAL FLAGS") && s.contains("archive"), "{s}");
    } else {
        eprintln!("man -l unavailable: the page's text was checked only");
    }
    // Without a directory, the main page goes to stdout.
    env.cmd().arg("man").assert().success().stdout(predicate::str::contains(".TH plakar"));
    env.cmd().args(["man", "/proc/no/such/dir"]).assert().code(73).stderr(predicate::str::contains("/proc/no/such"));
}
