//! SSH connections for SFTP: connect, check the host key, authenticate, and a small pool
//! so that several transfers run at once (requests on one SSH connection take turns).

use super::config::SftpConfig;
use ssh2::{CheckResult, ErrorCode, HashType, KnownHostFileKind, Session, Sftp};
use std::io;
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

/// A request that gets no answer for this long fails, rather than hanging a cron job.
const IO_TIMEOUT_MS: u32 = 120_000;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

pub struct Conn {
    _sess: Session,
    pub sftp: Sftp,
}

fn err(kind: io::ErrorKind, msg: String) -> io::Error {
    io::Error::new(kind, msg)
}

/// Maps an ssh2 error to an io::Error whose kind the engine understands, naming `what`.
pub fn classify(e: ssh2::Error, what: &str) -> io::Error {
    use io::ErrorKind as K;
    // LIBSSH2_FX_* codes (SFTP v3-v6).
    let (kind, hint) = match e.code() {
        ErrorCode::SFTP(2) | ErrorCode::SFTP(10) => (K::NotFound, ""),
        ErrorCode::SFTP(3) => (K::PermissionDenied, " (the SSH user may not read or write there)"),
        ErrorCode::SFTP(11) => (K::AlreadyExists, ""),
        ErrorCode::SFTP(14) | ErrorCode::SFTP(15) => (K::StorageFull, " (free some space on the server)"),
        ErrorCode::SFTP(4) => (K::Other, " (the server gave no reason: a full disk or quota is the usual cause)"),
        ErrorCode::Session(-9) => (K::TimedOut, " (no answer from the server)"),
        ErrorCode::Session(_) => (K::ConnectionAborted, " (the SSH connection was lost)"),
        ErrorCode::SFTP(_) => (K::Other, ""),
    };
    err(kind, format!("{what}: {}{hint}", e.message()))
}

/// True when the connection that gave this error is of no further use.
fn is_dead(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::ConnectionAborted | io::ErrorKind::TimedOut)
}

pub fn connect(cfg: &SftpConfig) -> io::Result<Conn> {
    let addr = cfg.address();
    let unreachable = |m: String| err(io::ErrorKind::NotConnected, m);
    let addrs: Vec<_> = (cfg.host.as_str(), cfg.port)
        .to_socket_addrs()
        .map_err(|e| unreachable(format!("cannot resolve {}: {e}", cfg.host)))?
        .collect();
    let mut last = None;
    let mut tcp = None;
    for a in &addrs {
        match TcpStream::connect_timeout(a, CONNECT_TIMEOUT) {
            Ok(s) => {
                tcp = Some(s);
                break;
            }
            Err(e) => last = Some(e),
        }
    }
    let Some(tcp) = tcp else {
        let why = last.map(|e| e.to_string()).unwrap_or_else(|| "no address".into());
        return Err(unreachable(format!("cannot connect to SFTP server {addr}: {why} (is sshd running there?)")));
    };
    let _ = tcp.set_nodelay(true);
    let mut sess = Session::new().map_err(|e| classify(e, "cannot start an SSH session"))?;
    sess.set_tcp_stream(tcp);
    sess.set_timeout(IO_TIMEOUT_MS);
    sess.handshake().map_err(|e| unreachable(format!("SSH handshake with {addr} failed: {}", e.message())))?;
    check_host_key(&sess, cfg)?;
    authenticate(&sess, cfg)?;
    let sftp = sess.sftp().map_err(|e| {
        err(
            io::ErrorKind::Other,
            format!("{addr} offers no SFTP subsystem: {} (enable it in sshd_config)", e.message()),
        )
    })?;
    Ok(Conn { _sess: sess, sftp })
}

fn fingerprint(sess: &Session) -> String {
    use base64::Engine;
    let hash = sess.host_key_hash(HashType::Sha256).unwrap_or_default();
    format!("SHA256:{}", base64::engine::general_purpose::STANDARD_NO_PAD.encode(hash))
}

fn check_host_key(sess: &Session, cfg: &SftpConfig) -> io::Result<()> {
    if cfg.insecure_ignore_host_key {
        return Ok(());
    }
    let (key, _) = sess.host_key().ok_or_else(|| err(io::ErrorKind::Other, "the server sent no host key".into()))?;
    let mut kh = sess.known_hosts().map_err(|e| classify(e, "known hosts"))?;
    for f in &cfg.known_hosts {
        if let Ok(text) = std::fs::read_to_string(f) {
            // Line by line: one entry libssh2 cannot parse (a newer key type) must not hide
            // the others.
            for line in text.lines().filter(|l| !l.trim().is_empty() && !l.starts_with('#')) {
                let _ = kh.read_str(line, KnownHostFileKind::OpenSSH);
            }
        }
    }
    let files = cfg.known_hosts.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ");
    let scan = if cfg.port == 22 {
        format!("ssh-keyscan {}", cfg.host)
    } else {
        format!("ssh-keyscan -p {} {}", cfg.port, cfg.host)
    };
    let addr = cfg.address();
    match kh.check_port(&cfg.host, cfg.port, key) {
        CheckResult::Match => Ok(()),
        CheckResult::NotFound => Err(err(
            io::ErrorKind::PermissionDenied,
            format!(
                "the host key of {addr} ({}) is not trusted: it is not in {files}. If that fingerprint is the \
                 server's, trust it with `{scan} >> ~/.ssh/known_hosts` (or set known_hosts=FILE; \
                 insecure_ignore_host_key=true skips the check)",
                fingerprint(sess)
            ),
        )),
        CheckResult::Mismatch => Err(err(
            io::ErrorKind::PermissionDenied,
            format!(
                "the host key of {addr} ({}) does not match the one in {files}: someone may be intercepting the \
                 connection, or the server's key changed. Check with the server's administrator, then remove the \
                 old entry (ssh-keygen -R '{}')",
                fingerprint(sess),
                if cfg.port == 22 { cfg.host.clone() } else { format!("[{}]:{}", cfg.host, cfg.port) }
            ),
        )),
        CheckResult::Failure => Err(err(io::ErrorKind::Other, format!("cannot check the host key of {addr}"))),
    }
}

fn authenticate(sess: &Session, cfg: &SftpConfig) -> io::Result<()> {
    let user = cfg.user.as_str();
    let mut tried = Vec::new();
    if let Some(id) = &cfg.identity {
        if !id.exists() {
            return Err(err(
                io::ErrorKind::NotFound,
                format!("identity file {} does not exist: set identity=PATH to a private key", id.display()),
            ));
        }
        let _ = sess.userauth_pubkey_file(user, None, id, cfg.identity_passphrase.as_deref());
        tried.push(format!("key {}", id.display()));
    }
    if !sess.authenticated() {
        if let Some(pw) = &cfg.password {
            let _ = sess.userauth_password(user, pw);
            tried.push("password".to_string());
        }
    }
    if !sess.authenticated() && cfg.identity.is_none() && cfg.password.is_none() {
        if let Some(sock) = cfg.agent_sock.clone().or_else(|| std::env::var("SSH_AUTH_SOCK").ok()) {
            if let Ok(mut agent) = sess.agent() {
                let _ = agent.set_identity_path(std::path::Path::new(&sock));
                if agent.connect().is_ok() && agent.list_identities().is_ok() {
                    for id in agent.identities().unwrap_or_default() {
                        if agent.userauth(user, &id).is_ok() {
                            break;
                        }
                    }
                }
                tried.push("ssh-agent".to_string());
            }
        }
        if let Some(home) = std::env::var_os("HOME") {
            for name in ["id_ed25519", "id_ecdsa", "id_rsa"] {
                let key = std::path::Path::new(&home).join(".ssh").join(name);
                if sess.authenticated() || !key.exists() {
                    continue;
                }
                let _ = sess.userauth_pubkey_file(user, None, &key, None);
                tried.push(format!("key {}", key.display()));
            }
        }
    }
    if sess.authenticated() {
        return Ok(());
    }
    let tried = if tried.is_empty() { "nothing: no key, password or agent".to_string() } else { tried.join(", ") };
    Err(err(
        io::ErrorKind::PermissionDenied,
        format!(
            "SSH authentication as {user} on {} failed (tried {tried}): check username, identity or password",
            cfg.address()
        ),
    ))
}

/// Up to `cfg.connections` SSH connections, opened as needed and shared.
pub struct Pool {
    pub cfg: SftpConfig,
    idle: Mutex<(Vec<Conn>, usize)>,
    freed: Condvar,
}

impl Pool {
    /// Connects once at once, so that a bad host, key or password fails here.
    pub fn new(cfg: SftpConfig) -> io::Result<Pool> {
        let first = connect(&cfg)?;
        Ok(Pool { cfg, idle: Mutex::new((vec![first], 1)), freed: Condvar::new() })
    }

    fn take(&self) -> io::Result<Conn> {
        let mut g = self.idle.lock().unwrap();
        loop {
            if let Some(c) = g.0.pop() {
                return Ok(c);
            }
            if g.1 < self.cfg.connections {
                g.1 += 1;
                drop(g);
                return connect(&self.cfg).inspect_err(|_| {
                    self.idle.lock().unwrap().1 -= 1;
                    self.freed.notify_one();
                });
            }
            g = self.freed.wait(g).unwrap();
        }
    }

    fn give(&self, c: Option<Conn>) {
        let mut g = self.idle.lock().unwrap();
        match c {
            Some(c) => g.0.push(c),
            None => g.1 -= 1,
        }
        self.freed.notify_one();
    }

    /// Runs `f` on a connection. A connection that died is dropped and `f` runs once more
    /// on a fresh one: every operation here is safe to repeat.
    pub fn run<T>(&self, mut f: impl FnMut(&Sftp) -> io::Result<T>) -> io::Result<T> {
        let mut attempt = 0;
        loop {
            let c = self.take()?;
            match f(&c.sftp) {
                Err(e) if is_dead(&e) && attempt == 0 => {
                    self.give(None);
                    attempt += 1;
                }
                Err(e) if is_dead(&e) => {
                    self.give(None);
                    return Err(e);
                }
                r => {
                    self.give(Some(c));
                    return r;
                }
            }
        }
    }
}
