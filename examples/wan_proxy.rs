//! `wan_proxy LISTEN_PORT TARGET_HOST:PORT DELAY_MS [LOG]`: a TCP proxy that plays a
//! wide-area link for the bench/ scripts (netem is not available on our machines).
//!
//! Every chunk of data is held DELAY_MS in each direction before it is passed on, so a round
//! trip costs 2 * DELAY_MS more, without limiting bandwidth: chunks are pipelined, each
//! released DELAY_MS after it arrived. Prints "ready" once it listens.
//!
//! With LOG, every HTTP request that goes through is appended there as one tab-separated
//! line when the next one on its connection starts (or the connection closes): connection
//! number, method, path, Range header ("-" without one), then the times in seconds since the
//! proxy started of the request, of the first and of the last reply byte, and the reply's
//! bytes. bench/wan.sh reads it to count GETs, their sizes and how many were in flight.
//!
//! It replaces a Python asyncio proxy that spent 0.5 s of CPU relaying a 250 MiB restore, on
//! the two cores the measured tool and the server share; this one runs on one thread.

use std::fs::File;
use std::io::{self, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// One connection's HTTP request in progress, written out when the next starts.
struct Request {
    method: String,
    path: String,
    range: String,
    sent: f64,
    first: f64,
    last: f64,
    bytes: u64,
}

struct Log {
    out: Option<Arc<Mutex<File>>>,
    conn: u64,
    start: Instant,
    cur: Option<Request>,
}

impl Log {
    fn now(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    /// Data from the client: a new request when it starts with a request line.
    fn request(&mut self, data: &[u8]) {
        let Some((method, path)) = request_line(data) else { return };
        self.flush();
        let range = header(data, b"range").unwrap_or_else(|| "-".into());
        let sent = self.now();
        self.cur = Some(Request { method, path, range, sent, first: 0.0, last: 0.0, bytes: 0 });
    }

    /// Data from the server.
    fn reply(&mut self, n: usize) {
        let now = self.now();
        if let Some(r) = &mut self.cur {
            if r.bytes == 0 {
                r.first = now;
            }
            r.last = now;
            r.bytes += n as u64;
        }
    }

    fn flush(&mut self) {
        let (Some(r), Some(out)) = (self.cur.take(), &self.out) else { return };
        let line = format!(
            "{}\t{}\t{}\t{}\t{:.6}\t{:.6}\t{:.6}\t{}\n",
            self.conn, r.method, r.path, r.range, r.sent, r.first, r.last, r.bytes
        );
        // One write per line to a file opened for appending: lines never interleave.
        let _ = out.lock().unwrap_or_else(|p| p.into_inner()).write_all(line.as_bytes());
    }
}

/// "GET /path HTTP/1.1\r\n" at the start of `data`: the method and the path.
fn request_line(data: &[u8]) -> Option<(String, String)> {
    const METHODS: [&[u8]; 5] = [b"GET ", b"PUT ", b"POST ", b"HEAD ", b"DELETE "];
    // Most chunks of an upload are body: not worth searching for a line end.
    if !METHODS.iter().any(|m| data.starts_with(m)) {
        return None;
    }
    let end = data.windows(2).position(|w| w == b"\r\n")?;
    let line = std::str::from_utf8(&data[..end]).ok()?;
    let mut words = line.split(' ');
    let (method, path, version) = (words.next()?, words.next()?, words.next()?);
    (version.starts_with("HTTP/1.") && words.next().is_none()).then(|| (method.into(), path.into()))
}

/// The value of header `name` (lower case) among the header lines of `data`.
fn header(data: &[u8], name: &[u8]) -> Option<String> {
    let head = &data[..data.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or(data.len())];
    head.split(|&b| b == b'\n').skip(1).find_map(|line| {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let colon = line.iter().position(|&b| b == b':')?;
        let (key, value) = (&line[..colon], &line[colon + 1..]);
        key.eq_ignore_ascii_case(name).then(|| String::from_utf8_lossy(value).trim().to_string())
    })
}

/// Which way a pipe carries data, for the log.
#[derive(Clone, Copy)]
enum Way {
    Up,
    Down,
}

/// Copies `from` to `to`, each chunk released `delay` after it arrived.
async fn pipe(from: OwnedReadHalf, to: OwnedWriteHalf, delay: Duration, way: Way, log: Arc<Mutex<Log>>) {
    let (tx, mut rx) = mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let sender = tokio::spawn(async move {
        while let Some((due, data)) = rx.recv().await {
            tokio::time::sleep_until(due.into()).await;
            if write_all(&to, &data).await.is_err() {
                break;
            }
        }
        // Dropping the write half shuts it down: the other side sees the end of data.
        drop(to);
    });
    let mut buf = vec![0u8; 1 << 18];
    loop {
        if from.readable().await.is_err() {
            break;
        }
        let n = match from.try_read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(_) => 0,
        };
        if n == 0 {
            break;
        }
        {
            let mut l = log.lock().unwrap_or_else(|p| p.into_inner());
            match way {
                Way::Up => l.request(&buf[..n]),
                Way::Down => l.reply(n),
            }
        }
        if tx.send((Instant::now() + delay, buf[..n].to_vec())).is_err() {
            break;
        }
    }
    drop(tx);
    let _ = sender.await;
}

async fn write_all(to: &OwnedWriteHalf, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        to.writable().await?;
        match to.try_write(data) {
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

async fn serve(port: u16, target: String, delay: Duration, out: Option<Arc<Mutex<File>>>) -> io::Result<()> {
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    println!("ready");
    io::stdout().flush()?;
    let start = Instant::now();
    let mut conns = 0;
    loop {
        let client = match listener.accept().await {
            Ok((c, _)) => c,
            Err(e) => {
                // Out of file descriptors, say: the proxy goes on once some are freed.
                eprintln!("wan_proxy: accepting a connection: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        conns += 1;
        let log = Arc::new(Mutex::new(Log { out: out.clone(), conn: conns, start, cur: None }));
        let target = target.clone();
        tokio::spawn(async move {
            let Ok(server) = TcpStream::connect(&target).await else { return };
            let _ = (client.set_nodelay(true), server.set_nodelay(true));
            let (cr, cw) = client.into_split();
            let (sr, sw) = server.into_split();
            let up = tokio::spawn(pipe(cr, sw, delay, Way::Up, log.clone()));
            pipe(sr, cw, delay, Way::Down, log.clone()).await;
            let _ = up.await;
            log.lock().unwrap_or_else(|p| p.into_inner()).flush();
        });
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !(3..=4).contains(&args.len()) {
        eprintln!("usage: wan_proxy LISTEN_PORT TARGET_HOST:PORT DELAY_MS [LOG]");
        std::process::exit(2);
    }
    let port: u16 = args[0].parse().expect("LISTEN_PORT: a port number");
    let delay_ms: f64 = match args[2].parse() {
        Ok(d) if d >= 0.0 && f64::is_finite(d) => d,
        _ => {
            eprintln!("wan_proxy: DELAY_MS must be a number of milliseconds, 0 or more");
            std::process::exit(2);
        }
    };
    let delay = Duration::from_secs_f64(delay_ms / 1000.0);
    let out = args.get(3).map(|p| {
        let f = File::options().create(true).append(true).open(p).expect("LOG: a writable file");
        Arc::new(Mutex::new(f))
    });
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime");
    if let Err(e) = rt.block_on(serve(port, args[1].clone(), delay, out)) {
        eprintln!("wan_proxy: {e}");
        std::process::exit(1);
    }
}
