//! Server-side encryption (SSE) of the objects an S3 store, source or destination reads and
//! writes, on top of (never instead of) the store's own encryption:
//! - `sse=AES256`: SSE-S3, the server's keys;
//! - `sse=aws:kms` (implied by `sse_kms_key_id=ID`): SSE-KMS, a KMS key;
//! - SSE-C: a 256-bit key of ours, read from `sse_customer_key_file=PATH` or
//!   `sse_customer_key_env=NAME`, sent with every request that reads or writes an object's
//!   bytes (GET, HEAD, PUT, CreateMultipartUpload, UploadPart, CopyObject and its source).
//!
//! Invariant: the customer key is never a literal option (it would sit in the config file and
//! in shell history), and neither it nor its MD5 appears in Debug output, messages or errors.

use crate::connectors::options::{expand_home, Options as Section};
use base64::Engine as _;
use md5::Digest as _;

/// What `sse_customer_key`, given as a value, is refused with.
pub const LITERAL_KEY: &str = "sse_customer_key cannot be given as a value (it would be kept in the config file \
     and in shell history): put the 256-bit key (32 bytes, or their base64 or hex) in a file only you can read \
     and set sse_customer_key_file=PATH, or in an environment variable and set sse_customer_key_env=NAME";

#[derive(Clone, Default, PartialEq, Eq)]
pub enum Sse {
    #[default]
    None,
    /// SSE-S3 (`AES256`).
    S3,
    /// SSE-KMS, with the key id when one is named (else the bucket's or account's default).
    Kms(Option<String>),
    Customer(CustomerKey),
}

/// An SSE-C key as S3 headers want it.
#[derive(Clone, PartialEq, Eq)]
pub struct CustomerKey {
    /// base64 of the 32 bytes.
    pub key: String,
    /// base64 of the MD5 of the 32 bytes.
    pub md5: String,
    /// Where it came from, as the user set it (`sse_customer_key_file=/path`): for messages.
    pub origin: String,
}

impl std::fmt::Debug for Sse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Sse::None => write!(f, "none"),
            Sse::S3 => write!(f, "AES256"),
            Sse::Kms(id) => write!(f, "aws:kms({})", id.as_deref().unwrap_or("default key")),
            Sse::Customer(k) => write!(f, "SSE-C(key from {})", k.origin),
        }
    }
}

impl Sse {
    /// Reads the SSE options; a message for an `OptionError` (exit 64) when they cannot be used.
    pub fn parse(opts: &Section) -> Result<Sse, String> {
        if opts.contains_key("sse_customer_key") {
            return Err(LITERAL_KEY.to_string());
        }
        let customer = match (opts.get("sse_customer_key_file"), opts.get("sse_customer_key_env")) {
            (Some(_), Some(_)) => {
                return Err("set one of sse_customer_key_file and sse_customer_key_env, not both".into());
            }
            (Some(p), None) => Some(from_file(p)?),
            (None, Some(name)) => Some(from_env(name)?),
            (None, None) => None,
        };
        let kms_id = opts.get("sse_kms_key_id").filter(|v| !v.is_empty()).cloned();
        let mode = match opts.get("sse").map(|s| s.trim()) {
            None | Some("") => None,
            Some(s) => Some(check_mode(s)?),
        };
        match (mode, kms_id, customer) {
            (Some(m), _, Some(_)) => Err(format!(
                "sse={m} and an SSE-C key (sse_customer_key_file / sse_customer_key_env) exclude each other: an \
                 object has one kind of server-side encryption; unset one of them"
            )),
            (_, Some(_), Some(_)) => Err("sse_kms_key_id and an SSE-C key (sse_customer_key_file / \
                                          sse_customer_key_env) exclude each other; unset one of them"
                .into()),
            (None, None, Some(k)) => Ok(Sse::Customer(k)),
            (Some("AES256"), Some(_), None) => {
                Err("sse_kms_key_id needs sse=aws:kms (sse=AES256 uses the server's own keys)".into())
            }
            (Some("AES256"), None, None) => Ok(Sse::S3),
            (Some(_), id, None) | (None, id @ Some(_), None) => Ok(Sse::Kms(id)),
            (None, None, None) => Ok(Sse::None),
        }
    }

    pub fn customer(&self) -> Option<&CustomerKey> {
        match self {
            Sse::Customer(k) => Some(k),
            _ => None,
        }
    }
}

/// `sse`'s value, spelled as S3 does; anything else names the valid ones.
pub fn check_mode(s: &str) -> Result<&'static str, String> {
    match s.to_ascii_lowercase().as_str() {
        "aes256" => Ok("AES256"),
        "aws:kms" => Ok("aws:kms"),
        _ => Err(format!(
            "option sse: {s:?} is not a server-side encryption S3 knows: use AES256 (SSE-S3) or aws:kms (SSE-KMS, \
             with sse_kms_key_id=ID for a key of yours); for SSE-C set sse_customer_key_file or \
             sse_customer_key_env instead"
        )),
    }
}

fn from_file(p: &str) -> Result<CustomerKey, String> {
    let path = expand_home(p);
    let origin = format!("sse_customer_key_file={}", path.display());
    let bytes = std::fs::read(&path)
        .map_err(|e| format!("option sse_customer_key_file: cannot read {}: {e}", path.display()))?;
    CustomerKey::new(&bytes, origin)
}

fn from_env(name: &str) -> Result<CustomerKey, String> {
    let origin = format!("sse_customer_key_env={name}");
    let value = std::env::var_os(name).filter(|v| !v.is_empty()).ok_or_else(|| {
        format!("option sse_customer_key_env: the environment variable {name} is not set (or is empty): export the key in it")
    })?;
    use std::os::unix::ffi::OsStrExt;
    CustomerKey::new(value.as_bytes(), origin)
}

impl CustomerKey {
    /// `raw` holds 32 bytes as they are, or their base64 or hex (surrounding spaces and a
    /// final newline allowed, as `openssl rand -base64 32 > key` writes).
    pub fn new(raw: &[u8], origin: String) -> Result<CustomerKey, String> {
        let key = decode(raw).ok_or_else(|| {
            format!(
                "{origin}: the SSE-C key must be 256 bits: 32 bytes, or their base64 (44 characters) or hex (64); \
                 make one with: openssl rand -base64 32"
            )
        })?;
        let b64 = base64::engine::general_purpose::STANDARD;
        Ok(CustomerKey { key: b64.encode(key), md5: b64.encode(md5::Md5::digest(key)), origin })
    }
}

fn decode(raw: &[u8]) -> Option<[u8; 32]> {
    if let Ok(k) = <[u8; 32]>::try_from(raw) {
        return Some(k);
    }
    let text = std::str::from_utf8(raw).ok()?.trim();
    let decoded = match text.len() {
        64 => hex::decode(text).ok()?,
        _ => base64::engine::general_purpose::STANDARD.decode(text).ok()?,
    };
    <[u8; 32]>::try_from(decoded).ok()
}

/// The `x-amz-server-side-encryption-customer-*` headers on requests that read an object
/// (GET, HEAD) or send part of one (UploadPart).
pub trait WithCustomerKey: Sized {
    fn customer_key(self, sse: &Sse) -> Self;
}

/// The headers that choose how a new object is encrypted (PUT, CreateMultipartUpload, CopyObject).
pub trait WithSse: WithCustomerKey {
    fn sse(self, sse: &Sse) -> Self;
}

macro_rules! customer_keyed {
    ($($t:ty),*) => {$(
        impl WithCustomerKey for $t {
            fn customer_key(self, sse: &Sse) -> Self {
                let k = sse.customer();
                self.set_sse_customer_algorithm(k.map(|_| "AES256".to_string()))
                    .set_sse_customer_key(k.map(|k| k.key.clone()))
                    .set_sse_customer_key_md5(k.map(|k| k.md5.clone()))
            }
        }
    )*};
}

macro_rules! encrypting {
    ($($t:ty),*) => {$(
        impl WithSse for $t {
            fn sse(self, sse: &Sse) -> Self {
                use aws_sdk_s3::types::ServerSideEncryption as E;
                let (mode, id) = match sse {
                    Sse::S3 => (Some(E::Aes256), None),
                    Sse::Kms(id) => (Some(E::AwsKms), id.clone()),
                    Sse::None | Sse::Customer(_) => (None, None),
                };
                self.set_server_side_encryption(mode).set_ssekms_key_id(id).customer_key(sse)
            }
        }
    )*};
}

use aws_sdk_s3::operation::{
    copy_object::builders::CopyObjectFluentBuilder,
    create_multipart_upload::builders::CreateMultipartUploadFluentBuilder,
    get_object::builders::GetObjectFluentBuilder, head_object::builders::HeadObjectFluentBuilder,
    put_object::builders::PutObjectFluentBuilder, upload_part::builders::UploadPartFluentBuilder,
};

customer_keyed!(
    GetObjectFluentBuilder,
    HeadObjectFluentBuilder,
    PutObjectFluentBuilder,
    CreateMultipartUploadFluentBuilder,
    UploadPartFluentBuilder,
    CopyObjectFluentBuilder
);
encrypting!(PutObjectFluentBuilder, CreateMultipartUploadFluentBuilder, CopyObjectFluentBuilder);

/// A copy's source is encrypted with the same customer key as its destination: both are ours.
pub fn copy_source_key(req: CopyObjectFluentBuilder, sse: &Sse) -> CopyObjectFluentBuilder {
    let k = sse.customer();
    req.set_copy_source_sse_customer_algorithm(k.map(|_| "AES256".to_string()))
        .set_copy_source_sse_customer_key(k.map(|k| k.key.clone()))
        .set_copy_source_sse_customer_key_md5(k.map(|k| k.md5.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(kv: &[(&str, &str)]) -> Section {
        kv.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn modes_and_their_conflicts() {
        assert_eq!(Sse::parse(&opts(&[])).unwrap(), Sse::None);
        assert_eq!(Sse::parse(&opts(&[("sse", "aes256")])).unwrap(), Sse::S3);
        assert_eq!(Sse::parse(&opts(&[("sse", "aws:kms")])).unwrap(), Sse::Kms(None));
        assert_eq!(Sse::parse(&opts(&[("sse_kms_key_id", "k1")])).unwrap(), Sse::Kms(Some("k1".into())));
        assert!(Sse::parse(&opts(&[("sse", "AES256"), ("sse_kms_key_id", "k1")])).unwrap_err().contains("aws:kms"));
        assert!(Sse::parse(&opts(&[("sse", "rot13")])).unwrap_err().contains("AES256"));
        let e = Sse::parse(&opts(&[("sse_customer_key", "0123456789abcdef0123456789abcdef")])).unwrap_err();
        assert!(e.contains("sse_customer_key_file") && !e.contains("0123456789abcdef"), "{e}");
    }

    #[test]
    fn customer_key_from_a_file_or_the_environment_never_shown() {
        let d = tempfile::tempdir().unwrap();
        let raw = [7u8; 32];
        let b64 = base64::engine::general_purpose::STANDARD.encode(raw);
        for (name, content) in
            [("raw", raw.to_vec()), ("b64", format!("{b64}\n").into_bytes()), ("hex", hex::encode(raw).into_bytes())]
        {
            let p = d.path().join(name);
            std::fs::write(&p, content).unwrap();
            let sse = Sse::parse(&opts(&[("sse_customer_key_file", p.to_str().unwrap())])).unwrap();
            let k = sse.customer().unwrap();
            assert_eq!(k.key, b64, "{name}");
            assert_eq!(k.md5, base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(raw)));
            assert!(!format!("{sse:?}").contains(&b64));
        }
        let short = d.path().join("short");
        std::fs::write(&short, "too short").unwrap();
        let e = Sse::parse(&opts(&[("sse_customer_key_file", short.to_str().unwrap())])).unwrap_err();
        assert!(e.contains("256 bits") && !e.contains("too short"), "{e}");
        let e = Sse::parse(&opts(&[("sse_customer_key_env", "PLAKAR_TEST_NO_SUCH_VARIABLE")])).unwrap_err();
        assert!(e.contains("PLAKAR_TEST_NO_SUCH_VARIABLE"), "{e}");
        let p = d.path().join("b64");
        let e = Sse::parse(&opts(&[("sse_customer_key_file", p.to_str().unwrap()), ("sse", "AES256")])).unwrap_err();
        assert!(e.contains("exclude"), "{e}");
    }
}
