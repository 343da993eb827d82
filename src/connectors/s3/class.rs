//! Storage classes. Only packfiles that hold file data alone take the configured class:
//! CONFIG, states, locks and the packfiles of trees and snapshot headers stay STANDARD, so
//! everything `ls`, `backup`, `check -fast` and `maintenance` read is readable at once,
//! whatever the class. A class is checked against AWS's list when it is set, not at the
//! first upload.

use crate::kloset::store::Content;
use aws_sdk_s3::types::StorageClass;

/// AWS's storage classes (what PutObject's x-amz-storage-class accepts).
pub const CLASSES: [&str; 10] = [
    "STANDARD",
    "REDUCED_REDUNDANCY",
    "STANDARD_IA",
    "ONEZONE_IA",
    "INTELLIGENT_TIERING",
    "GLACIER_IR",
    "GLACIER",
    "DEEP_ARCHIVE",
    "OUTPOSTS",
    "EXPRESS_ONEZONE",
];

/// Checks a `storage_class` value; the error names the valid ones.
pub fn check(value: &str) -> Result<(), String> {
    if CLASSES.contains(&value) {
        return Ok(());
    }
    Err(format!(
        "storage_class {value:?} is not an S3 storage class; valid classes: {} (GLACIER and DEEP_ARCHIVE hold \
         file data only and must be thawed before a restore)",
        CLASSES.join(", ")
    ))
}

/// The class an object is written with.
pub fn for_content(configured: &str, content: Content) -> StorageClass {
    StorageClass::from(match content {
        Content::Data => configured,
        Content::Metadata => "STANDARD",
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_the_valid_classes() {
        assert!(super::check("GLACIER").is_ok());
        let e = super::check("GLACIAL").unwrap_err();
        assert!(e.contains("GLACIAL") && e.contains("DEEP_ARCHIVE") && e.contains("STANDARD_IA"), "{e}");
    }
}
