//! Credentials when no access key is configured: the standard AWS chain from aws-config
//! (environment, shared config/credentials files, web identity, container and instance
//! metadata, `credential_process`), or one named `profile`, or, with `sts_endpoint`, a web
//! identity token exchanged at that STS (MinIO's AssumeRoleWithWebIdentity). The client puts
//! the SDK's identity cache in front, so temporary credentials are asked for again before
//! they expire.

use super::config::S3Config;
use aws_config::default_provider::credentials::DefaultCredentialsChain;
use aws_config::profile::ProfileFileCredentialsProvider;
use aws_config::provider_config::ProviderConfig;
use aws_credential_types::provider::{error::CredentialsError, future::ProvideCredentials as Future};
use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, ProvideCredentials, Region, SharedCredentialsProvider, SharedHttpClient,
};

pub async fn provider(cfg: &S3Config, http: Option<SharedHttpClient>) -> SharedCredentialsProvider {
    let region = Region::new(cfg.region.clone());
    let mut pc = ProviderConfig::without_region().with_region(Some(region.clone()));
    if let Some(h) = &http {
        pc = pc.with_http_client(h.clone());
    }
    if let Some(ep) = &cfg.sts_endpoint {
        let mut sts =
            aws_sdk_sts::Config::builder().behavior_version(BehaviorVersion::latest()).region(region).endpoint_url(ep);
        if let Some(h) = http {
            sts = sts.http_client(h);
        }
        return SharedCredentialsProvider::new(WebIdentity { sts: aws_sdk_sts::Client::from_conf(sts.build()) });
    }
    if let Some(name) = &cfg.profile {
        // The named profile, even when AWS_ACCESS_KEY_ID is set: the option says which to use.
        return SharedCredentialsProvider::new(
            ProfileFileCredentialsProvider::builder().configure(&pc).profile_name(name).build(),
        );
    }
    SharedCredentialsProvider::new(DefaultCredentialsChain::builder().configure(pc).region(region).build().await)
}

/// AssumeRoleWithWebIdentity at `sts_endpoint`, with the token read from
/// AWS_WEB_IDENTITY_TOKEN_FILE at every call (identity providers rotate it) and AWS_ROLE_ARN.
#[derive(Debug)]
struct WebIdentity {
    sts: aws_sdk_sts::Client,
}

impl WebIdentity {
    async fn load(&self) -> Result<Credentials, CredentialsError> {
        let var = |k: &str| {
            std::env::var(k)
                .map_err(|_| CredentialsError::not_loaded(format!("{k} is not set (sts_endpoint needs it)")))
        };
        let file = var("AWS_WEB_IDENTITY_TOKEN_FILE")?;
        let token = std::fs::read_to_string(&file).map_err(|e| {
            CredentialsError::invalid_configuration(format!("cannot read the web identity token {file}: {e}"))
        })?;
        let session = std::env::var("AWS_ROLE_SESSION_NAME").unwrap_or_else(|_| "plakar".into());
        let out = self
            .sts
            .assume_role_with_web_identity()
            .role_arn(var("AWS_ROLE_ARN")?)
            .role_session_name(session)
            .web_identity_token(token.trim())
            .send()
            .await
            .map_err(|e| {
                let msg = aws_smithy_types::error::display::DisplayErrorContext(&e).to_string();
                CredentialsError::provider_error(format!("AssumeRoleWithWebIdentity at sts_endpoint: {msg}"))
            })?;
        let c = out
            .credentials()
            .ok_or_else(|| CredentialsError::unhandled("AssumeRoleWithWebIdentity answered without credentials"))?;
        let expiry = std::time::SystemTime::try_from(*c.expiration()).ok();
        Ok(Credentials::new(
            c.access_key_id(),
            c.secret_access_key(),
            Some(c.session_token().to_string()),
            expiry,
            "web-identity",
        ))
    }
}

impl ProvideCredentials for WebIdentity {
    fn provide_credentials<'a>(&'a self) -> Future<'a>
    where
        Self: 'a,
    {
        Future::new(self.load())
    }
}
