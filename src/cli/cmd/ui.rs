use crate::cli::exit::{Coded, BAD_FLAGS};
use crate::cli::{ui, Ctx};
use anyhow::{Context, Result};
use std::io::Write;
use std::time::Duration;

#[derive(clap::Args)]
pub struct Args {
    /// Address to listen on (default: 127.0.0.1 on a free port)
    #[arg(long, value_name = "HOST:PORT")]
    addr: Option<String>,
    /// Answer cross-origin requests (the token is still required)
    #[arg(long)]
    cors: bool,
    /// Serve without a token: anyone who can reach the address reads the backups
    #[arg(long)]
    no_auth: bool,
    /// Do not open a browser
    #[arg(long)]
    no_spawn: bool,
    /// Do not look for new snapshots while running
    #[arg(long)]
    no_refresh: bool,
    /// TLS certificate (not built in: put a TLS proxy in front)
    #[arg(long, hide = true)]
    cert: Option<String>,
    #[arg(long, hide = true)]
    key: Option<String>,
}

/// A page only this user can read that sends the browser on to `url`: the browser's
/// command line, which every local user can see, then names a file, not the token.
fn redirect_file(url: &str) -> Option<tempfile::TempPath> {
    use std::io::Write as _;
    let mut f = tempfile::Builder::new().prefix("plakar-ui-").suffix(".html").tempfile().ok()?;
    let page = format!(
        "<!doctype html><meta http-equiv=\"refresh\" content=\"0;url={url}\"><a href=\"{url}\">plakar ui</a>\n"
    );
    f.write_all(page.as_bytes()).ok()?;
    Some(f.into_temp_path())
}

/// Opens the page in the desktop's browser when there is a desktop.
fn spawn_browser(url: &str) -> Option<tempfile::TempPath> {
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else if std::env::var_os("DISPLAY").is_some() || std::env::var_os("WAYLAND_DISPLAY").is_some() {
        "xdg-open"
    } else {
        return None;
    };
    let file = redirect_file(url)?;
    let spawned = std::process::Command::new(opener)
        .arg(&*file)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    if spawned.is_err() {
        eprintln!("plakar ui: could not start {opener}; open the URL above yourself");
    }
    Some(file)
}

pub fn run(ctx: &Ctx, a: Args) -> Result<i32> {
    if a.cert.is_some() || a.key.is_some() {
        return Err(Coded(
            BAD_FLAGS,
            "plakar ui serves plain HTTP on loopback: -cert/-key are not supported; put a TLS proxy (nginx, caddy) in front to serve it elsewhere".into(),
        )
        .into());
    }
    let repo = ctx.open()?;
    let addr = a.addr.as_deref().unwrap_or("127.0.0.1:0");
    let listener = std::net::TcpListener::bind(addr).with_context(|| {
        format!("cannot listen on {addr} (is it in use? pick another port with -addr 127.0.0.1:PORT)")
    })?;
    let local = listener.local_addr()?;
    let token = ui::auth::token("PLAKAR_UI_TOKEN", a.no_auth);
    if !local.ip().is_loopback() {
        eprintln!(
            "plakar ui: warning: listening on {local}, reachable from other machines over plain HTTP{}",
            if token.is_some() {
                "; anyone who sees the URL can read the backups"
            } else {
                " with no token: anyone can read the backups"
            }
        );
    } else if token.is_none() {
        eprintln!("plakar ui: warning: -no-auth: every local user can read the backups through {local}");
    }
    let host = if local.ip().is_unspecified() { "127.0.0.1".to_string() } else { local.ip().to_string() };
    let host = if host.contains(':') { format!("[{host}]") } else { host };
    let url = match &token {
        Some(t) => format!("http://{host}:{}/#token={t}", local.port()),
        None => format!("http://{host}:{}/", local.port()),
    };
    {
        // One write: a reader that takes the first line and leaves must not make the
        // second fail.
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(
            format!("plakar ui: serving {} at {url}\nplakar ui: press Ctrl-C to stop\n", ctx.store_loc).as_bytes(),
        );
        let _ = out.flush();
    }
    // Kept until the server stops: the browser may read the file late.
    let _redirect = if a.no_spawn { None } else { spawn_browser(&url) };
    let refresh = (!a.no_refresh).then_some(Duration::from_secs(10));
    ui::serve(repo, listener, ui::Options { token, refresh, cors: a.cors })?;
    Ok(0)
}
