//! The app layer: turns what a user names (a location, `@name`, a keyfile) into engine
//! objects. No printing and no argument parsing here.
pub mod config;
pub mod dirs;
pub mod known_stores;
pub mod location;
pub mod passphrase;
pub mod policy;
