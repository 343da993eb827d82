//! Which servers the S3 connector trusts over HTTPS. By default the system's roots, as
//! rustls-native-certs finds them (the OS bundle, or SSL_CERT_FILE / SSL_CERT_DIR in its
//! place, as OpenSSL does), plus the certificates of `tls_ca_file`: a private CA is added,
//! never substituted. `tls_insecure_no_verify` trusts anything (insecure.rs) and warns.
//! Plain HTTP keeps the SDK's default client.

use super::config::S3Config;
use super::insecure;
use crate::connectors::notice;
use aws_sdk_s3::config::interceptors::InterceptorContext;
use aws_sdk_s3::config::retry::{ClassifyRetry, RetryAction};
use aws_sdk_s3::config::SharedHttpClient;
use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider, TlsContext, TrustStore};
use aws_smithy_runtime_api::client::retries::classifiers::RetryClassifierPriority;
use rustls::pki_types::{pem::PemObject, CertificateDer};
use std::path::Path;
use std::sync::LazyLock;
use std::time::Duration;

/// Reads a PEM bundle and checks that it holds certificates a TLS client can trust (the
/// SDK panics on one it cannot parse); returns the file's bytes.
pub fn read_certificates(path: &Path) -> Result<Vec<u8>, String> {
    let shown = path.display();
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {shown}: {e}"))?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{shown} is not a valid PEM file ({e:?})"))?;
    if certs.is_empty() {
        return Err(format!(
            "{shown} holds no PEM certificate (-----BEGIN CERTIFICATE-----): give the certificate of the CA that \
             signed the server's certificate"
        ));
    }
    let mut roots = rustls::RootCertStore::empty();
    for (i, c) in certs.into_iter().enumerate() {
        roots.add(c).map_err(|e| format!("certificate {} in {shown} cannot be used: {e}", i + 1))?;
    }
    Ok(bytes)
}

/// Whether the system (or SSL_CERT_FILE / SSL_CERT_DIR) has any root: the SDK asserts it
/// does when asked to use them.
static NATIVE_ROOTS: LazyLock<bool> = LazyLock::new(|| !rustls_native_certs::load_native_certs().certs.is_empty());

/// The HTTP client for `cfg`, or None for the SDK's default (plain HTTP).
pub fn http_client(cfg: &S3Config, connect_timeout: Duration) -> std::io::Result<Option<SharedHttpClient>> {
    if !cfg.use_tls {
        return Ok(None);
    }
    if cfg.insecure {
        notice::warn(&format!(
            "tls_insecure_no_verify is set for {}: its TLS certificate is not checked, so anyone on the network \
             path can pose as the server and take the credentials; trust its CA with tls_ca_file instead",
            cfg.display()
        ));
        return Ok(Some(insecure::client(connect_timeout)));
    }
    let mut trust = TrustStore::empty().with_native_roots(*NATIVE_ROOTS);
    if let Some((_, pem)) = &cfg.ca_file {
        trust = trust.with_pem_certificate(pem.clone());
    }
    let ctx = TlsContext::builder().with_trust_store(trust).build().map_err(std::io::Error::other)?;
    let client = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::AwsLc))
        .tls_context(ctx)
        .build_https();
    Ok(Some(client))
}

/// The certificate error behind a failed request, if that is what failed. Walks the error's
/// causes, looking inside io::Errors (whose `source()` skips the error they carry).
pub fn bad_certificate<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::CertificateError> {
    let mut cur = Some(e);
    while let Some(c) = cur {
        if let Some(rustls::Error::InvalidCertificate(ce)) = c.downcast_ref::<rustls::Error>() {
            return Some(ce);
        }
        cur = match c.downcast_ref::<std::io::Error>() {
            Some(io) => io.get_ref().map(|i| i as &(dyn std::error::Error + 'static)),
            None => c.source(),
        };
    }
    None
}

/// A certificate that does not verify will not verify on a retry either: fail at once
/// rather than after the SDK's backoff.
#[derive(Debug)]
pub struct NoRetryOnBadCertificate;

impl ClassifyRetry for NoRetryOnBadCertificate {
    fn classify_retry(&self, ctx: &InterceptorContext) -> RetryAction {
        match ctx.output_or_error() {
            Some(Err(e)) if e.as_connector_error().is_some_and(|c| bad_certificate(c).is_some()) => {
                RetryAction::RetryForbidden
            }
            _ => RetryAction::NoActionIndicated,
        }
    }

    fn name(&self) -> &'static str {
        "NoRetryOnBadCertificate"
    }

    fn priority(&self) -> RetryClassifierPriority {
        RetryClassifierPriority::run_after(RetryClassifierPriority::transient_error_classifier())
    }
}
