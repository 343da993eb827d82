//! Progress reporting, supplied by the caller. The engine never prints.

pub trait Progress: Sync {
    /// A file, directory or link was handled.
    fn item(&self, _path: &[u8], _size: u64) {}
    /// Content bytes were read or written.
    fn bytes(&self, _n: u64) {}
    /// A path failed; the operation goes on.
    fn error(&self, _path: &[u8], _msg: &str) {}
}

pub struct NoProgress;
impl Progress for NoProgress {}
