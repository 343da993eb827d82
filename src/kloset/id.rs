//! Typed 32-byte identifiers. A blob id is the keyed BLAKE3 MAC of its plaintext; pack, state
//! and snapshot ids are random. Distinct types keep a snapshot id from being passed where a
//! packfile id is expected.

use std::fmt;

macro_rules! id_type {
    ($(#[$m:meta])* $name:ident) => {
        $(#[$m])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
        pub struct $name(pub [u8; 32]);

        impl $name {
            pub fn random() -> Self {
                let mut b = [0u8; 32];
                crate::kloset::rng::fill(&mut b);
                Self(b)
            }
            pub fn to_hex(&self) -> String {
                hex::encode(self.0)
            }
            /// The eight hex digits Plakar prints in listings.
            pub fn short(&self) -> String {
                hex::encode(&self.0[..4])
            }
            pub fn from_hex(s: &str) -> Option<Self> {
                let v = hex::decode(s).ok()?;
                Some(Self(v.try_into().ok()?))
            }
            pub fn from_slice(s: &[u8]) -> Option<Self> {
                Some(Self(s.try_into().ok()?))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.short())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_bytes(&self.0)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let b: serde_bytes::ByteBuf = serde::Deserialize::deserialize(d)?;
                Self::from_slice(&b).ok_or_else(|| serde::de::Error::custom("id must be 32 bytes"))
            }
        }
    };
}

id_type!(
    /// Keyed MAC of a blob's plaintext (chunk, tree node) or a snapshot's random id.
    BlobId
);
id_type!(
    /// Random id of a packfile.
    PackId
);
id_type!(
    /// Random id of a state.
    StateId
);
id_type!(
    /// Random id of a snapshot; its header is stored as a blob with the same bytes.
    SnapshotId
);

impl SnapshotId {
    pub fn as_blob(&self) -> BlobId {
        BlobId(self.0)
    }
}
