//! plakar: a Plakar-compatible backup tool. Layers, each using only those after it:
//! `cli` -> `app` -> `connectors` -> `kloset`.
pub mod app;
pub mod cli;
pub mod connectors;
pub mod kloset;
