//! A request signed for another region than the server's. SigV4 puts the region in the
//! signature's scope, so a server that checks it (AWS, Garage, Ceph...) refuses the request:
//! AuthorizationHeaderMalformed (AWS and Garage), or, for a bucket in another AWS region,
//! a 301 with the bucket's region in x-amz-bucket-region. Most servers say which region they
//! expect, in that header, in the error's <Region> element, or in its message; the message
//! passes it on so the fix is one `set`.

use super::config::S3Config;
use super::errors::short;
use crate::kloset::store::{StoreError, StoreErrorKind as K};
use aws_sdk_s3::config::http::HttpResponse;

/// The error for a region mismatch, or None when the response is something else.
pub fn mismatch(
    raw: &HttpResponse,
    status: u16,
    code: &str,
    msg: &str,
    cfg: &S3Config,
    what: &str,
) -> Option<StoreError> {
    let header = raw.headers().get("x-amz-bucket-region").map(str::to_string);
    let redirect = status == 301 && header.is_some();
    if code != "AuthorizationHeaderMalformed" && code != "IllegalLocationConstraintException" && !redirect {
        return None;
    }
    let body = raw.body().bytes().map(String::from_utf8_lossy).unwrap_or_default();
    let expected = header
        .or_else(|| element(&body, "Region"))
        .or_else(|| quoted_after(msg, "expecting"))
        .filter(|r| !r.is_empty() && *r != cfg.region);
    let ep = &cfg.endpoint;
    let sent = &cfg.region;
    let message = match expected {
        Some(r) => format!(
            "{what}: {ep} expects requests signed for region {r}, not {sent}: set region={r} on the store, \
             source or destination (plakar store set NAME region={r}), or AWS_REGION={r}"
        ),
        None => format!(
            "{what}: {ep} refused the region {sent} ({}): set region to the server's region (on AWS the \
             bucket's region; on Garage s3_region in garage.toml; on MinIO its --region), or AWS_REGION",
            short(&format!("{code} {msg}"))
        ),
    };
    Some(StoreError::new(K::PermissionDenied, message))
}

/// The text of `<name>...</name>` in an XML error body.
fn element(body: &str, name: &str) -> Option<String> {
    let start = body.find(&format!("<{name}>"))? + name.len() + 2;
    let len = body[start..].find(&format!("</{name}>"))?;
    Some(body[start..start + len].trim().to_string())
}

/// AWS's message: "the region 'us-east-1' is wrong; expecting 'eu-west-3'".
fn quoted_after(msg: &str, word: &str) -> Option<String> {
    let rest = &msg[msg.find(word)? + word.len()..];
    let rest = &rest[rest.find('\'')? + 1..];
    Some(rest[..rest.find('\'')?].to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_expected_region_in_body_or_message() {
        let body = "<Error><Code>AuthorizationHeaderMalformed</Code><Region>garage</Region></Error>";
        assert_eq!(element(body, "Region").as_deref(), Some("garage"));
        let aws = "The authorization header is malformed; the region 'us-east-1' is wrong; expecting 'eu-west-3'";
        assert_eq!(quoted_after(aws, "expecting").as_deref(), Some("eu-west-3"));
        assert_eq!(quoted_after("no hint here", "expecting"), None);
    }
}
