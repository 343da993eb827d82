//! Keys as a listing returns them. Listings are asked for with `encoding-type=url`: a key
//! may hold characters XML 1.0 cannot carry (a tab, \x01, DEL), and AWS sends those only
//! percent-encoded. A server that ignores the request (it does not echo the encoding type)
//! sends keys as they are, and they are taken as they are: decoding them would turn a `%`
//! in a key into another key.

use aws_sdk_s3::types::EncodingType;

/// A key (or prefix) of a listing page, decoded when the page says it is encoded. A key
/// that is not UTF-8 once decoded cannot be asked for again: its bytes are the error.
pub fn key(raw: &str, encoding: Option<&EncodingType>) -> Result<String, Vec<u8>> {
    if encoding != Some(&EncodingType::Url) {
        return Ok(raw.to_string());
    }
    let bytes: Vec<u8> = percent_encoding::percent_decode_str(raw).collect();
    String::from_utf8(bytes).map_err(|e| e.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_only_what_the_server_encoded() {
        let url = Some(&EncodingType::Url);
        assert_eq!(key("tab%09key", url).unwrap(), "tab\tkey");
        assert_eq!(key("pct%2541", url).unwrap(), "pct%41");
        assert_eq!(key("pct%41", None).unwrap(), "pct%41", "a server that did not encode keeps `%`");
        assert_eq!(key("bad%FF", url).unwrap_err(), b"bad\xff");
    }
}
