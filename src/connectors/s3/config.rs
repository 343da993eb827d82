//! Typed options of an S3 location, from `s3://host[:port]/bucket[/prefix]` plus `key=value`
//! options (S3_KEYS). Files an option names (tls_ca_file, SSL_CERT_FILE) are read and checked
//! here, so a connector never starts with a trust store it cannot use.

use super::sse::Sse;
use super::tls;
use crate::connectors::options::{expand_home, parse_bool, OptionError, Options as Section};
use anyhow::Result;
use std::path::PathBuf;

/// Options an S3 location understands, as `plakar store set` validates them.
pub const S3_KEYS: [&str; 14] = [
    "access_key",
    "secret_access_key",
    "session_token",
    "use_tls",
    "tls_ca_file",
    "tls_insecure_no_verify",
    "storage_class",
    "region",
    "sse",
    "sse_kms_key_id",
    "sse_customer_key_file",
    "sse_customer_key_env",
    "profile",
    "sts_endpoint",
];

#[derive(Clone)]
pub struct S3Config {
    /// host[:port]
    pub endpoint: String,
    pub bucket: String,
    /// Key prefix inside the bucket, empty or ending in '/'.
    pub prefix: String,
    /// Explicit keys; without them, credentials come from the standard chain (see chain.rs).
    pub access_key: Option<String>,
    pub secret_key: Option<String>,
    /// Temporary credentials' session token, sent with every request.
    pub session_token: Option<String>,
    /// `profile`: a profile of the shared config/credentials files, used for credentials.
    pub profile: Option<String>,
    /// `sts_endpoint`: where web identity tokens are exchanged (MinIO's STS), in place of AWS's.
    pub sts_endpoint: Option<String>,
    pub use_tls: bool,
    pub storage_class: String,
    pub region: String,
    /// `tls_insecure_no_verify`: TLS without checking the server's certificate.
    pub insecure: bool,
    /// `tls_ca_file`, and the PEM certificates read from it, trusted on top of the system's.
    pub ca_file: Option<(PathBuf, Vec<u8>)>,
    /// Server-side encryption of the objects read and written (never shown: see sse.rs).
    pub sse: Sse,
}

impl std::fmt::Debug for S3Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret.
        write!(f, "S3Config({})", self.display())
    }
}

impl S3Config {
    /// `rest` is the location without `s3://`; options come from the config section.
    /// Anything missing or unusable is an `OptionError` (exit 64).
    pub fn parse(rest: &str, opts: &Section) -> Result<S3Config> {
        let bad = |m: String| anyhow::Error::new(OptionError(m));
        let (endpoint, path) = rest.split_once('/').unwrap_or((rest, ""));
        if endpoint.is_empty() {
            return Err(bad("S3 location needs a host: s3://HOST[:PORT]/BUCKET[/PREFIX]".into()));
        }
        let (bucket, prefix) = path.split_once('/').unwrap_or((path, ""));
        if bucket.is_empty() {
            return Err(bad(format!("S3 location s3://{endpoint} needs a bucket: s3://{endpoint}/BUCKET")));
        }
        let prefix = prefix.trim_matches('/');
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let access_key = opts.get("access_key").cloned();
        let secret_key = opts.get("secret_access_key").cloned();
        if access_key.is_some() != secret_key.is_some() {
            return Err(bad(format!("s3://{endpoint}/{bucket}: set both access_key and secret_access_key, or neither (credentials then come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, profile=NAME, web identity, container or instance metadata, or credential_process)")));
        }
        let sts_endpoint = opts.get("sts_endpoint").filter(|v| !v.is_empty()).cloned();
        if sts_endpoint.is_some() && (env("AWS_WEB_IDENTITY_TOKEN_FILE").is_none() || env("AWS_ROLE_ARN").is_none()) {
            return Err(bad("option sts_endpoint: set AWS_WEB_IDENTITY_TOKEN_FILE (a file holding the OIDC token) and AWS_ROLE_ARN (for MinIO, any ARN such as arn:minio:iam:::role/idp) in the environment: the token is exchanged there for temporary credentials".into()));
        }
        let flag =
            |k: &str| opts.get(k).map(|v| parse_bool(v).map_err(|e| bad(format!("option {k}: {e}")))).transpose();
        let use_tls = flag("use_tls")?.unwrap_or(true);
        let insecure = flag("tls_insecure_no_verify")?.unwrap_or(false);
        let ca_file = match opts.get("tls_ca_file") {
            Some(p) => {
                let p = expand_home(p);
                let pem = tls::read_certificates(&p).map_err(|e| bad(format!("option tls_ca_file: {e}")))?;
                Some((p, pem))
            }
            None => None,
        };
        if use_tls && !insecure {
            // rustls-native-certs reads it in place of the system's roots; a bad one would
            // only show later as "certificate not trusted", pointing the user elsewhere.
            if let Some(f) = env("SSL_CERT_FILE") {
                tls::read_certificates(std::path::Path::new(&f))
                    .map_err(|e| bad(format!("SSL_CERT_FILE: {e} (fix or unset the variable)")))?;
            }
        }
        let storage_class = opts.get("storage_class").cloned().unwrap_or_else(|| "STANDARD".into());
        super::class::check(&storage_class).map_err(bad)?;
        let sse = Sse::parse(opts).map_err(bad)?;
        Ok(S3Config {
            endpoint: endpoint.to_string(),
            bucket: bucket.to_string(),
            prefix: if prefix.is_empty() { String::new() } else { format!("{prefix}/") },
            access_key,
            secret_key,
            session_token: opts.get("session_token").cloned(),
            profile: opts.get("profile").filter(|v| !v.is_empty()).cloned(),
            sts_endpoint,
            use_tls,
            storage_class,
            region: opts.get("region").cloned().or_else(|| env("AWS_REGION")).unwrap_or_else(|| "us-east-1".into()),
            insecure,
            ca_file,
            sse,
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

    #[test]
    fn tls_ca_file_must_hold_a_certificate() {
        let d = tempfile::tempdir().unwrap();
        let mut o = Section::new();
        o.insert("access_key".into(), "AK".into());
        o.insert("secret_access_key".into(), "SECRET".into());
        let missing = d.path().join("missing.pem");
        o.insert("tls_ca_file".into(), missing.display().to_string());
        let e = S3Config::parse("h/b", &o).unwrap_err();
        assert!(e.downcast_ref::<OptionError>().is_some());
        assert!(e.to_string().contains("tls_ca_file") && e.to_string().contains("missing.pem"), "{e}");
        let junk = d.path().join("junk.pem");
        std::fs::write(&junk, "not a certificate\n").unwrap();
        o.insert("tls_ca_file".into(), junk.display().to_string());
        let e = S3Config::parse("h/b", &o).unwrap_err().to_string();
        assert!(e.contains("no PEM certificate"), "{e}");
    }
}
