//! Typed options of an S3 location, from `s3://host[:port]/bucket[/prefix]` plus `key=value`
//! options (access_key, secret_access_key, use_tls, storage_class, region).

use crate::connectors::options::{parse_bool, Options as Section};
use anyhow::{bail, Context, Result};

#[derive(Clone)]
pub struct S3Config {
    /// host[:port]
    pub endpoint: String,
    pub bucket: String,
    /// Key prefix inside the bucket, empty or ending in '/'.
    pub prefix: String,
    pub access_key: String,
    pub secret_key: String,
    /// Temporary credentials' session token, sent with every request.
    pub session_token: Option<String>,
    pub use_tls: bool,
    pub storage_class: String,
    pub region: String,
    pub insecure: bool,
}

impl std::fmt::Debug for S3Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret.
        write!(f, "S3Config({})", self.display())
    }
}

impl S3Config {
    /// `rest` is the location without `s3://`; options come from the config section.
    pub fn parse(rest: &str, opts: &Section) -> Result<S3Config> {
        let (endpoint, path) = rest.split_once('/').unwrap_or((rest, ""));
        if endpoint.is_empty() {
            bail!("S3 location needs a host: s3://HOST[:PORT]/BUCKET[/PREFIX]");
        }
        let (bucket, prefix) = path.split_once('/').unwrap_or((path, ""));
        if bucket.is_empty() {
            bail!("S3 location s3://{endpoint} needs a bucket: s3://{endpoint}/BUCKET");
        }
        let prefix = prefix.trim_matches('/');
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let access_key = opts.get("access_key").cloned().or_else(|| env("AWS_ACCESS_KEY_ID"));
        let secret_key = opts.get("secret_access_key").cloned().or_else(|| env("AWS_SECRET_ACCESS_KEY"));
        let (Some(access_key), Some(secret_key)) = (access_key, secret_key) else {
            bail!("missing access_key or secret_access_key for s3://{endpoint}/{bucket}: set them on the @name (plakar store set NAME access_key=...) or in AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY");
        };
        let use_tls = opts.get("use_tls").map(|v| parse_bool(v)).transpose().context("option use_tls")?.unwrap_or(true);
        let insecure = opts
            .get("tls_insecure_no_verify")
            .map(|v| parse_bool(v))
            .transpose()
            .context("option tls_insecure_no_verify")?
            .unwrap_or(false);
        Ok(S3Config {
            endpoint: endpoint.to_string(),
            bucket: bucket.to_string(),
            prefix: if prefix.is_empty() { String::new() } else { format!("{prefix}/") },
            access_key,
            secret_key,
            session_token: opts.get("session_token").cloned().or_else(|| env("AWS_SESSION_TOKEN")),
            use_tls,
            storage_class: opts.get("storage_class").cloned().unwrap_or_else(|| "STANDARD".into()),
            region: opts.get("region").cloned().or_else(|| env("AWS_REGION")).unwrap_or_else(|| "us-east-1".into()),
            insecure,
        })
    }

    pub fn url(&self) -> String {
        format!("{}://{}", if self.use_tls { "https" } else { "http" }, self.endpoint)
    }

    /// The location as shown to users: no credentials.
    pub fn display(&self) -> String {
        format!("s3://{}/{}/{}", self.endpoint, self.bucket, self.prefix).trim_end_matches('/').to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_location_and_options() {
        let mut o = Section::new();
        o.insert("access_key".into(), "AK".into());
        o.insert("secret_access_key".into(), "SECRET".into());
        o.insert("use_tls".into(), "false".into());
        let c = S3Config::parse("localhost:9000/bucket/some/prefix/", &o).unwrap();
        assert_eq!(
            (c.endpoint.as_str(), c.bucket.as_str(), c.prefix.as_str()),
            ("localhost:9000", "bucket", "some/prefix/")
        );
        assert_eq!(c.url(), "http://localhost:9000");
        assert!(!format!("{c:?}").contains("SECRET"));
        assert!(S3Config::parse("localhost:9000", &o).is_err());
    }
}
