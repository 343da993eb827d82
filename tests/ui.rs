//! `plakar ui`: the JSON API against real stores (fs, ptar, S3) over HTTP, and the page in
//! headless Chromium (tests/ui/e2e.cjs, driven by playwright-core).
use crate::util::{self, Env, PASS};
use base64::Engine as _;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// A 1x1 PNG.
const PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==";
const BIG_DIR: usize = 1200;
/// A name that would run script if the page ever put names into HTML.
const HOSTILE: &str = "docs/<img src=x onerror=alert(1)> \"q\" 'a'.txt";

/// A running `plakar ui`, stopped on drop.
struct Ui {
    child: Child,
    /// The printed URL, token included.
    url: String,
    base: String,
    token: String,
    /// Kept open while the server runs.
    _stdout: BufReader<std::process::ChildStdout>,
}

impl Drop for Ui {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_ui(env: &Env, store: &str, extra: &[&str]) -> Ui {
    start_ui_env(env, store, extra, &[])
}

fn start_ui_env(env: &Env, store: &str, extra: &[&str], vars: &[(&str, &str)]) -> Ui {
    let mut child = Command::new(assert_cmd::cargo::cargo_bin("plakar"))
        .current_dir(env.dir.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", env.path("home"))
        .env("PLAKAR_PASSPHRASE", PASS)
        .envs(vars.iter().copied())
        .args(["at", store, "ui", "-no-spawn"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("plakar ui starts");
    let mut line = String::new();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    stdout.read_line(&mut line).unwrap();
    if line.is_empty() {
        let mut err = String::new();
        child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
        panic!("plakar ui printed no URL: {err}");
    }
    let url = line.split_whitespace().last().expect("a URL").to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{line}");
    let base = url.split('#').next().unwrap().trim_end_matches('/').to_string();
    let token = url.split("#token=").nth(1).unwrap_or("").to_string();
    Ui { child, url, base, token, _stdout: stdout }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).max_redirects(0).build().into()
}

impl Ui {
    /// GET with the token as a bearer header: (status, body).
    fn get(&self, path: &str) -> (u16, Vec<u8>) {
        let mut r = agent()
            .get(format!("{}{path}", self.base))
            .header("Authorization", format!("Bearer {}", self.token))
            .call()
            .unwrap();
        (r.status().as_u16(), r.body_mut().with_config().limit(u64::MAX).read_to_vec().unwrap())
    }
    fn json(&self, path: &str) -> serde_json::Value {
        let (s, b) = self.get(path);
        assert_eq!(s, 200, "{path}: {}", String::from_utf8_lossy(&b));
        serde_json::from_slice(&b).unwrap()
    }
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Two snapshots of a tree with text, an image, binary data, a symlink and a directory of
/// BIG_DIR files; the second changes notes.txt, adds new.txt and drops docs/old.txt.
/// Returns (source dir, [newest id, oldest id]).
fn two_snapshots(env: &Env, store: &str) -> (PathBuf, [String; 2]) {
    let src = env.path("src");
    std::fs::create_dir_all(src.join("docs/many")).unwrap();
    std::fs::write(src.join("notes.txt"), "first version\n").unwrap();
    std::fs::write(src.join("docs/readme.md"), "# Read me\n\nThis is plakar's UI test, with ünïcödé.\n").unwrap();
    std::fs::write(src.join("docs/old.txt"), "gone in the second snapshot\n").unwrap();
    std::fs::write(src.join("docs/pixel.png"), base64::engine::general_purpose::STANDARD.decode(PNG).unwrap()).unwrap();
    std::fs::write(src.join("docs/blob.bin"), util::noise(300_000, 7)).unwrap();
    std::fs::write(src.join(HOSTILE), "hostile name\n").unwrap();
    std::os::unix::fs::symlink("notes.txt", src.join("link")).unwrap();
    for i in 0..BIG_DIR {
        std::fs::write(src.join(format!("docs/many/f{i:05}")), format!("{i}\n")).unwrap();
    }
    let run = |args: &[&str]| {
        let mut c = env.cmd();
        c.arg("at").arg(store).args(args).assert().success();
    };
    run(&["create"]);
    run(&["backup", "-tag", "first", src.to_str().unwrap()]);
    std::thread::sleep(std::time::Duration::from_millis(20));
    std::fs::write(src.join("notes.txt"), "second version, longer\n").unwrap();
    std::fs::write(src.join("new.txt"), "new\n").unwrap();
    std::fs::remove_file(src.join("docs/old.txt")).unwrap();
    run(&["backup", "-tag", "second", src.to_str().unwrap()]);
    let out = env.cmd().arg("at").arg(store).args(["ls", "-uuid"]).output().unwrap();
    let ids: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.split_whitespace().nth(1).unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 2);
    (src, [ids[0].clone(), ids[1].clone()])
}

/// A token that differs from `token` for certain: its first digit changed to another one
/// (a fixed replacement digit would equal the real one in one run of sixteen).
fn wrong_token(token: &str) -> String {
    let first = if token.starts_with('0') { '1' } else { '0' };
    let wrong = format!("{first}{}", &token[1..]);
    assert_ne!(wrong, token);
    wrong
}

#[test]
fn ui_token_is_required() {
    let env = Env::new();
    let store = env.store();
    let (_, ids) = two_snapshots(&env, &store);
    let ui = start_ui(&env, &store, &[]);
    assert_eq!(ui.token.len(), 32, "a 128-bit token in the URL's fragment: {}", ui.url);
    let tree = format!("/api/snapshots/{}/tree", ids[0]);
    let content = format!("/api/snapshots/{}/content?path=notes.txt", ids[0]);
    for path in ["/api/snapshots", "/api/info", tree.as_str(), content.as_str(), "/api/search?q=notes"] {
        let sep = if path.contains('?') { '&' } else { '?' };
        for (how, req) in [
            ("no token", agent().get(format!("{}{path}", ui.base))),
            ("a wrong token", agent().get(format!("{}{path}{sep}token={}", ui.base, wrong_token(&ui.token)))),
            ("a wrong bearer", agent().get(format!("{}{path}", ui.base)).header("Authorization", "Bearer nope")),
            ("a cookie", agent().get(format!("{}{path}", ui.base)).header("Cookie", format!("token={}", ui.token))),
        ] {
            let mut r = req.call().unwrap();
            assert_eq!(r.status().as_u16(), 401, "{path} with {how}");
            let body = r.body_mut().read_to_string().unwrap();
            assert!(!body.contains(&ids[0][..8]) && !body.contains("notes") && !body.contains("first"), "{body}");
        }
        let mut r = agent().get(format!("{}{path}{sep}token={}", ui.base, ui.token)).call().unwrap();
        assert_eq!(r.status().as_u16(), 200, "{path} with the token as a query parameter");
        let _ = r.body_mut().read_to_vec();
    }
    // The page's assets hold no data and need no token; nothing sets a cookie.
    let mut r = agent().get(format!("{}/", ui.base)).call().unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.headers().get("set-cookie").is_none());
    assert!(!r.body_mut().read_to_string().unwrap().contains(&ids[0][..8]));
    // Another Host name (DNS rebinding) is refused even with the token.
    let r = agent()
        .get(format!("{}/api/snapshots", ui.base))
        .header("Host", "evil.example:80")
        .header("Authorization", format!("Bearer {}", ui.token))
        .call()
        .unwrap();
    assert_eq!(r.status().as_u16(), 421);
    assert_eq!(ui.get("/api/snapshots").0, 200);
    // PLAKAR_UI_TOKEN picks the token; -no-auth drops it.
    let fixed = start_ui_env(&env, &store, &[], &[("PLAKAR_UI_TOKEN", "my-own-token-0123456789")]);
    assert_eq!(fixed.token, "my-own-token-0123456789");
    assert_eq!(fixed.get("/api/snapshots").0, 200);
    let open = start_ui(&env, &store, &["-no-auth"]);
    assert!(open.token.is_empty(), "{}", open.url);
    assert_eq!(agent().get(format!("{}/api/snapshots", open.base)).call().unwrap().status().as_u16(), 200);
}

#[test]
fn ui_api_browses_searches_diffs_and_downloads() {
    let env = Env::new();
    let store = env.store();
    let (src, ids) = two_snapshots(&env, &store);
    let ui = start_ui(&env, &store, &[]);
    let root = src.to_str().unwrap();

    let list = ui.json("/api/snapshots");
    let got: Vec<&str> = list["snapshots"].as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(got, [ids[0].as_str(), ids[1].as_str()], "newest first");
    assert_eq!(list["tags"], serde_json::json!(["first", "second"]));
    assert_eq!(ui.json("/api/snapshots?tag=first")["snapshots"][0]["id"], ids[1].as_str());
    assert_eq!(ui.json(&format!("/api/snapshots?q={}", &ids[1][..10]))["snapshots"].as_array().unwrap().len(), 1);
    assert_eq!(ui.json("/api/snapshots?q=no-such-thing")["snapshots"].as_array().unwrap().len(), 0);

    // The backed-up directory by default, then a directory page by page.
    let t = ui.json(&format!("/api/snapshots/{}/tree", &ids[0][..8]));
    let names: Vec<&str> = t["children"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["docs", "link", "new.txt", "notes.txt"]);
    assert_eq!(t["children"][1]["target"], "notes.txt");
    let many = format!("{root}/docs/many");
    let mut seen = Vec::new();
    let mut offset = 0;
    loop {
        let p = ui.json(&format!("/api/snapshots/{}/tree?path={}&offset={offset}&limit=500", ids[0], enc(&many)));
        assert_eq!(p["total"], BIG_DIR);
        let page = p["children"].as_array().unwrap();
        if page.is_empty() {
            break;
        }
        seen.extend(page.iter().map(|c| c["name"].as_str().unwrap().to_string()));
        offset += page.len();
    }
    let want: Vec<String> = (0..BIG_DIR).map(|i| format!("f{i:05}")).collect();
    assert_eq!(seen, want, "every entry once, in order, over {} pages", BIG_DIR.div_ceil(500));
    let f = ui.json(&format!("/api/snapshots/{}/tree?path={}&filter=F0119", ids[0], enc(&many)));
    assert_eq!(f["total"], 10, "the name filter is case-insensitive");

    // Previews, raw content and downloads.
    let p = ui.json(&format!("/api/snapshots/{}/preview?path=docs/readme.md", ids[0]));
    assert_eq!(p["preview"], "text");
    assert_eq!(p["text"], std::fs::read_to_string(src.join("docs/readme.md")).unwrap());
    assert_eq!(ui.json(&format!("/api/snapshots/{}/preview?path=docs/pixel.png", ids[0]))["preview"], "image");
    assert_eq!(ui.json(&format!("/api/snapshots/{}/preview?path=docs/blob.bin", ids[0]))["preview"], "binary");
    let (s, body) = ui.get(&format!("/api/snapshots/{}/content?path=docs/blob.bin&download=1", ids[0]));
    assert_eq!(s, 200);
    assert!(body == std::fs::read(src.join("docs/blob.bin")).unwrap(), "downloaded bytes equal the original");
    let (_, old) = ui.get(&format!("/api/snapshots/{}/content?path=notes.txt", ids[1]));
    assert_eq!(old, b"first version\n", "the older snapshot's content");
    let r = agent()
        .get(format!("{}/api/snapshots/{}/content?path=docs/readme.md", ui.base, ids[0]))
        .header("Authorization", format!("Bearer {}", ui.token))
        .call()
        .unwrap();
    assert_eq!(r.headers()["content-type"], "text/plain; charset=utf-8", "backed-up files never render as pages");
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");

    // A directory as .zip and as .tar.gz: every file, byte for byte.
    let (s, zip) = ui.get(&format!("/api/snapshots/{}/archive?path=docs&format=zip", ids[0]));
    assert_eq!(s, 200);
    let mut z = zip::ZipArchive::new(std::io::Cursor::new(zip)).expect("a readable zip");
    let mut n = 0;
    for i in 0..z.len() {
        let mut f = z.by_index(i).unwrap();
        if f.is_file() {
            let mut b = Vec::new();
            f.read_to_end(&mut b).unwrap();
            let name = f.name().unwrap().to_string();
            assert_eq!(b, std::fs::read(src.join(&name)).unwrap(), "{name} in the zip");
            n += 1;
        }
    }
    assert_eq!(n, BIG_DIR + 4, "readme, pixel, blob, the hostile name and the big directory");
    let (s, tgz) = ui.get(&format!("/api/snapshots/{}/archive?path=/&format=tar.gz", ids[0]));
    assert_eq!(s, 200);
    let out = env.path("untar");
    std::fs::create_dir_all(&out).unwrap();
    tar::Archive::new(flate2::read::GzDecoder::new(&tgz[..])).unpack(&out).unwrap();
    let top = std::fs::read_dir(&out).unwrap().next().unwrap().unwrap().path();
    assert!(top.file_name().unwrap().to_str().unwrap().starts_with("snapshot-"));
    util::assert_same_tree_but_link_mtimes(&src, &top.join(src.strip_prefix("/").unwrap()));

    // Search across snapshots, and in one.
    let hits = ui.json("/api/search?q=readme");
    assert_eq!(hits["results"].as_array().unwrap().len(), 2, "{hits}");
    let hits = ui.json(&format!("/api/search?q=*.TXT&snapshot={}", ids[1]));
    let paths: Vec<&str> = hits["results"].as_array().unwrap().iter().map(|h| h["path"].as_str().unwrap()).collect();
    assert_eq!(paths, [format!("{root}/{HOSTILE}"), format!("{root}/docs/old.txt"), format!("{root}/notes.txt")]);
    assert_eq!(ui.json("/api/search?q=f0&limit=7")["truncated"], true);
    let exact = ui.json("/api/search?q=readme&limit=2");
    assert_eq!((exact["results"].as_array().unwrap().len(), &exact["truncated"]), (2, &serde_json::json!(false)));
    assert_eq!(ui.json("/api/search?q=readme&limit=1")["truncated"], true);

    // Diff of the two snapshots, whole and one file.
    let d = ui.json(&format!("/api/diff?a={}&b={}", ids[1], ids[0]));
    let changes: Vec<String> = d["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| format!("{} {}", c["op"].as_str().unwrap(), c["path"].as_str().unwrap()))
        .collect();
    assert_eq!(
        changes,
        [format!("removed {root}/docs/old.txt"), format!("added {root}/new.txt"), format!("modified {root}/notes.txt")]
    );
    let d = ui.json(&format!("/api/diff?a={}&b={}&path=notes.txt", ids[1], ids[0]));
    assert!(d["unified"].as_str().unwrap().contains("-first version\n+second version, longer\n"), "{d}");

    let i = ui.json("/api/info");
    assert_eq!(i["snapshots"], 2);
    assert_eq!(i["timeline"].as_array().unwrap().len(), 2);
    assert!(i["dedup_ratio"].as_f64().unwrap() > 1.0, "two near-identical snapshots dedup: {i}");
    assert!(i.get("plaintext_master").is_none() && !i.to_string().contains("keys"), "no key material: {i}");

    // Paths outside the snapshot, unknown snapshots, bad parameters.
    for bad in [
        format!("/api/snapshots/{}/tree?path=/../../etc/passwd", ids[0]),
        format!("/api/snapshots/{}/tree?path=/etc/passwd", ids[0]),
        format!("/api/snapshots/{}/content?path=../../../../etc/passwd", ids[0]),
        format!("/api/snapshots/{}/archive?path=/nonexistent", ids[0]),
        "/api/snapshots/0123456789abcdef/tree".to_string(),
        "/api/snapshots/not-hex".to_string(),
        "/api/nothing-here".to_string(),
    ] {
        let (s, b) = ui.get(&bad);
        assert_eq!(s, 404, "{bad}: {}", String::from_utf8_lossy(&b));
        assert!(!String::from_utf8_lossy(&b).contains("root:"), "{bad} leaked a host file");
    }
    assert_eq!(ui.get(&format!("/api/snapshots/{}/archive?format=rar", ids[0])).0, 400);
    assert_eq!(ui.get(&format!("/api/snapshots/{}/content?path=docs", ids[0])).0, 400);
    assert_eq!(ui.get("/api/search?q=").0, 400);
}

/// New snapshots show up while the UI runs; -no-refresh keeps the first view.
#[test]
fn ui_sees_new_snapshots() {
    let env = Env::new();
    let store = env.store();
    let (src, _) = two_snapshots(&env, &store);
    let ui = start_ui(&env, &store, &[]);
    let fixed = start_ui(&env, &store, &["-no-refresh"]);
    assert_eq!(ui.json("/api/snapshots")["total"], 2);
    env.cmd().arg("at").arg(&store).args(["backup", src.to_str().unwrap()]).assert().success();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while ui.json("/api/snapshots")["total"] != 3 {
        assert!(std::time::Instant::now() < deadline, "the new snapshot never showed");
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    assert_eq!(fixed.json("/api/snapshots")["total"], 2);
}

#[test]
fn ui_serves_a_ptar_archive() {
    let env = Env::new();
    let store = env.store();
    let (src, ids) = two_snapshots(&env, &store);
    let ptar = env.path("all.ptar");
    env.cmd().args(["ptar", "-o", ptar.to_str().unwrap(), "-k", &store]).assert().success();
    let ui = start_ui(&env, ptar.to_str().unwrap(), &[]);
    assert_eq!(ui.json("/api/snapshots")["total"], 2);
    let (s, b) = ui.get(&format!("/api/snapshots/{}/content?path=docs/blob.bin", &ids[0][..8]));
    assert_eq!(s, 200);
    assert!(b == std::fs::read(src.join("docs/blob.bin")).unwrap());
}

#[test]
fn ui_serves_an_s3_store() {
    let Some((ep, ak, sk)) = util::s3_server() else { return };
    let env = Env::new();
    let bucket = util::unique_bucket("ui");
    for args in [
        vec!["store", "add", "s3ui", &format!("s3://{ep}/{bucket}")],
        vec!["store", "set", "s3ui", &format!("access_key={ak}"), &format!("secret_access_key={sk}"), "use_tls=false"],
    ] {
        env.cmd().args(args).assert().success();
    }
    let (src, ids) = two_snapshots(&env, "@s3ui");
    let ui = start_ui(&env, "@s3ui", &[]);
    assert_eq!(ui.json("/api/snapshots")["total"], 2);
    let (s, b) = ui.get(&format!("/api/snapshots/{}/content?path=docs/blob.bin", ids[0]));
    assert_eq!(s, 200);
    assert!(b == std::fs::read(src.join("docs/blob.bin")).unwrap());
    assert!(ui.json("/api/info")["storage_size"].as_u64().unwrap() > 300_000);
}

/// The page itself, in headless Chromium: every step a user takes, with screenshots kept
/// under target/ui-screenshots for people to look at.
#[test]
fn ui_in_a_real_browser() {
    let (chromium, playwright) = match (std::env::var("PLAKAR_CHROMIUM"), std::env::var("PLAKAR_PLAYWRIGHT")) {
        (Ok(c), Ok(p)) if !c.is_empty() && !p.is_empty() => (c, p),
        _ if std::env::var_os("PLAKAR_REQUIRE_SERVERS").is_some() || std::env::var_os("CI").is_some() => {
            panic!("no browser: run `eval \"$(scripts/browser-setup.sh)\"` (scripts/test.sh does)")
        }
        _ => {
            eprintln!("PLAKAR_CHROMIUM not set: skipping the browser test");
            return;
        }
    };
    let env = Env::new();
    let store = env.store();
    let (src, ids) = two_snapshots(&env, &store);
    let ui = start_ui(&env, &store, &[]);
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/ui-screenshots");
    let _ = std::fs::remove_dir_all(&shots);
    std::fs::create_dir_all(&shots).unwrap();
    let root = src.to_str().unwrap();
    let spec = serde_json::json!({
        "url": ui.url, "chromium": chromium, "screenshots": shots,
        "snapshots": ids, "tag": "second",
        "root_entries": ["docs", "link", "new.txt", "notes.txt"],
        "dir": "docs", "big_dir": "many", "big_count": BIG_DIR,
        "text_file": "readme.md", "text_source": src.join("docs/readme.md"),
        "text_content": std::fs::read_to_string(src.join("docs/readme.md")).unwrap(),
        "image_file": "pixel.png", "image_width": 1,
        "search": "readme", "search_hits": 2,
        "hostile": HOSTILE.trim_start_matches("docs/"),
        "changes": [format!("removed {root}/docs/old.txt"), format!("added {root}/new.txt"), format!("modified {root}/notes.txt")],
    });
    let spec_file = env.path("spec.json");
    std::fs::write(&spec_file, spec.to_string()).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ui/e2e.cjs");
    let out =
        Command::new("node").arg(script).arg(&spec_file).env("NODE_PATH", playwright).output().expect("node runs");
    let (o, e) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "browser test failed (screenshots in {}):\n{o}\n{e}", shots.display());
    assert!(o.contains("all steps passed"), "{o}");
}

/// A damaged chunk in the middle of a download must not give a valid-looking archive or
/// file: the response breaks off, and the browser marks the download failed.
#[test]
fn ui_damaged_data_breaks_the_download() {
    let env = Env::new();
    let store = env.store();
    let (src, ids) = two_snapshots(&env, &store);
    let biggest = util::packfiles(Path::new(&store)).into_iter().max_by_key(|p| p.metadata().unwrap().len()).unwrap();
    let mut bytes = std::fs::read(&biggest).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x55;
    std::fs::write(&biggest, bytes).unwrap();
    let ui = start_ui(&env, &store, &[]);
    let fetch = |path: &str| -> Option<Vec<u8>> {
        let mut r = agent()
            .get(format!("{}{path}", ui.base))
            .header("Authorization", format!("Bearer {}", ui.token))
            .call()
            .ok()?;
        if r.status().as_u16() != 200 {
            return None;
        }
        r.body_mut().with_config().limit(u64::MAX).read_to_vec().ok()
    };
    if let Some(zip) = fetch(&format!("/api/snapshots/{}/archive?path=/&format=zip", ids[1])) {
        assert!(zip::ZipArchive::new(std::io::Cursor::new(zip)).is_err(), "a damaged store gave a readable zip");
    }
    if let Some(tgz) = fetch(&format!("/api/snapshots/{}/archive?path=/&format=tar.gz", ids[1])) {
        let out = env.path("untar");
        std::fs::create_dir_all(&out).unwrap();
        let unpacked = tar::Archive::new(flate2::read::GzDecoder::new(&tgz[..])).unpack(&out);
        assert!(unpacked.is_err(), "a damaged store gave a readable .tar.gz");
    }
    let whole: Vec<Option<Vec<u8>>> = ["docs/blob.bin", "docs/readme.md", "notes.txt"]
        .iter()
        .map(|f| fetch(&format!("/api/snapshots/{}/content?path={}", ids[1], enc(f))))
        .collect();
    // Whatever was served in full is the original; the damaged file is not served whole.
    let originals: Vec<Vec<u8>> = ["docs/blob.bin", "docs/readme.md", "first version\n"]
        .iter()
        .map(|f| if f.contains('\n') { f.as_bytes().to_vec() } else { std::fs::read(src.join(f)).unwrap() })
        .collect();
    assert!(whole.iter().any(Option::is_none), "some download must fail on the damaged packfile");
    for (got, want) in whole.iter().zip(&originals) {
        if let Some(got) = got {
            assert!(got == want, "a download that succeeded must be the original file");
        }
    }
}
