//! Classifies S3 errors by behaviour, with messages that say what to fix.

use super::config::S3Config;
use crate::kloset::store::{StoreError, StoreErrorKind as K};
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};

fn chain_text(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

pub fn classify<E>(e: SdkError<E, HttpResponse>, cfg: &S3Config, what: &str) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let ep = &cfg.endpoint;
    match &e {
        SdkError::TimeoutError(_) => StoreError::new(K::Transient, format!("{what}: {ep} timed out")),
        SdkError::DispatchFailure(d) => {
            let text = chain_text(&e).to_lowercase();
            if ["loading credentials", "credential provider", "no credentials"].iter().any(|m| text.contains(m)) {
                return StoreError::new(
                    K::PermissionDenied,
                    format!(
                        "{what}: no usable credentials for {ep}: set access_key and secret_access_key (plakar store \
                         set NAME access_key=...), or profile=NAME, or AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, or \
                         a web identity (AWS_WEB_IDENTITY_TOKEN_FILE, AWS_ROLE_ARN, and sts_endpoint for MinIO) ({})",
                        short(&text)
                    ),
                );
            }
            if let Some(ce) = super::tls::bad_certificate(&e) {
                return untrusted_certificate(cfg, what, ce);
            }
            if cfg.use_tls
                && (text.contains("tls")
                    || text.contains("ssl")
                    || text.contains("certificate")
                    || text.contains("handshake")
                    || text.contains("corrupt message")
                    || text.contains("invalidcontenttype"))
            {
                return StoreError::new(K::Unreachable, format!("{what}: TLS connection to {ep} failed ({}); if the server does not use TLS, set use_tls to false", short(&text)));
            }
            if d.is_timeout() {
                return StoreError::new(K::Transient, format!("{what}: connection to {ep} timed out"));
            }
            StoreError::new(
                K::Unreachable,
                format!(
                    "{what}: cannot reach {ep}: {} (check the host and port, and that the server runs)",
                    short(&text)
                ),
            )
        }
        SdkError::ServiceError(se) => {
            let status = se.raw().status().as_u16();
            let code = se.err().code().unwrap_or("").to_string();
            // A reply the SDK could not read has no message: its error chain says what failed.
            let msg = se
                .err()
                .message()
                .filter(|m| !m.is_empty())
                .map(str::to_string)
                .unwrap_or_else(|| short(&aws_smithy_types::error::display::DisplayErrorContext(&e).to_string()));
            if let Some(err) = super::region::mismatch(se.raw(), status, &code, &msg, cfg, what) {
                return err;
            }
            if let Some(err) = customer_key_refused(status, &code, &msg, cfg, what) {
                return err;
            }
            status_error(status, &code, &msg, cfg, what)
        }
        SdkError::ResponseError(r) => {
            let status = r.raw().status().as_u16();
            if let Some(err) = super::region::mismatch(r.raw(), status, "", "", cfg, what) {
                return err;
            }
            if !cfg.use_tls && status == 400 {
                return StoreError::new(
                    K::Unreachable,
                    format!("{what}: {ep} rejected a plain-HTTP request; if the server uses TLS, set use_tls to true"),
                );
            }
            status_error(status, "", &short(&chain_text(&e)), cfg, what)
        }
        _ => StoreError::new(K::Other, format!("{what}: {ep}: {}", short(&chain_text(&e)))),
    }
}

fn status_error(status: u16, code: &str, msg: &str, cfg: &S3Config, what: &str) -> StoreError {
    let ep = &cfg.endpoint;
    let detail = if code.is_empty() { format!("HTTP {status}") } else { format!("{code}, HTTP {status}") };
    match (status, code) {
        (_, "AccessDenied") => StoreError::new(
            K::PermissionDenied,
            format!(
                "{what}: {ep} denied it (AccessDenied): the key lacks the {} permission on bucket {}, or the \
                 credentials are wrong (check access_key and secret_access_key, and use_tls)",
                action(what),
                cfg.bucket
            ),
        ),
        (_, "InvalidObjectState") => StoreError::new(
            K::Other,
            format!(
                "{what}: the object is in a cold storage class (GLACIER, DEEP_ARCHIVE...): restore (thaw) it on \
                 the S3 side first (RestoreObject, or `aws s3api restore-object`), then run this again; a thaw \
                 takes minutes to hours (GLACIER) or up to 48 hours (DEEP_ARCHIVE) and AWS bills it per GB \
                 retrieved and per request, on top of the temporary STANDARD copy it keeps for the days you ask"
            ),
        ),
        (_, "InvalidToken" | "ExpiredToken" | "TokenRefreshRequired") => StoreError::new(
            K::PermissionDenied,
            format!("{what}: {ep} rejected the session token ({detail}): it expired or is wrong; get fresh temporary credentials and set session_token (or AWS_SESSION_TOKEN)"),
        ),
        (_, "InvalidAccessKeyId" | "SignatureDoesNotMatch") | (401 | 403, _) => StoreError::new(
            K::PermissionDenied,
            format!(
                "{what}: {ep} refused the credentials ({detail}): check access_key and secret_access_key, and use_tls \
                 (or the key lacks the {} permission on bucket {})",
                action(what),
                cfg.bucket
            ),
        ),
        (_, "NoSuchBucket") => {
            StoreError::new(K::NotFound, format!("{what}: bucket {} does not exist on {ep}", cfg.bucket))
        }
        (404, _) | (_, "NoSuchKey" | "NotFound") => {
            StoreError::new(K::NotFound, format!("{what}: not found ({detail})"))
        }
        (409, _) | (_, "BucketAlreadyOwnedByYou") => {
            StoreError::new(K::AlreadyExists, format!("{what}: already exists ({detail})"))
        }
        (429 | 500..=599, _) | (_, "SlowDown") => {
            StoreError::new(K::Transient, format!("{what}: {ep} is unavailable ({detail}): {msg}"))
        }
        (400, "") if !cfg.use_tls => StoreError::new(
            K::Unreachable,
            format!(
                "{what}: {ep} rejected a plain-HTTP request ({detail}); if the server uses TLS, set use_tls to true"
            ),
        ),
        _ => StoreError::new(K::Other, format!("{what}: {ep} answered {detail}: {msg}")),
    }
}

/// How a server refused a request over the SSE-C key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyRefusal {
    /// The object is SSE-C encrypted and no key is configured.
    Missing,
    /// The configured key is not the object's.
    Wrong,
    /// 403 while a key is set: AWS's answer to a wrong key, or a permission missing.
    Denied,
    /// A key is set but the object was written without one.
    NotEncrypted,
}

/// Garage and AWS answer 400 InvalidRequest, speaking of encryption (Garage: "Object is
/// encrypted", "Invalid encryption key", "Trying to decrypt a plaintext object"; AWS: "...
/// not applicable to this object" for the last); AWS answers a wrong key with 403.
fn key_refusal(status: u16, code: &str, msg: &str, cfg: &S3Config, what: &str) -> Option<KeyRefusal> {
    let key = cfg.sse.customer();
    if status == 403 && key.is_some() && what.starts_with("reading") {
        return Some(KeyRefusal::Denied);
    }
    // "crypt": Garage's "decrypt a plaintext object" does not say "encrypt".
    if !(status == 400 && code == "InvalidRequest" && msg.to_lowercase().contains("crypt")) {
        return None;
    }
    Some(match key {
        None => KeyRefusal::Missing,
        Some(_) if msg.contains("plaintext") || msg.contains("not applicable") => KeyRefusal::NotEncrypted,
        Some(_) => KeyRefusal::Wrong,
    })
}

/// Whether a refusal is about the SSE-C key every request of this client carries (missing or
/// wrong) rather than about one object: every other object of the bucket would be refused
/// alike, so a source stops there instead of reporting each file. An object written without
/// SSE-C in a bucket read with a key is about that object (a bucket may mix both).
pub fn refuses_every_object<E: ProvideErrorMetadata>(
    e: &SdkError<E, HttpResponse>,
    cfg: &S3Config,
    what: &str,
) -> bool {
    let SdkError::ServiceError(se) = e else { return false };
    let (status, code, msg) = (se.raw().status().as_u16(), se.err().code().unwrap_or(""), se.err().message());
    matches!(
        key_refusal(status, code, msg.unwrap_or(""), cfg, what),
        Some(KeyRefusal::Missing | KeyRefusal::Wrong | KeyRefusal::Denied)
    )
}

/// A refusal about the SSE-C key: exit 77 like other credentials, naming the options that set it.
fn customer_key_refused(status: u16, code: &str, msg: &str, cfg: &S3Config, what: &str) -> Option<StoreError> {
    let ep = &cfg.endpoint;
    let origin = cfg.sse.customer().map(|k| k.origin.as_str()).unwrap_or_default();
    let text = match key_refusal(status, code, msg, cfg, what)? {
        KeyRefusal::Missing => format!(
            "{what}: the object is encrypted with a customer key (SSE-C) and none is configured: set \
             sse_customer_key_file=PATH or sse_customer_key_env=NAME on the store, source or destination to the key \
             it was written with ({ep}: {msg})"
        ),
        KeyRefusal::NotEncrypted => format!(
            "{what}: the object was written without a customer key (SSE-C), but {origin} is set: unset \
             sse_customer_key_file / sse_customer_key_env to read objects written without one ({ep}: {msg})"
        ),
        KeyRefusal::Denied => format!(
            "{what}: {ep} denied it (AccessDenied): the SSE-C key from {origin} is not the one the object was \
             written with, or the credentials lack s3:GetObject on bucket {}",
            cfg.bucket
        ),
        KeyRefusal::Wrong => format!(
            "{what}: {ep} refused the SSE-C key from {origin}: it is not the key the object was written with ({msg})"
        ),
    };
    Some(StoreError::new(K::PermissionDenied, text))
}

/// Exit 77, as for an SSH host key not trusted: the server could not prove who it is.
fn untrusted_certificate(cfg: &S3Config, what: &str, why: &rustls::CertificateError) -> StoreError {
    let ep = &cfg.endpoint;
    let reason = match (why, &cfg.ca_file) {
        (rustls::CertificateError::UnknownIssuer, None) => "signed by a CA this machine does not trust".to_string(),
        (rustls::CertificateError::UnknownIssuer, Some((f, _))) => {
            format!("signed by a CA that neither this machine nor tls_ca_file {} holds", f.display())
        }
        (other, _) => short(&other.to_string()),
    };
    StoreError::new(
        K::PermissionDenied,
        format!(
            "{what}: the TLS certificate of {ep} is not trusted ({reason}): if the server's certificate comes \
             from a private CA, set tls_ca_file to that CA's certificate (PEM) on the store, source or destination \
             (plakar store set NAME tls_ca_file=/path/to/ca.pem), or point SSL_CERT_FILE at a bundle holding it; \
             tls_insecure_no_verify=true skips the check (unsafe)"
        ),
    )
}

/// The S3 permission an operation needs, from how it was described.
fn action(what: &str) -> &'static str {
    if what.contains("old version") {
        return if what.starts_with("listing") { "s3:ListBucketVersions" } else { "s3:DeleteObjectVersion" };
    }
    match what.split_whitespace().next().unwrap_or("") {
        "writing" => "s3:PutObject",
        "listing" => "s3:ListBucket",
        "deleting" => "s3:DeleteObject",
        "creating" => "s3:CreateBucket",
        "checking" => "s3:ListBucket",
        _ => "s3:GetObject",
    }
}

pub fn short(s: &str) -> String {
    let s = s.replace('\n', " ");
    if s.len() > 240 {
        format!("{}...", &s[..s.char_indices().nth(240).map(|(i, _)| i).unwrap_or(s.len())])
    } else {
        s
    }
}
