//! `plakar policy add|set|unset|rm|show|ls NAME [key=value...]`: named retention policies,
//! stored in the config file beside stores, sources and destinations, used by
//! `prune -policy NAME`. Every key and value is checked when written (exit 64 naming the
//! key and the valid ones), so a policy that `show` prints is one `prune` can use.

use crate::app::config::{Config, Kind, Section};
use crate::app::policy;
use crate::cli::{exit, Ctx};
use anyhow::Result;

const USAGE: &str = "usage: plakar policy [add|set|unset|rm|show|ls] NAME [KEY=VALUE...]";

fn usage() -> anyhow::Error {
    exit::coded(exit::USAGE, USAGE)
}

/// Config errors here are all misuse: a name that exists, or does not.
fn misuse(e: anyhow::Error) -> anyhow::Error {
    exit::coded(exit::USAGE, e.to_string())
}

fn bad(e: policy::PolicyError) -> anyhow::Error {
    exit::coded(exit::USAGE, e.0)
}

fn pairs(args: &[String]) -> Result<Vec<(String, String)>> {
    args.iter()
        .map(|a| {
            let (k, v) = a
                .split_once('=')
                .ok_or_else(|| exit::coded(exit::USAGE, format!("expected KEY=VALUE, got {a:?}; {USAGE}")))?;
            policy::check(k, v).map_err(bad)?;
            Ok((policy::canonical(k), v.to_string()))
        })
        .collect()
}

fn print(name: &str, s: &Section) {
    println!("{name}:");
    for (k, v) in s {
        println!("    {k}: {v}");
    }
}

/// Runs `policy ...`; `args` starts with the word `policy`.
pub fn run(ctx: &Ctx, args: &[String]) -> Result<i32> {
    let dir = ctx.config_dir();
    let mut cfg = Config::load(&dir)?;
    let verb = args.get(1).map(String::as_str).unwrap_or("ls");
    let name = args.get(2).map(|n| n.trim_start_matches('@').to_string());
    let rest = args.get(3..).unwrap_or_default();
    let need_name = || name.clone().ok_or_else(usage);
    match verb {
        "add" | "create" => {
            let n = need_name()?;
            let kv = pairs(rest)?;
            cfg.create(Kind::Policy, &n).map_err(misuse)?;
            cfg.policies.get_mut(&n).expect("just created").extend(kv);
        }
        "set" => {
            let n = need_name()?;
            let kv = pairs(rest)?;
            if kv.is_empty() {
                return Err(usage());
            }
            cfg.get(Kind::Policy, &n).map_err(misuse)?;
            cfg.policies.get_mut(&n).expect("checked").extend(kv);
        }
        "unset" => {
            let n = need_name()?;
            for k in rest {
                let k = policy::canonical(k);
                if !policy::keys().contains(&k) {
                    return Err(bad(policy::check(&k, "").unwrap_err()));
                }
                cfg.unset(Kind::Policy, &n, &k).map_err(misuse)?;
            }
        }
        "rm" | "remove" => cfg.remove(Kind::Policy, &need_name()?).map_err(misuse)?,
        "show" => {
            let names: Vec<String> = args[2..].iter().map(|n| n.trim_start_matches('@').to_string()).collect();
            for n in &names {
                cfg.get(Kind::Policy, n).map_err(misuse)?;
            }
            let chosen = cfg.policies.iter().filter(|(n, _)| names.is_empty() || names.contains(n));
            if ctx.g.json {
                let v: serde_json::Map<String, serde_json::Value> =
                    chosen.map(|(n, s)| (n.clone(), serde_json::to_value(s).unwrap_or_default())).collect();
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                for (n, s) in chosen {
                    print(n, s);
                }
            }
            return Ok(0);
        }
        "ls" | "list" => {
            for (n, s) in &cfg.policies {
                let kv: Vec<String> = s.iter().map(|(k, v)| format!("{k}={v}")).collect();
                println!("{n} {}", kv.join(" "));
            }
            return Ok(0);
        }
        _ => return Err(usage()),
    }
    cfg.save(&dir)?;
    Ok(0)
}
