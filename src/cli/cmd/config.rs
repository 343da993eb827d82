//! Named connectors: every form Plakar's docs use writes the same config file.
//!
//! ```text
//!   plakar store|source|destination add NAME LOCATION [k=v...] | set NAME k=v... |
//!         unset NAME KEY... | show [-secrets] [NAME...] | rm NAME | ls | ping NAME
//!   plakar store repository create|set NAME [KEY VALUE]      (the MinIO doc's form)
//!   plakar source|destination remote create|set NAME [KEY VALUE]
//!   plakar config [repository|repo|remote create|set|unset|default NAME ...]  (v1.0.2)
//! ```

use crate::app::config::{masked, Config, Kind, Section};
use crate::cli::{exit, Ctx};
use anyhow::{bail, Result};

fn usage(noun: &str) -> anyhow::Error {
    exit::coded(exit::USAGE, format!("usage: plakar {noun} [add|set|unset|show|rm|ls|ping] NAME ..."))
}

fn name(s: Option<&String>, noun: &str) -> Result<String> {
    let n = s.ok_or_else(|| usage(noun))?;
    Ok(n.strip_prefix('@').unwrap_or(n).to_string())
}

/// `k=v` pairs, or one `KEY VALUE` pair as the older forms write it.
fn pairs(args: &[String]) -> Result<Vec<(String, String)>> {
    if args.len() == 2 && !args[0].contains('=') {
        return Ok(vec![(args[0].clone(), args[1].clone())]);
    }
    args.iter()
        .map(|a| {
            a.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or_else(|| exit::coded(exit::USAGE, format!("expected key=value, got {a:?}")))
        })
        .collect()
}

fn print_section(name: &str, s: &Section, secrets: bool) {
    println!("{name}:");
    for (k, v) in if secrets { s.clone() } else { masked(s) } {
        println!("    {k}: {v}");
    }
}

/// Runs a config command; `args` starts with the command word.
pub fn run(ctx: &Ctx, args: &[String]) -> Result<i32> {
    let dir = ctx.config_dir();
    let mut cfg = Config::load(&dir)?;
    let noun = args[0].as_str();
    let rest = &args[1..];
    if noun == "config" {
        return legacy(ctx, &mut cfg, rest);
    }
    let kind = match noun {
        "store" => Kind::Store,
        "source" => Kind::Source,
        _ => Kind::Destination,
    };
    let verb = rest.first().map(String::as_str).unwrap_or("show");
    // `plakar store repository create NAME`: the doc's noun is decoration.
    if matches!(verb, "repository" | "repo" | "remote") {
        return modify(ctx, &mut cfg, &[kind], &rest[1..]);
    }
    let rest = &rest[rest.len().min(1)..];
    match verb {
        "add" | "create" => {
            let n = name(rest.first(), noun)?;
            cfg.create(kind, &n)?;
            if let Some(loc) = rest.get(1) {
                let loc = loc.strip_prefix("location=").unwrap_or(loc);
                cfg.set(kind, &n, "location", loc)?;
                for (k, v) in pairs(&rest[2..])? {
                    cfg.set(kind, &n, &k, &v)?;
                }
            }
            cfg.save(&dir)?;
        }
        "set" | "unset" | "rm" | "remove" => {
            return modify(ctx, &mut cfg, &[kind], &[&[verb.to_string()], rest].concat())
        }
        "show" | "ls" | "list" => {
            let secrets = rest.iter().any(|a| a.trim_start_matches('-') == "secrets");
            let json = rest.iter().any(|a| a.trim_start_matches('-') == "json");
            let names: Vec<String> =
                rest.iter().filter(|a| !a.starts_with('-')).map(|a| a.trim_start_matches('@').to_string()).collect();
            let all = cfg.sections(kind);
            for n in &names {
                cfg.get(kind, n)?;
            }
            let chosen: Vec<(&String, &Section)> =
                all.iter().filter(|(n, _)| names.is_empty() || names.contains(n)).collect();
            if json {
                let v: serde_json::Map<String, serde_json::Value> = chosen
                    .iter()
                    .map(|(n, s)| {
                        (
                            (*n).clone(),
                            serde_json::to_value(if secrets { (*s).clone() } else { masked(s) }).unwrap_or_default(),
                        )
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else if verb == "ls" || verb == "list" {
                for (n, s) in chosen {
                    println!("{n} {}", s.get("location").map(String::as_str).unwrap_or(""));
                }
            } else {
                for (n, s) in chosen {
                    print_section(n, s, secrets);
                }
            }
        }
        "ping" | "check" => {
            let n = name(rest.first(), noun)?;
            let s = cfg.get(kind, &n)?;
            if !s.contains_key("location") {
                bail!("{noun} {n:?} has no location");
            }
            if kind == Kind::Store {
                crate::kloset::repo::read_config(crate::app::location::open_store(&format!("@{n}"), &dir)?.as_ref())?;
            }
            println!("configuration OK");
        }
        _ => return Err(usage(noun)),
    }
    Ok(0)
}

/// create/set/unset/rm/default NAME ... on one or more kinds (a v1.0.2 "remote" is both a
/// source and a destination).
fn modify(ctx: &Ctx, cfg: &mut Config, kinds: &[Kind], args: &[String]) -> Result<i32> {
    let dir = ctx.config_dir();
    let verb = args.first().map(String::as_str).ok_or_else(|| usage(kinds[0].noun()))?;
    let n = name(args.get(1), kinds[0].noun())?;
    for &kind in kinds {
        match verb {
            "create" | "add" => {
                cfg.create(kind, &n)?;
                if let Some(loc) = args.get(2) {
                    cfg.set(kind, &n, "location", loc.strip_prefix("location=").unwrap_or(loc))?;
                }
            }
            "set" => {
                let kv = pairs(&args[2..])?;
                if kv.is_empty() {
                    return Err(exit::coded(
                        exit::USAGE,
                        format!("usage: plakar {} set NAME KEY=VALUE...", kind.noun()),
                    ));
                }
                for (k, v) in kv {
                    cfg.set(kind, &n, &k, &v)?;
                }
            }
            "unset" => {
                for k in &args[2..] {
                    cfg.unset(kind, &n, k)?;
                }
            }
            "rm" | "remove" => cfg.remove(kind, &n)?,
            "default" if kind == Kind::Store => {
                if !cfg.get(kind, &n)?.contains_key("location") {
                    bail!("store {n:?} has no location; set one first");
                }
                cfg.default_store = Some(n.clone());
            }
            "validate" => {
                cfg.get(kind, &n)?;
            }
            _ => return Err(usage(kind.noun())),
        }
    }
    cfg.save(&dir)?;
    Ok(0)
}

/// v1.0.2's `plakar config ...`.
fn legacy(ctx: &Ctx, cfg: &mut Config, rest: &[String]) -> Result<i32> {
    match rest.first().map(String::as_str) {
        None | Some("show") => {
            if let Some(d) = &cfg.default_store {
                println!("default-repo: {d}");
            }
            for (title, kind) in
                [("repositories", Kind::Store), ("sources", Kind::Source), ("destinations", Kind::Destination)]
            {
                println!("{title}:");
                for (n, s) in cfg.sections(kind) {
                    println!("    {n}:");
                    for (k, v) in masked(s) {
                        println!("        {k}: {v}");
                    }
                }
            }
            Ok(0)
        }
        Some("repository" | "repo") => modify(ctx, cfg, &[Kind::Store], &rest[1..]),
        Some("remote") => modify(ctx, cfg, &[Kind::Source, Kind::Destination], &rest[1..]),
        Some(other) => {
            Err(exit::coded(exit::USAGE, format!("unknown config section {other:?}: use repository or remote")))
        }
    }
}
