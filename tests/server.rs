//! `plakar server` and the `http://` store, through real server processes: the Store
//! conformance suite, then the commands, through a URL and through a configured store.
use crate::util::server::*;
use crate::util::*;
use plakar::connectors::http::{HttpConfig, HttpStore};
use plakar::connectors::options::Options;
use plakar::kloset::store::{Resource, Store, StoreErrorKind};

fn client(addr: &str, token: &str) -> HttpStore {
    let mut o = Options::new();
    o.insert("auth_token".into(), token.into());
    HttpStore::new(HttpConfig::parse("http", addr, &o).unwrap())
}

#[test]
fn http_store_passes_the_conformance_suite() {
    let env = Env::new();
    let srv = serve(&env, &["-allow-delete"]);
    let s = client(&srv.addr, TOKEN);
    assert!(s.remote());
    crate::conformance::suite(&s);
    // What the suite wrote went to the served directory, through the fs store.
    assert_eq!(std::fs::read(env.path("store/CONFIG")).unwrap(), b"config-bytes");
    assert!(env.path("store/packfiles/05").join("05".repeat(32)).is_file());
    // Ranges past the end read nothing, as from every store; a missing object is NotFound.
    s.put(Resource::State, &[7; 32], b"abc").unwrap();
    assert_eq!(s.get(Resource::State, &[7; 32], Some((3, 5))).unwrap(), b"");
    assert_eq!(s.get(Resource::State, &[7; 32], Some((1, 0))).unwrap(), b"");
    assert_eq!(s.get(Resource::State, &[7; 32], Some((2, 99))).unwrap(), b"c");
    assert_eq!(s.get(Resource::State, &[8; 32], Some((0, 0))).unwrap_err().kind, StoreErrorKind::NotFound);
    assert_eq!(s.size(Resource::State, &[8; 32]).unwrap_err().kind, StoreErrorKind::NotFound);
    s.can_delete().unwrap();
}

#[test]
fn create_backup_restore_check_through_http() {
    let env = Env::new();
    let src = env.path("src");
    sample_tree(&src);
    let srv = serve(&env, &[]);
    let url = srv.url.clone();
    via(&env, &url, &["create"]).assert().success();
    via(&env, &url, &["backup", src.to_str().unwrap()]).assert().success();
    let out = via(&env, &url, &["ls"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let ls = String::from_utf8(out.stdout).unwrap();
    assert_eq!(ls.lines().count(), 1, "{ls}");
    via(&env, &url, &["check"]).assert().success();
    via(&env, &url, &["restore", "-to", env.path("out").to_str().unwrap()]).assert().success();
    assert_same_tree(&src, &env.path("out"));
    via(&env, &url, &["cat", &format!("{}:hello.txt", &ls.split_whitespace().nth(1).unwrap())])
        .assert()
        .success()
        .stdout("hello world\n");
    // The server wrote a plain store: read directly, it holds the same snapshot.
    assert_eq!(env.stdout(&["ls"]), ls);
    env.at(&["check"]).assert().success();
}

#[test]
fn a_configured_store_carries_the_token() {
    let env = Env::new();
    let src = env.path("src");
    sample_tree(&src);
    let srv = serve(&env, &[]);
    env.cmd().args(["store", "add", "remote", &srv.url, &format!("auth_token={TOKEN}")]).assert().success();
    // The token is a secret: masked in `store show`.
    let shown = env.cmd().args(["store", "show", "remote"]).output().unwrap();
    assert!(!String::from_utf8_lossy(&shown.stdout).contains(TOKEN), "{}", String::from_utf8_lossy(&shown.stdout));
    env.cmd().args(["at", "@remote", "create"]).assert().success();
    env.cmd().args(["at", "@remote", "backup", src.to_str().unwrap()]).assert().success();
    env.cmd().args(["at", "@remote", "check"]).assert().success();
    // An option another kind of store takes is refused, naming the valid ones.
    env.cmd()
        .args(["store", "set", "remote", "access_key=x"])
        .assert()
        .failure()
        .stderr(predicates::str::contains("auth_token"));
}

#[test]
fn nothing_listening_names_the_address_and_plakar_server() {
    let env = Env::new();
    // A port that was free a moment ago.
    let addr = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let out = via(&env, &format!("http://{addr}"), &["ls"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(66), "{err}");
    assert!(err.contains(&addr.to_string()) && err.contains("plakar at STORE server"), "{err}");
}

#[test]
fn sigint_and_sigterm_stop_the_server_cleanly() {
    for (sig, name) in [(libc::SIGINT, "interrupted"), (libc::SIGTERM, "terminated")] {
        let env = Env::new();
        env.create();
        let srv = serve(&env, &[]);
        via(&env, &srv.url.clone(), &["ls"]).assert().success();
        let (code, err) = srv.stop(sig);
        assert_eq!(code, Some(0), "{err}");
        assert!(err.contains(&format!("{name}: stopped")), "{err}");
    }
}
