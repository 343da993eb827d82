//! A real `plakar server` process for the http store tests, and clients that reach it.
use super::Env;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, ChildStdout, Stdio};

/// The token every served store asks for unless a test says otherwise.
pub const TOKEN: &str = "0123456789abcdef-test-token";

pub struct Served {
    pub child: Child,
    /// `http://127.0.0.1:PORT` (or https).
    pub url: String,
    /// `127.0.0.1:PORT`
    pub addr: String,
    _stdout: BufReader<ChildStdout>,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Served {
    /// Sends `sig` and returns the exit code and what the server printed on stderr.
    pub fn stop(mut self, sig: i32) -> (Option<i32>, String) {
        // SAFETY: a pid of our own child.
        unsafe { libc::kill(self.child.id() as i32, sig) };
        let status = self.child.wait().unwrap();
        let mut err = String::new();
        self.child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
        (status.code(), err)
    }
}

/// `plakar at STORE server -listen LISTEN EXTRA...`, with `token` as $PLAKAR_SERVER_TOKEN
/// (None: not set); returns once it printed where it listens.
pub fn serve_with(env: &Env, store: &str, listen: &str, extra: &[&str], token: Option<&str>) -> Served {
    let mut c = env.spawn_cmd();
    if let Some(t) = token {
        c.env("PLAKAR_SERVER_TOKEN", t);
    }
    let mut child = c
        .args(["at", store, "server", "-listen", listen])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    if line.is_empty() {
        let mut err = String::new();
        child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
        let _ = child.wait();
        panic!("plakar server printed nothing: {err}");
    }
    let url = line.split_whitespace().last().unwrap().to_string();
    assert!(url.contains("://127.0.0.1:"), "{line}");
    let addr = url.split_once("://").unwrap().1.to_string();
    Served { child, url, addr, _stdout: stdout }
}

/// A server over `env`'s store on a free port, asking for `TOKEN`.
pub fn serve(env: &Env, extra: &[&str]) -> Served {
    serve_with(env, &env.store(), "127.0.0.1:0", extra, Some(TOKEN))
}

/// `plakar at URL args...` with the right token.
pub fn via(env: &Env, url: &str, args: &[&str]) -> assert_cmd::Command {
    let mut c = env.cmd();
    c.env("PLAKAR_SERVER_TOKEN", TOKEN).arg("at").arg(url).args(args);
    c
}

/// A raw HTTP client that reports every status instead of failing on errors.
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).max_redirects(0).build().into()
}
