//! A few logged-in control connections, shared by the worker threads. FTP runs one transfer
//! at a time per control connection, so parallel reads or writes need one connection each;
//! more than a handful is rude to a server, so at most `MAX_CONNECTIONS` are open and the
//! other threads wait. A connection that sat idle is checked with NOOP before reuse, and
//! one that broke (reset, timeout, 421) is dropped and replaced: idempotent commands are
//! retried once on a new connection.

use super::config::FtpConfig;
use super::errors::{connect_error, connection_lost, path_error};
use std::io;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};
use suppaftp::types::FileType;
use suppaftp::{FtpError, FtpResult, FtpStream, Mode};

pub const MAX_CONNECTIONS: usize = 4;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const IO_TIMEOUT: Duration = Duration::from_secs(60);
/// Servers drop idle sessions; past this, a pooled connection is pinged before use.
const CHECK_AFTER: Duration = Duration::from_secs(15);
/// The MLSx facts asked for, where the server offers them.
const FACTS: [&str; 7] = ["type", "size", "modify", "unix.mode", "unix.uid", "unix.gid", "unique"];

/// What the server supports, learned from FEAT on the first connection.
#[derive(Debug, Default)]
pub struct Features {
    pub mlst: bool,
    pub mfmt: bool,
    /// `OPTS MLST ...` for the facts we want, if the server lists MLST.
    mlst_opts: Option<String>,
    utf8: bool,
}

struct State {
    idle: Vec<(FtpStream, Instant)>,
    open: usize,
}

pub struct Pool {
    pub cfg: FtpConfig,
    state: Mutex<State>,
    freed: Condvar,
    features: OnceLock<Features>,
}

/// A connection taken from the pool: back to it when dropped, unless discarded.
pub struct Conn {
    pool: Arc<Pool>,
    ftp: Option<FtpStream>,
    /// Counted against MAX_CONNECTIONS (an extra one is not, and is closed after use).
    counted: bool,
}

impl Conn {
    pub fn ftp(&mut self) -> &mut FtpStream {
        self.ftp.as_mut().expect("connection in use")
    }

    /// Closes the connection instead of returning it: after an error its state is unknown.
    pub fn discard(mut self) {
        self.ftp = None;
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        if !self.counted {
            return;
        }
        let mut st = self.pool.state.lock().expect("lock");
        match self.ftp.take() {
            Some(ftp) => st.idle.push((ftp, Instant::now())),
            None => st.open -= 1,
        }
        drop(st);
        self.pool.freed.notify_one();
    }
}

fn tcp(addr: &SocketAddr) -> io::Result<TcpStream> {
    let s = TcpStream::connect_timeout(addr, CONNECT_TIMEOUT)?;
    s.set_read_timeout(Some(IO_TIMEOUT))?;
    s.set_write_timeout(Some(IO_TIMEOUT))?;
    s.set_nodelay(true)?;
    Ok(s)
}

fn detect(ftp: &mut FtpStream) -> Features {
    let Ok(feat) = ftp.feat() else { return Features::default() };
    let has = |k: &str| feat.iter().find(|(name, _)| name.eq_ignore_ascii_case(k)).map(|(_, v)| v.clone());
    let mlst = has("MLST");
    let mlst_opts = mlst.as_ref().map(|offered| {
        let offered = offered.clone().unwrap_or_default().to_ascii_lowercase();
        let want: Vec<&str> =
            FACTS.iter().copied().filter(|f| offered.split(';').any(|o| o.trim_end_matches('*') == *f)).collect();
        format!("{};", want.join(";"))
    });
    Features { mlst: mlst.is_some(), mfmt: has("MFMT").is_some(), mlst_opts, utf8: has("UTF8").is_some() }
}

impl Pool {
    /// Connects and logs in once, so bad credentials or an unreachable server fail before
    /// any work, and the server's features are known.
    pub fn open(cfg: FtpConfig) -> io::Result<Arc<Pool>> {
        let pool = Arc::new(Pool {
            cfg,
            state: Mutex::new(State { idle: Vec::new(), open: 0 }),
            freed: Condvar::new(),
            features: OnceLock::new(),
        });
        drop(pool.get()?);
        Ok(pool)
    }

    pub fn features(&self) -> &Features {
        self.features.get().expect("known from the first connection")
    }

    /// Connects and logs in; learns the server's features on the first connection.
    fn connect(&self) -> io::Result<FtpStream> {
        let cfg = &self.cfg;
        let addrs: Vec<SocketAddr> = (cfg.host.as_str(), cfg.port)
            .to_socket_addrs()
            .map_err(|e| connect_error(FtpError::ConnectionError(e), cfg))?
            .collect();
        let mut last = io::Error::new(io::ErrorKind::NotFound, "the host name has no address");
        let mut stream = None;
        for a in &addrs {
            match tcp(a) {
                Ok(s) => {
                    stream = Some(s);
                    break;
                }
                Err(e) => last = e,
            }
        }
        let stream = stream.ok_or_else(|| connect_error(FtpError::ConnectionError(last), cfg))?;
        let mut ftp = FtpStream::connect_with_stream(stream)
            .map_err(|e| connect_error(e, cfg))?
            .passive_stream_builder(|addr| tcp(&addr).map_err(FtpError::ConnectionError));
        if cfg.passive {
            ftp.set_mode(Mode::Passive);
            // Use the control connection's address for data, not the one PASV names:
            // servers behind NAT name an address that cannot be reached.
            ftp.set_passive_nat_workaround(true);
        } else {
            ftp = ftp.active_mode(IO_TIMEOUT);
        }
        ftp.login(cfg.username.as_str(), cfg.password.as_str()).map_err(|e| connect_error(e, cfg))?;
        ftp.transfer_type(FileType::Binary).map_err(|e| connect_error(e, cfg))?;
        let f = self.features.get_or_init(|| detect(&mut ftp));
        if f.utf8 {
            let _ = ftp.opts("UTF8", Some("ON"));
        }
        if let Some(facts) = &f.mlst_opts {
            let _ = ftp.opts("MLST", Some(facts));
        }
        Ok(ftp)
    }

    /// A connection, waiting for one if all are in use.
    pub fn get(self: &Arc<Self>) -> io::Result<Conn> {
        let mut st = self.state.lock().expect("lock");
        loop {
            if let Some((ftp, since)) = st.idle.pop() {
                drop(st);
                let mut conn = Conn { pool: self.clone(), ftp: Some(ftp), counted: true };
                if since.elapsed() > CHECK_AFTER && conn.ftp().noop().is_err() {
                    // Gone stale: replace it in its slot (given back if connecting fails).
                    conn.ftp = None;
                    conn.ftp = Some(self.connect()?);
                }
                return Ok(conn);
            }
            if st.open < MAX_CONNECTIONS {
                st.open += 1;
                drop(st);
                // If connecting fails, the empty Conn gives the slot back as it drops.
                let mut conn = Conn { pool: self.clone(), ftp: None, counted: true };
                conn.ftp = Some(self.connect()?);
                return Ok(conn);
            }
            st = self.freed.wait(st).expect("lock");
        }
    }

    /// A connection beyond the limit, closed after use: for copying between two files.
    pub fn extra(self: &Arc<Self>) -> io::Result<Conn> {
        Ok(Conn { pool: self.clone(), ftp: Some(self.connect()?), counted: false })
    }

    /// Runs an idempotent command on `path`, once more on a new connection if the first
    /// one turns out to be broken.
    pub fn run<T>(
        self: &Arc<Self>,
        what: &str,
        path: &str,
        mut f: impl FnMut(&mut FtpStream) -> FtpResult<T>,
    ) -> io::Result<T> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut c = self.get()?;
            match f(c.ftp()) {
                Ok(v) => return Ok(v),
                Err(e) if connection_lost(&e) => {
                    c.discard();
                    if attempt >= 2 {
                        return Err(path_error(e, &self.cfg, what, path));
                    }
                }
                Err(e) => return Err(path_error(e, &self.cfg, what, path)),
            }
        }
    }

    /// Logs out of every idle connection.
    pub fn close(&self) {
        let idle = std::mem::take(&mut self.state.lock().expect("lock").idle);
        for (mut ftp, _) in idle {
            let _ = ftp.quit();
            self.state.lock().expect("lock").open -= 1;
        }
    }
}
