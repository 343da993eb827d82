//! Flags that come before `at` or the command, as in Plakar.

use std::path::PathBuf;

#[derive(Debug, Default, Clone)]
pub struct Globals {
    pub keyfile: Option<PathBuf>,
    pub quiet: bool,
    pub silent: bool,
    pub json: bool,
    pub concurrency: usize,
    pub store: Option<String>,
    pub config_dir: Option<PathBuf>,
    pub cache_dir: Option<PathBuf>,
}

const WITH_VALUE: &[&str] = &[
    "keyfile",
    "config",
    "configdir",
    "cachedir",
    "datadir",
    "cpu",
    "concurrency",
    "trace",
    "profile-cpu",
    "profile-mem",
    "username",
    "hostname",
];
const BOOLEAN: &[&str] =
    &["quiet", "silent", "stdio", "json", "time", "no-agent", "enable-security-check", "disable-security-check"];

/// Splits off the global flags and `at STORE`; returns them and the command with its args.
pub fn parse(args: &[String]) -> Result<(Globals, Vec<String>), String> {
    let mut g = Globals::default();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        if a == "at" {
            let loc = args.get(i + 1).ok_or("at needs a store location, for example: plakar at /var/backups ls")?;
            g.store = Some(loc.clone());
            i += 2;
            continue;
        }
        if !a.starts_with('-') || a == "-" || a == "-h" || a == "--help" || a == "-help" || a == "--version" {
            break;
        }
        let flag = a.trim_start_matches('-');
        let (name, inline) = match flag.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (flag, None),
        };
        if WITH_VALUE.contains(&name) {
            let value = match inline {
                Some(v) => v,
                None => {
                    i += 1;
                    args.get(i).cloned().ok_or_else(|| format!("flag needs an argument: -{name}"))?
                }
            };
            match name {
                "keyfile" => g.keyfile = Some(PathBuf::from(value)),
                // v1.0.2's -config named a file; later versions' -configdir a directory.
                "configdir" => g.config_dir = Some(PathBuf::from(value)),
                "cachedir" => g.cache_dir = Some(PathBuf::from(value)),
                "config" => {
                    let p = PathBuf::from(&value);
                    g.config_dir = Some(if p.extension().is_some() {
                        p.parent().map(PathBuf::from).unwrap_or_default()
                    } else {
                        p
                    });
                }
                "concurrency" | "cpu" => {
                    g.concurrency =
                        value.parse().map_err(|_| format!("invalid value {value:?} for -{name}: expected a number"))?
                }
                _ => {}
            }
        } else if BOOLEAN.contains(&name) {
            let on = inline.as_deref() != Some("false");
            match name {
                "quiet" => g.quiet = on,
                "silent" => g.silent = on,
                "json" => g.json = on,
                _ => {}
            }
        } else {
            return Err(format!("flag provided but not defined: {a} (global flags go before `at` and the command)"));
        }
        i += 1;
    }
    Ok((g, args[i..].to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_globals() {
        let v: Vec<String> =
            ["-keyfile", "/k", "-quiet", "at", "/s", "ls", "-tag", "x"].iter().map(|s| s.to_string()).collect();
        let (g, rest) = parse(&v).unwrap();
        assert_eq!(g.keyfile.unwrap(), PathBuf::from("/k"));
        assert!(g.quiet);
        assert_eq!(g.store.as_deref(), Some("/s"));
        assert_eq!(rest, vec!["ls", "-tag", "x"]);
        assert!(parse(&["-bogus".to_string()]).is_err());
    }
}
