//! `http://` and `https://` stores: a store served by `plakar server`, reached over HTTP(S)
//! with a bearer token. protocol.rs holds the wire format both ends share; the server itself
//! lives with the commands (cli/server), since it is a way of running plakar, not a backend.
mod client;
mod config;
pub mod protocol;
mod store;

pub use config::{HttpConfig, HTTP_KEYS, TOKEN_ENV};
pub use store::HttpStore;
