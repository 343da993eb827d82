//! Named retention policies (`plakar policy`, `prune -policy NAME`): typed past the point
//! where `key=value` strings come in. Keys are Plakar's `policies.yml` keys, which are also
//! the `prune` flag names (`days`, `per-day`, `mondays`, `per-monday`, ...), plus
//! `group-by`, `allow-empty` and the filters `name` and `tag`. An unknown key or a bad value
//! is a `PolicyError` that names the key and what is valid.

use crate::app::config::Section;
use crate::kloset::retention::{GroupBy, Period, Policy, Rule};

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PolicyError(pub String);

/// A policy read from its keys: the rules and the filters choosing the candidates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    pub policy: Policy,
    pub name: Option<String>,
    pub tags: Vec<String>,
}

const OTHER_KEYS: [&str; 4] = ["group-by", "allow-empty", "name", "tag"];

/// Every valid key, counts first (`minutes`...), then caps (`per-minute`...), then the rest.
pub fn keys() -> Vec<String> {
    let mut v: Vec<String> = Period::all().iter().map(|p| p.plural()).collect();
    v.extend(Period::all().iter().map(|p| format!("per-{}", p.name())));
    v.extend(OTHER_KEYS.map(str::to_string));
    v
}

/// Accepts `per_day` for `per-day` and `tags` for `tag`, as people type both.
pub fn canonical(key: &str) -> String {
    match key.replace('_', "-").as_str() {
        "tags" => "tag".into(),
        k => k.to_string(),
    }
}

fn count(key: &str, value: &str) -> Result<u32, PolicyError> {
    value.trim().parse::<u32>().map_err(|_| {
        PolicyError(format!("invalid value {value:?} for {key}: use a whole number (0 turns the rule off)"))
    })
}

/// Checks one key and its value.
pub fn check(key: &str, value: &str) -> Result<(), PolicyError> {
    let key = canonical(key);
    match key.as_str() {
        "group-by" => GroupBy::parse(value).map(|_| ()).ok_or_else(|| {
            PolicyError(format!("invalid value {value:?} for group-by: use one of {}", GroupBy::NAMES.join(", ")))
        }),
        "allow-empty" => crate::app::config::parse_bool(value)
            .map(|_| ())
            .map_err(|_| PolicyError(format!("invalid value {value:?} for allow-empty: use true or false"))),
        "name" | "tag" => Ok(()),
        k if keys().iter().any(|x| x == k) => count(k, value).map(|_| ()),
        _ => Err(PolicyError(format!("unknown policy key {key:?}; valid keys: {}", keys().join(", ")))),
    }
}

/// Reads a policy's keys; every key and value is checked.
pub fn parse(s: &Section) -> Result<Settings, PolicyError> {
    for (k, v) in s {
        check(k, v)?;
    }
    let get = |k: &str| s.iter().find(|(key, _)| canonical(key) == k).map(|(_, v)| v.as_str());
    let mut out = Settings::default();
    for p in Period::all() {
        let keep = get(&p.plural()).map(|v| count(&p.plural(), v)).transpose()?.unwrap_or(0);
        let per = format!("per-{}", p.name());
        let cap = get(&per).map(|v| count(&per, v)).transpose()?.unwrap_or(0);
        if keep > 0 || cap > 0 {
            out.policy.rules.push(Rule { period: p, keep, cap });
        }
    }
    out.policy.group_by = get("group-by").and_then(GroupBy::parse);
    out.policy.allow_empty = get("allow-empty").is_some_and(|v| crate::app::config::parse_bool(v).unwrap_or(false));
    out.name = get("name").map(str::to_string);
    out.tags =
        get("tag").map(|t| t.split(',').filter(|x| !x.is_empty()).map(str::to_string).collect()).unwrap_or_default();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(kv: &[(&str, &str)]) -> Section {
        kv.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn reads_rules_and_filters() {
        let s = parse(&section(&[
            ("days", "7"),
            ("per_day", "1"),
            ("per-year", "1"),
            ("group-by", "name"),
            ("tags", "a,b"),
        ]))
        .unwrap();
        assert_eq!(
            s.policy.rules,
            vec![Rule { period: Period::Day, keep: 7, cap: 1 }, Rule { period: Period::Year, keep: 0, cap: 1 }]
        );
        assert_eq!(s.policy.group_by, Some(GroupBy::Name));
        assert_eq!(s.tags, vec!["a", "b"]);
    }

    #[test]
    fn bad_keys_and_values_name_what_is_valid() {
        let e = check("dayz", "7").unwrap_err().to_string();
        assert!(e.contains("\"dayz\"") && e.contains("per-monday") && e.contains("group-by"), "{e}");
        let e = check("days", "-1").unwrap_err().to_string();
        assert!(e.contains("days") && e.contains("whole number"), "{e}");
        let e = check("group-by", "colour").unwrap_err().to_string();
        assert!(e.contains("hostname"), "{e}");
        assert!(check("allow-empty", "maybe").is_err());
    }
}
