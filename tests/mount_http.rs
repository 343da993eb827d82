//! `plakar mount -to http://ADDR`: the same read-only view over HTTP, read with a real HTTP
//! client (ureq): every file of the source compared byte for byte, random ranges of a
//! many-chunk file, directory listings, the view's links, the `ui` token rules, refused
//! writes, and a clean stop on SIGTERM.
use crate::util::*;
use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};

struct Served {
    child: Child,
    base: String,
    token: String,
    _stdout: BufReader<std::process::ChildStdout>,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(env: &Env, extra: &[&str]) -> Served {
    let mut child = Command::new(assert_cmd::cargo::cargo_bin("plakar"))
        .current_dir(env.dir.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", env.path("home"))
        .env("PLAKAR_PASSPHRASE", PASS)
        .args(["at", &env.store(), "mount", "-to", "http://127.0.0.1:0"])
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
        panic!("plakar mount printed no URL: {err}");
    }
    let url = line.split_whitespace().last().unwrap().to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{line}");
    let (base, token) = match url.split_once("/?token=") {
        Some((b, t)) => (b.to_string(), t.to_string()),
        None => (url.trim_end_matches('/').to_string(), String::new()),
    };
    Served { child, base, token, _stdout: stdout }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).max_redirects(0).build().into()
}

/// Percent-encodes a path, slashes kept.
fn enc(p: &[u8]) -> String {
    p.iter()
        .map(|&b| {
            if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

impl Served {
    /// GET with the bearer token and optional headers: (status, headers, body).
    fn get(&self, path: &str, range: Option<&str>) -> (u16, ureq::http::HeaderMap, Vec<u8>) {
        let mut req =
            agent().get(format!("{}{path}", self.base)).header("Authorization", format!("Bearer {}", self.token));
        if let Some(r) = range {
            req = req.header("Range", r);
        }
        let mut r = req.call().unwrap();
        let headers = r.headers().clone();
        (r.status().as_u16(), headers, r.body_mut().with_config().limit(u64::MAX).read_to_vec().unwrap())
    }
}

#[test]
fn http_view_serves_the_snapshot_read_only_with_ranges_and_the_ui_token_rules() {
    let env = Env::new();
    let src = env.path("src");
    sample_tree(&src);
    let mut x: u64 = 99;
    let big: Vec<u8> = (0..6 << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    fs::write(src.join("big.bin"), &big).unwrap();
    env.create();
    let id = env.backup(&src);
    let s = serve(&env, &[]);
    assert_eq!(s.token.len(), 32, "a token is printed");
    let top = format!("/{}{}", &id[..8], src.display());

    // Every file, byte for byte.
    let mut files = 0;
    for p in walk(&src) {
        let meta = fs::symlink_metadata(&p).unwrap();
        if !meta.is_file() {
            continue;
        }
        let rel = p.strip_prefix(&src).unwrap().as_os_str().as_encoded_bytes();
        let (st, h, body) = s.get(&format!("{}/{}", enc(top.as_bytes()), enc(rel)), None);
        assert_eq!(st, 200, "{}", p.display());
        assert!(body == fs::read(&p).unwrap(), "{} differs", p.display());
        assert_eq!(h.get("content-type").unwrap(), "application/octet-stream");
        assert_eq!(h.get("x-content-type-options").unwrap(), "nosniff");
        files += 1;
    }
    assert!(files >= 6, "{files} files compared");

    // Random ranges of the many-chunk file.
    let path = format!("{top}/big.bin");
    for i in 0..30u64 {
        let off = (i * 7_919_993) % big.len() as u64;
        let len = 1 + (i * 104_729) % (2 << 20);
        let last = (off + len - 1).min(big.len() as u64 - 1);
        let (st, h, body) = s.get(&path, Some(&format!("bytes={off}-{}", off + len - 1)));
        assert_eq!(st, 206);
        assert_eq!(h.get("content-range").unwrap().to_str().unwrap(), format!("bytes {off}-{last}/{}", big.len()));
        assert!(body == big[off as usize..=last as usize], "range {off}+{len}");
    }
    let (st, _, body) = s.get(&path, Some("bytes=-5"));
    assert_eq!((st, body.as_slice()), (206, &big[big.len() - 5..]));
    assert_eq!(s.get(&path, Some(&format!("bytes={}-", big.len()))).0, 416);

    // Listings, redirects, the view's links.
    let (st, _, page) = s.get(&format!("{top}/"), None);
    let page = String::from_utf8(page).unwrap();
    assert_eq!(st, 200);
    assert!(page.contains("href=\"hello.txt\"") && page.contains("href=\"sub/\""), "{page}");
    assert!(page.contains("-rw-------") || page.contains("drwx"), "modes are shown: {page}");
    let (st, h, _) = s.get(&format!("{top}/sub"), None);
    assert_eq!((st, h.get("location").unwrap().to_str().unwrap()), (302, "sub/"));
    let (st, h, _) = s.get("/latest", None);
    assert_eq!((st, h.get("location").unwrap().to_str().unwrap()), (302, &id[..8]));
    let (_, _, dates) = s.get("/by-date/", None);
    let dates = String::from_utf8(dates).unwrap();
    let stamp = dates.split("href=\"").nth(2).unwrap().split('"').next().unwrap().to_string();
    let (st, _, body) = s.get(&format!("/by-date/{stamp}{}/hello.txt", src.display()), None);
    assert_eq!((st, body.as_slice()), (200, &b"hello world\n"[..]), "through by-date/{stamp}");
    assert_eq!(s.get(&format!("{top}/nope"), None).0, 404);

    // The ui's token rules: none, a wrong one, the query form; loopback Host names only.
    let url = format!("{}{top}/hello.txt", s.base);
    assert_eq!(agent().get(&url).call().unwrap().status(), 401);
    assert_eq!(agent().get(&url).header("Authorization", "Bearer nope").call().unwrap().status(), 401);
    assert_eq!(agent().get(format!("{url}?token={}", s.token)).call().unwrap().status(), 200);
    let rebound =
        agent().get(&url).header("Authorization", format!("Bearer {}", s.token)).header("Host", "evil.example");
    assert_eq!(rebound.call().unwrap().status(), 421);
    // A listing reached with ?token= keeps it in its links.
    let mut r = agent().get(format!("{}{top}/?token={}", s.base, s.token)).call().unwrap();
    let page = r.body_mut().read_to_string().unwrap();
    assert!(page.contains(&format!("href=\"hello.txt?token={}\"", s.token)), "{page}");

    // Read-only.
    let put = agent().put(&url).header("Authorization", format!("Bearer {}", s.token)).send("x").unwrap();
    assert_eq!(put.status(), 405);
    let del = agent().delete(&url).header("Authorization", format!("Bearer {}", s.token)).call().unwrap();
    assert_eq!(del.status(), 405);

    let mut s = s;
    unsafe { libc::kill(s.child.id() as i32, libc::SIGTERM) };
    let st = s.child.wait().unwrap();
    assert_eq!(st.code(), Some(0), "exit code after SIGTERM");
}

#[test]
fn http_view_without_auth_serves_without_a_token() {
    let env = Env::new();
    let src = env.path("src");
    sample_tree(&src);
    env.create();
    let id = env.backup(&src);
    let s = serve(&env, &["-no-auth"]);
    assert!(s.token.is_empty());
    let url = format!("{}/{}{}/hello.txt", s.base, &id[..8], src.display());
    let mut r = agent().get(&url).call().unwrap();
    assert_eq!(r.body_mut().read_to_string().unwrap(), "hello world\n");
}
