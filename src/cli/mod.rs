//! The command line: global flags, `at STORE`, then one command. Plakar's single-dash long
//! flags (`-to`, `-tag`) are rewritten to clap's `--to` before parsing, so both work.

pub mod cmd;
pub mod context;
pub mod exit;
pub mod format;
mod globals;
mod host;
pub mod mount;
mod progress;
pub mod report;
mod server;
mod shape;
mod snapref;
mod time;
pub mod ui;

use clap::Parser;
pub use context::Ctx;
use std::ffi::OsString;

#[derive(Parser)]
#[command(name = "plakar", version, disable_help_subcommand = true, about = "Plakar-compatible backups")]
struct CmdLine {
    #[command(subcommand)]
    cmd: cmd::Command,
}

/// Rewrites `-word` and `-word=value` to `--word...`; single letters and values stay.
fn normalize(args: &[String]) -> Vec<String> {
    let mut out = Vec::with_capacity(args.len());
    let mut rest = false;
    for a in args {
        if rest {
            out.push(a.clone());
            continue;
        }
        if a == "--" {
            rest = true;
            out.push(a.clone());
            continue;
        }
        let b = a.as_bytes();
        let is_long = b.len() > 2 && b[0] == b'-' && b[1].is_ascii_alphabetic() && {
            let name = a[1..].split('=').next().unwrap_or_default();
            name.len() > 1 && name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        };
        out.push(if is_long { format!("-{a}") } else { a.clone() });
    }
    out
}

/// Runs plakar with these arguments (program name excluded); returns the exit code.
pub fn run(args: Vec<OsString>) -> i32 {
    let args: Vec<String> = args.into_iter().map(|a| a.to_string_lossy().into_owned()).collect();
    crate::connectors::notice::set_sink(|m| eprintln!("plakar: warning: {m}"));
    let (g, rest) = match globals::parse(&args) {
        Ok(x) => x,
        Err(msg) => {
            eprintln!("plakar: {msg}");
            return exit::BAD_FLAGS;
        }
    };
    if rest.is_empty() {
        eprintln!("plakar: a command is needed, for example: plakar at /path/to/store ls (see plakar help)");
        return exit::USAGE;
    }
    let is_help = |w: &str| matches!(w, "-h" | "--help" | "-help" | "help");
    if is_help(&rest[0]) {
        return help(&rest[1..]);
    }
    let config_command = matches!(rest[0].as_str(), "store" | "source" | "destination" | "policy");
    if config_command && rest.get(1).is_some_and(|w| is_help(w)) {
        return help(&rest[..1]);
    }
    if matches!(rest[0].as_str(), "store" | "source" | "destination" | "config") {
        let ctx = Ctx::new(g, args);
        return finish(cmd::config::run(&ctx, &rest));
    }
    if rest[0] == "policy" {
        let ctx = Ctx::new(g, args);
        return finish(cmd::policy::run(&ctx, &rest));
    }
    let mut argv = vec!["plakar".to_string()];
    argv.extend(normalize(&rest));
    let parsed = match CmdLine::try_parse_from(&argv) {
        Ok(p) => p,
        // `COMMAND -h` says what `help COMMAND` says: where the command goes after `at`.
        Err(e) if e.kind() == clap::error::ErrorKind::DisplayHelp => return help(&rest[..1]),
        Err(e) => {
            let code = if e.use_stderr() { exit::BAD_FLAGS } else { exit::OK };
            let _ = e.print();
            return code;
        }
    };
    let ctx = Ctx::new(g, args);
    finish(cmd::dispatch(&ctx, parsed.cmd))
}

/// `plakar help [COMMAND [SUBCOMMAND]]`.
fn help(words: &[String]) -> i32 {
    let words: Vec<&str> = words.iter().map(String::as_str).take_while(|w| !w.starts_with('-')).collect();
    match shape::help(&words) {
        Some(text) => {
            print!("{text}");
            exit::OK
        }
        None => {
            eprintln!("plakar: unknown command {:?}: see plakar help", words.join(" "));
            exit::USAGE
        }
    }
}

/// Prints an error once, with its causes, and maps it to an exit code.
fn finish(res: anyhow::Result<i32>) -> i32 {
    match res {
        Ok(code) => code,
        Err(e) => {
            let code = exit::for_error(&e);
            if !is_broken_pipe(&e) {
                eprintln!("plakar: {}", chain(&e));
                return code;
            }
            exit::OK
        }
    }
}

fn chain(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for c in e.chain() {
        let s = c.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
    }
    parts.join(": ")
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe))
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn single_dash_long_flags() {
        let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            normalize(&v(&["-to", "/x", "-tag=a,b", "-o", "k=v", "--json", "-"])),
            v(&["--to", "/x", "--tag=a,b", "-o", "k=v", "--json", "-"])
        );
        assert_eq!(normalize(&v(&["--", "-weird"])), v(&["--", "-weird"]));
    }
}
