//! Builds the aws-sdk-s3 client and the runtime that drives it.

use super::config::S3Config;
use super::tls;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
    SharedCredentialsProvider,
};
use std::future::Future;
use std::time::Duration;

pub struct Client {
    pub s3: aws_sdk_s3::Client,
    pub cfg: S3Config,
    rt: tokio::runtime::Runtime,
}

impl Client {
    pub fn new(cfg: S3Config) -> std::io::Result<Client> {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
        let connect_timeout = Duration::from_secs(10);
        let http = tls::http_client(&cfg, connect_timeout)?;
        // Explicit keys win; otherwise the standard chain, behind the SDK's identity cache,
        // which refreshes temporary credentials before they expire.
        let creds = match (&cfg.access_key, &cfg.secret_key) {
            (Some(a), Some(s)) => {
                SharedCredentialsProvider::new(Credentials::new(a, s, cfg.session_token.clone(), None, "plakar-config"))
            }
            _ => rt.block_on(super::chain::provider(&cfg, http.clone())),
        };
        let mut conf = aws_sdk_s3::Config::builder();
        conf.set_http_client(http);
        let conf = conf
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(cfg.region.clone()))
            .endpoint_url(cfg.url())
            .credentials_provider(creds)
            .force_path_style(true)
            // Transient failures (5xx, throttling, timeouts) are retried with backoff, a
            // bounded number of times; anything else fails at once.
            .retry_config(RetryConfig::standard().with_max_attempts(5))
            .retry_classifier(tls::NoRetryOnBadCertificate)
            .timeout_config(TimeoutConfig::builder().connect_timeout(connect_timeout).build())
            // Checksums only where S3 requires them: several compatible servers reject
            // the newer default trailers.
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
            .build();
        Ok(Client { s3: aws_sdk_s3::Client::from_conf(conf), cfg, rt })
    }

    pub fn block_on<F: Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    pub fn handle(&self) -> tokio::runtime::Handle {
        self.rt.handle().clone()
    }

    pub fn key(&self, rel: &str) -> String {
        format!("{}{}", self.cfg.prefix, rel)
    }
}
