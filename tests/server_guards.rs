//! What `plakar server` refuses: deletes (and what would destroy data like one) without
//! `-allow-delete`, and every request without its token.
use crate::util::server::*;
use crate::util::*;

fn code_and_err(out: std::process::Output) -> (Option<i32>, String) {
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Every object file of a fs store, with its bytes.
fn objects(store: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut v: Vec<_> = walk(store)
        .into_iter()
        .filter(|p| p.is_file() && !p.starts_with(store.join("locks")))
        .map(|p| {
            let b = std::fs::read(&p).unwrap();
            (p, b)
        })
        .collect();
    v.sort();
    v
}

#[test]
fn deletes_are_refused_without_allow_delete_and_nothing_is_lost() {
    let env = Env::new();
    let src = env.path("src");
    sample_tree(&src);
    let srv = serve(&env, &[]);
    let url = srv.url.clone();
    via(&env, &url, &["create"]).assert().success();
    via(&env, &url, &["backup", src.to_str().unwrap()]).assert().success();
    std::fs::write(src.join("new.txt"), "second backup").unwrap();
    via(&env, &url, &["backup", src.to_str().unwrap()]).assert().success();
    let before = objects(&env.path("store"));
    let listed = env.stdout(&["ls"]);
    assert_eq!(listed.lines().count(), 2);

    // Removing snapshots and collecting garbage stop before writing anything: exit 69,
    // naming the flag the server needs.
    for args in [&["rm", "-apply", "-latest"][..], &["prune", "-apply", "-per-day", "1"], &["maintenance"]] {
        let (code, err) = code_and_err(via(&env, &url, args).output().unwrap());
        assert_eq!(code, Some(69), "{args:?}: {err}");
        assert!(err.contains("-allow-delete") && err.contains("refuses deletes"), "{args:?}: {err}");
    }
    // A passphrase change would delete the old one's slot: refused too; adding one is not.
    let (code, err) =
        code_and_err(via(&env, &url, &["passwd"]).env("PLAKAR_NEW_PASSPHRASE", "other").output().unwrap());
    assert_eq!(code, Some(69), "{err}");

    // The raw API refuses deleting, and replacing with other bytes, what holds data.
    let pack = packfiles(&env.path("store"))[0].clone();
    let name = pack.file_name().unwrap().to_str().unwrap().to_string();
    let auth = format!("Bearer {TOKEN}");
    let a = agent();
    let mut r = a.delete(format!("{url}/packfiles/{name}")).header("Authorization", &auth).call().unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.body_mut().read_to_string().unwrap().contains("-allow-delete"));
    let r = a.put(format!("{url}/packfiles/{name}")).header("Authorization", &auth).send(&b"garbage"[..]).unwrap();
    assert_eq!(r.status(), 403);
    let r = a.put(format!("{url}/CONFIG")).header("Authorization", &auth).send(&b"garbage"[..]).unwrap();
    assert_eq!(r.status(), 403);
    // The same bytes again (a retried upload) are fine.
    let same = std::fs::read(&pack).unwrap();
    let r = a.put(format!("{url}/packfiles/{name}")).header("Authorization", &auth).send(&same[..]).unwrap();
    assert_eq!(r.status(), 204);

    // Nothing was lost or changed.
    assert_eq!(objects(&env.path("store")), before);
    assert_eq!(env.stdout(&["ls"]), listed);
    via(&env, &url, &["check"]).assert().success();
    // Adding a passphrase deletes nothing: it goes through.
    via(&env, &url, &["passwd", "-add"]).env("PLAKAR_NEW_PASSPHRASE", "another one").assert().success();
    via(&env, &url, &["ls"]).env("PLAKAR_PASSPHRASE", "another one").assert().success();

    // The same commands pass once the server allows deletes.
    drop(srv);
    let srv = serve(&env, &["-allow-delete"]);
    via(&env, &srv.url, &["rm", "-apply", "-latest"]).assert().success();
    via(&env, &srv.url, &["maintenance"]).assert().success();
    assert_eq!(env.stdout(&["ls"]).lines().count(), 1);
    via(&env, &srv.url, &["check"]).assert().success();
}

#[test]
fn requests_without_the_token_get_401() {
    let env = Env::new();
    env.create();
    let srv = serve(&env, &[]);
    let url = srv.url.clone();
    // No token: exit 77, as refused S3 credentials, naming the option.
    let (code, err) = code_and_err(env.cmd().args(["at", &url, "ls"]).output().unwrap());
    assert_eq!(code, Some(77), "{err}");
    assert!(err.contains("auth_token") && err.contains("needs a token"), "{err}");
    // A wrong one: the same code, saying the token is wrong.
    env.cmd().args(["store", "add", "wrong", &url, "auth_token=not-the-token"]).assert().success();
    let (code, err) = code_and_err(env.cmd().args(["at", "@wrong", "ls"]).output().unwrap());
    assert_eq!(code, Some(77), "{err}");
    assert!(err.contains("auth_token") && err.contains("wrong"), "{err}");
    // The right one.
    env.cmd().args(["store", "add", "right", &url, &format!("auth_token={TOKEN}")]).assert().success();
    env.cmd().args(["at", "@right", "ls"]).assert().success();
    // Raw: every route, reads and writes, answers 401 and nothing else.
    let a = agent();
    for path in ["/", "/CONFIG", "/states", &format!("/states/{}", "00".repeat(32))] {
        let mut r = a.get(format!("{url}{path}")).call().unwrap();
        assert_eq!(r.status(), 401, "{path}");
        assert!(!r.body_mut().read_to_string().unwrap().contains("protocol"));
        let r = a.get(format!("{url}{path}")).header("Authorization", "Bearer nope").call().unwrap();
        assert_eq!(r.status(), 401, "{path}");
    }
    let r = a.put(format!("{url}/locks/{}", "00".repeat(32))).send(&b"x"[..]).unwrap();
    assert_eq!(r.status(), 401);
    assert!(!env.path("store/locks").join("00".repeat(32)).exists());
}

#[test]
fn a_random_token_is_printed_when_none_is_given() {
    let env = Env::new();
    env.create();
    let mut c = env.spawn_cmd();
    let mut child = c
        .args(["at", &env.store(), "server", "-listen", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    use std::io::BufRead;
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let url = lines.next().unwrap().unwrap().split_whitespace().last().unwrap().to_string();
    let token_line = lines.next().unwrap().unwrap();
    let token = token_line.split_whitespace().nth(3).unwrap().to_string();
    assert_eq!(token.len(), 32, "{token_line}");
    env.cmd().args(["at", &url, "ls"]).assert().code(77);
    env.cmd().args(["at", &url, "ls"]).env("PLAKAR_SERVER_TOKEN", &token).assert().success();
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn no_auth_serves_without_a_token() {
    let env = Env::new();
    env.create();
    let srv = serve_with(&env, &env.store(), "127.0.0.1:0", &["-no-auth"], None);
    env.cmd().args(["at", &srv.url, "ls"]).assert().success();
}
