//! A TCP proxy whose connections can be cut, to play a network failure between plakar and
//! a real server: at once, once a given number of bytes went to the server, or one
//! connection in N reset mid-request (a flaky link), or the next N replies cut part-way
//! through their bodies. It can also slow what goes to the
//! server to a given rate (to make a command outlive something), note which access key
//! signed each request (SigV4's `Credential=KEY/...`), and run a hook before each new
//! connection reaches the server.
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Default)]
struct State {
    cut: AtomicBool,
    sent: AtomicU64,
    /// Bytes from the server to the client, all connections together.
    received: AtomicU64,
    limit: AtomicU64,
    conns: Mutex<Vec<TcpStream>>,
    accepted: AtomicU64,
    /// Every this-many-th connection is reset after `FLAKY_BYTES` (0: none).
    flaky_every: AtomicU64,
    resets: AtomicU64,
    /// How many more connections get reset once `REPLY_CUT_BYTES` came back from the server.
    cut_replies: AtomicU64,
    /// The first bytes sent to the server, to look at request headers.
    captured: Mutex<Vec<u8>>,
    /// Bytes per second to the server, all connections together (0: as fast as they come).
    rate: AtomicU64,
    /// When the bytes let through so far will have been sent at `rate`.
    paced_until: Mutex<Option<Instant>>,
    /// The access key of each signed request, and when its headers went through.
    signers: Mutex<Vec<(Instant, String)>>,
}

const CAPTURE: usize = 4 << 20;

const FLAKY_BYTES: u64 = 20_000;

const REPLY_CUT_BYTES: u64 = 64 << 10;

impl State {
    /// Waits as long as `n` more bytes take at `rate`.
    fn pace(&self, n: usize) {
        let rate = self.rate.load(Ordering::SeqCst);
        if rate == 0 {
            return;
        }
        let now = Instant::now();
        let until = {
            let mut p = self.paced_until.lock().unwrap();
            let start = p.map_or(now, |t| t.max(now));
            let end = start + Duration::from_secs_f64(n as f64 / rate as f64);
            *p = Some(end);
            end
        };
        std::thread::sleep(until.saturating_duration_since(now));
    }

    /// Notes the key of each `Credential=KEY/` in `bytes`, `tail` holding what was left
    /// of the previous read of the same connection (a mark may straddle two reads).
    fn note_signers(&self, tail: &mut Vec<u8>, bytes: &[u8]) {
        const MARK: &[u8] = b"Credential=";
        tail.extend_from_slice(bytes);
        let mut from = 0;
        while let Some(at) = tail[from..].windows(MARK.len()).position(|w| w == MARK) {
            let key = from + at + MARK.len();
            match tail[key..].iter().take(129).position(|&b| b == b'/') {
                Some(len) => {
                    let id = String::from_utf8_lossy(&tail[key..key + len]).into_owned();
                    self.signers.lock().unwrap().push((Instant::now(), id));
                    from = key + len;
                }
                None if tail.len() - key < 129 => {
                    tail.drain(..from + at);
                    return;
                }
                None => from = key,
            }
        }
        let keep = tail.len().saturating_sub(MARK.len() - 1).max(from);
        tail.drain(..keep);
    }

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
        Proxy::start_with(target, || {})
    }

    /// Like `start`, with `hook` run before each new connection is made to the server.
    pub fn start_with(target: &str, hook: impl Fn() + Send + 'static) -> Proxy {
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
                hook();
                let Ok(server) = TcpStream::connect(&target) else { continue };
                let mut k = s2.conns.lock().unwrap();
                k.push(client.try_clone().unwrap());
                k.push(server.try_clone().unwrap());
                drop(k);
                let n = s2.accepted.fetch_add(1, Ordering::SeqCst) + 1;
                let every = s2.flaky_every.load(Ordering::SeqCst);
                let doomed = (every > 0 && n % every == 0).then_some(FLAKY_BYTES);
                pump(client.try_clone().unwrap(), server.try_clone().unwrap(), Some(s2.clone()), doomed);
                pump_replies(server, client, s2.clone());
            }
        });
        Proxy { addr, st }
    }

    /// Drops every connection and refuses new ones until `restore`.
    pub fn cut(&self) {
        self.st.cut();
    }

    /// How many bytes the server has sent back so far, all connections together.
    pub fn received(&self) -> u64 {
        self.st.received.load(Ordering::SeqCst)
    }

    /// Cuts once `n` more bytes have gone to the server.
    pub fn cut_after(&self, n: u64) {
        self.st.limit.store(self.st.sent.load(Ordering::SeqCst) + n, Ordering::SeqCst);
    }

    /// Resets one new connection in `n` once it carried a few KB to the server.
    pub fn flaky(&self, n: u64) {
        self.st.flaky_every.store(n, Ordering::SeqCst);
    }

    /// Cuts the next `n` connections whose replies carry more than a few dozen KB, part-way
    /// through a body: the reply has started, so only the client can send it again.
    pub fn cut_replies(&self, n: u64) {
        self.st.cut_replies.store(n, Ordering::SeqCst);
    }

    /// What went to the server so far (its first few MB).
    pub fn captured(&self) -> Vec<u8> {
        self.st.captured.lock().unwrap().clone()
    }

    /// Connections reset by `flaky` or `cut_replies` so far.
    pub fn resets(&self) -> u64 {
        self.st.resets.load(Ordering::SeqCst)
    }

    /// Slows what goes to the server to `bytes_per_sec` (0: no limit).
    pub fn throttle(&self, bytes_per_sec: u64) {
        self.st.rate.store(bytes_per_sec, Ordering::SeqCst);
    }

    /// The access key that signed each request so far, with when its headers went through.
    pub fn signers(&self) -> Vec<(Instant, String)> {
        self.st.signers.lock().unwrap().clone()
    }

    /// Bytes sent to the server so far.
    pub fn sent(&self) -> u64 {
        self.st.sent.load(Ordering::SeqCst)
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
        let mut tail = Vec::new();
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if let Some(st) = &count {
                        st.pace(n);
                        st.note_signers(&mut tail, &buf[..n]);
                    }
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

/// Copies server-to-client traffic, cutting it after `REPLY_CUT_BYTES` while `cut_replies`
/// has cuts left.
fn pump_replies(mut from: TcpStream, mut to: TcpStream, st: Arc<State>) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 16384];
        let mut carried = 0u64;
        loop {
            let n = match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            carried += n as u64;
            st.received.fetch_add(n as u64, Ordering::SeqCst);
            if carried >= REPLY_CUT_BYTES
                && st.cut_replies.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |c| c.checked_sub(1)).is_ok()
            {
                st.resets.fetch_add(1, Ordering::SeqCst);
                let _ = to.write_all(&buf[..n / 2]);
                let _ = from.shutdown(Shutdown::Both);
                break;
            }
            if to.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = to.shutdown(Shutdown::Both);
    });
}
