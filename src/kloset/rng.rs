//! Where the engine's randomness comes from: the system's generator, unless a harness has
//! installed a seeded one for the current thread (the deterministic simulation does, so that
//! a seed replays the same ids, nonces and waits). Threads the engine starts for an
//! operation inherit the generator of the thread that started them.

use rand::{RngCore, SeedableRng};
use std::cell::RefCell;
use std::sync::{Arc, Mutex};

/// A shared seeded generator.
pub type Seeded = Arc<Mutex<rand::rngs::StdRng>>;

thread_local! {
    static OVERRIDE: RefCell<Option<Seeded>> = const { RefCell::new(None) };
}

/// A seeded generator, to install with `install`.
pub fn seeded(seed: u64) -> Seeded {
    Arc::new(Mutex::new(rand::rngs::StdRng::seed_from_u64(seed)))
}

/// Makes this thread draw from `g` (None: the system's generator again).
pub fn install(g: Option<Seeded>) {
    OVERRIDE.with(|o| *o.borrow_mut() = g);
}

/// The generator installed on this thread, to hand to a thread it starts.
pub fn current() -> Option<Seeded> {
    OVERRIDE.with(|o| o.borrow().clone())
}

/// Fills `b` with random bytes.
pub fn fill(b: &mut [u8]) {
    let seeded = current();
    match seeded {
        Some(g) => g.lock().expect("rng lock").fill_bytes(b),
        None => rand::thread_rng().fill_bytes(b),
    }
}

pub fn u64() -> u64 {
    let mut b = [0u8; 8];
    fill(&mut b);
    u64::from_le_bytes(b)
}

/// Spawns a thread that inherits this thread's generator.
pub fn spawn<F, T>(f: F) -> std::thread::JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let g = current();
    std::thread::spawn(move || {
        install(g);
        f()
    })
}
