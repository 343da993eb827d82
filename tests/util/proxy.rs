//! A TCP proxy whose connections can be cut, to play a network failure between plakar and
//! a real server: at once, or once a given number of bytes went to the server.
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
}

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
                pump(client.try_clone().unwrap(), server.try_clone().unwrap(), Some(s2.clone()));
                pump(server, client, None);
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

    pub fn is_cut(&self) -> bool {
        self.st.cut.load(Ordering::SeqCst)
    }

    pub fn restore(&self) {
        self.st.limit.store(u64::MAX, Ordering::SeqCst);
        self.st.cut.store(false, Ordering::SeqCst);
    }
}

/// Copies one direction; `count` is set for client-to-server traffic.
fn pump(mut from: TcpStream, mut to: TcpStream, count: Option<Arc<State>>) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 16384];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if to.write_all(&buf[..n]).is_err() {
                        break;
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
