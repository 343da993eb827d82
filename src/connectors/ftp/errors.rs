//! Turns FTP replies into io::Errors whose kind says what happened, so the engine picks the
//! exit code (PermissionDenied: credentials, NotConnected/TimedOut: unreachable, NotFound:
//! missing path) and the message says what to fix. No message holds the password.

use super::config::FtpConfig;
use std::io::{self, ErrorKind};
use suppaftp::FtpError;

/// The server's reply text, without the code and line breaks.
fn reply_text(r: &suppaftp::types::Response) -> String {
    let t = String::from_utf8_lossy(&r.body).replace(['\r', '\n'], " ");
    let t = t.trim();
    let t = t.get(4..).unwrap_or(t).trim();
    let t: String = t.chars().take(200).collect();
    format!("{} {t}", r.status.code())
}

/// The connection broke, or the server hung up: the command may work on a new one.
pub fn connection_lost(e: &FtpError) -> bool {
    match e {
        FtpError::ConnectionError(_) | FtpError::BadResponse | FtpError::DataConnectionAlreadyOpen => true,
        FtpError::UnexpectedResponse(r) => r.status.code() == 421,
        _ => false,
    }
}

/// A failure to connect or log in.
pub fn connect_error(e: FtpError, cfg: &FtpConfig) -> io::Error {
    let addr = cfg.addr();
    match e {
        FtpError::ConnectionError(io) => {
            let kind = match io.kind() {
                ErrorKind::TimedOut | ErrorKind::WouldBlock => ErrorKind::TimedOut,
                _ => ErrorKind::NotConnected,
            };
            io::Error::new(
                kind,
                format!("cannot reach FTP server {addr}: {io} (check the host and port, and that the server runs)"),
            )
        }
        FtpError::UnexpectedResponse(r) if matches!(r.status.code(), 430 | 530 | 331 | 332) => io::Error::new(
            ErrorKind::PermissionDenied,
            format!(
                "FTP server {addr} refused the login of user {:?} ({}): check username and password",
                cfg.username,
                reply_text(&r)
            ),
        ),
        FtpError::UnexpectedResponse(r) if r.status.code() == 421 => io::Error::new(
            ErrorKind::NotConnected,
            format!("FTP server {addr} turned the connection away ({})", reply_text(&r)),
        ),
        other => io::Error::new(ErrorKind::NotConnected, format!("FTP server {addr}: {}", describe(&other))),
    }
}

/// A failure of a command on `path`; `what` says what was being done ("reading", "listing").
pub fn path_error(e: FtpError, cfg: &FtpConfig, what: &str, path: &str) -> io::Error {
    let addr = cfg.addr();
    let (kind, msg) = match &e {
        FtpError::UnexpectedResponse(r) => {
            let text = reply_text(r);
            let lower = text.to_lowercase();
            match r.status.code() {
                430 | 530 | 532 => (ErrorKind::PermissionDenied, format!("{what} {path}: not logged in ({text})")),
                421 => (ErrorKind::NotConnected, format!("{what} {path}: {addr} closed the connection ({text})")),
                450 | 550 | 553
                    if ["permission", "denied", "privilege", "not allowed", "access"]
                        .iter()
                        .any(|w| lower.contains(w)) =>
                {
                    (ErrorKind::PermissionDenied, format!("{what} {path}: permission denied by the server ({text})"))
                }
                450 | 550 => (ErrorKind::NotFound, format!("{what} {path}: no such file or directory ({text})")),
                452 | 552 => (ErrorKind::StorageFull, format!("{what} {path}: no space left on the server ({text})")),
                _ => (ErrorKind::Other, format!("{what} {path}: the server answered {text}")),
            }
        }
        FtpError::ConnectionError(io) if matches!(io.kind(), ErrorKind::TimedOut | ErrorKind::WouldBlock) => {
            (ErrorKind::TimedOut, format!("{what} {path}: {addr} timed out"))
        }
        FtpError::ConnectionError(io) => {
            (ErrorKind::NotConnected, format!("{what} {path}: connection to {addr} failed: {io}"))
        }
        other => (ErrorKind::Other, format!("{what} {path}: {}", describe(other))),
    };
    io::Error::new(kind, msg)
}

fn describe(e: &FtpError) -> String {
    match e {
        FtpError::UnexpectedResponse(r) => format!("unexpected reply {}", reply_text(r)),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use suppaftp::types::Response;
    use suppaftp::Status;

    fn reply(code: u32, text: &str) -> FtpError {
        FtpError::UnexpectedResponse(Response::new(Status::from(code), format!("{code} {text}\r\n").into_bytes()))
    }

    #[test]
    fn classifies_replies() {
        let cfg = FtpConfig::parse("bob@h:2121/x", &[("password".into(), "SECRET".into())].into()).unwrap();
        let e = connect_error(reply(530, "Authentication failed."), &cfg);
        assert_eq!(e.kind(), ErrorKind::PermissionDenied);
        assert!(e.to_string().contains("\"bob\"") && e.to_string().contains("h:2121"), "{e}");
        assert!(!e.to_string().contains("SECRET"));
        let e = path_error(reply(550, "No such file or directory."), &cfg, "reading", "/x");
        assert_eq!(e.kind(), ErrorKind::NotFound);
        let e = path_error(reply(550, "Not enough privileges."), &cfg, "reading", "/x");
        assert_eq!(e.kind(), ErrorKind::PermissionDenied);
        let refused = FtpError::ConnectionError(io::ErrorKind::ConnectionRefused.into());
        assert_eq!(connect_error(refused, &cfg).kind(), ErrorKind::NotConnected);
        assert!(connection_lost(&reply(421, "Timeout")));
        assert!(!connection_lost(&reply(550, "nope")));
    }
}
