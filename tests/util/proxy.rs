//! A TCP proxy whose connections can be cut, to play a network failure between plakar and
//! a real server: at once, once a given number of bytes went to the server, or one
//! connection in N reset mid-request (a flaky link).
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Default)]
struct State {
    cut: AtomicBool,
    sent: AtomicU64,
    limit: AtomicU64,
    conns: Mutex<Vec<TcpStream>>,
    accepted: AtomicU64,
    /// Every this-many-th connection is reset after `FLAKY_BYTES` (0: none).
    flaky_every: AtomicU64,
    resets: AtomicU64,
    /// The first bytes sent to the server, to look at request headers.
    captured: Mutex<Vec<u8>>,
}

const CAPTURE: usize = 4 << 20;

const FLAKY_BYTES: u64 = 20_000;

impl State {
    fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for c in self.conns.lock().unwrap().drain(..) {
            let _ = c.shutdown(Shutdown::Both);
        }
    }
}

pub struct Proxy {
    pub addr: String,
    st: Arc<State>,
}

impl Proxy {
    pub fn start(target: &str) -> Proxy {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let st = Arc::new(State { limit: AtomicU64::new(u64::MAX), ..Default::default() });
        let (target, s2) = (target.to_string(), st.clone());
        std::thread::spawn(move || {
            for client in l.incoming() {
                let Ok(client) = client else { continue };
                if s2.cut.load(Ordering::SeqCst) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(&target) else { continue };
                let mut k = s2.conns.lock().unwrap();
                k.push(client.try_clone().unwrap());
                k.push(server.try_clone().unwrap());
                drop(k);
                let n = s2.accepted.fetch_add(1, Ordering::SeqCst) + 1;
                let every = s2.flaky_every.load(Ordering::SeqCst);
                let doomed = (every > 0 && n % every == 0).then_some(FLAKY_BYTES);
                pump(client.try_clone().unwrap(), server.try_clone().unwrap(), Some(s2.clone()), doomed);
                pump(server, client, None, None);
            }
        });
        Proxy { addr, st }
    }

    /// Drops every connection and refuses new ones until `restore`.
    pub fn cut(&self) {
        self.st.cut();
    }

    /// Cuts once `n` more bytes have gone to the server.
    pub fn cut_after(&self, n: u64) {
        self.st.limit.store(self.st.sent.load(Ordering::SeqCst) + n, Ordering::SeqCst);
    }

    /// Resets one new connection in `n` once it carried a few KB to the server.
    pub fn flaky(&self, n: u64) {
        self.st.flaky_every.store(n, Ordering::SeqCst);
    }

    /// What went to the server so far (its first few MB).
    pub fn captured(&self) -> Vec<u8> {
        self.st.captured.lock().unwrap().clone()
    }

    /// Connections reset by `flaky` so far.
    pub fn resets(&self) -> u64 {
        self.st.resets.load(Ordering::SeqCst)
    }

    pub fn is_cut(&self) -> bool {
        self.st.cut.load(Ordering::SeqCst)
    }

    pub fn restore(&self) {
        self.st.limit.store(u64::MAX, Ordering::SeqCst);
        self.st.cut.store(false, Ordering::SeqCst);
    }
}

/// Copies one direction; `count` is set for client-to-server traffic; a `doomed`
/// connection is reset after that many bytes.
fn pump(mut from: TcpStream, mut to: TcpStream, count: Option<Arc<State>>, doomed: Option<u64>) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 16384];
        let mut carried = 0u64;
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if to.write_all(&buf[..n]).is_err() {
                        break;
                    }
                    carried += n as u64;
                    if let Some(st) = &count {
                        let mut c = st.captured.lock().unwrap();
                        let room = CAPTURE.saturating_sub(c.len());
                        c.extend_from_slice(&buf[..n.min(room)]);
                    }
                    if let (Some(limit), Some(st)) = (doomed, &count) {
                        if carried >= limit {
                            st.resets.fetch_add(1, Ordering::SeqCst);
                            let _ = from.shutdown(Shutdown::Both);
                            break;
                        }
                    }
                    if let Some(st) = &count {
                        let sent = st.sent.fetch_add(n as u64, Ordering::SeqCst) + n as u64;
                        if sent >= st.limit.load(Ordering::SeqCst) {
                            st.cut();
                        }
                    }
                }
            }
        }
        let _ = to.shutdown(Shutdown::Both);
    });
}
