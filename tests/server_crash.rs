//! A `plakar server` killed (SIGKILL) in the middle of a backup leaves its store consistent:
//! the backup fails, nothing half-written is visible, and once the server is back `check`
//! passes and the next backup works.
use crate::util::proxy::Proxy;
use crate::util::server::*;
use crate::util::*;
use std::time::{Duration, Instant};

#[test]
fn a_server_killed_mid_backup_leaves_the_store_consistent() {
    let env = Env::new();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    for i in 0..8 {
        std::fs::write(src.join(format!("f{i}")), noise(3_000_000, i + 1)).unwrap();
    }
    let srv = serve(&env, &[]);
    let addr = srv.addr.clone();
    // Small packfiles, so that some land before the kill; a slow link, so that the backup
    // is still uploading when it comes.
    via(&env, &srv.url, &["create", "-packfile-mib", "1"]).assert().success();
    let proxy = Proxy::start(&addr);
    let through = format!("http://{}", proxy.addr);
    proxy.throttle(4 << 20);
    let mut backup = env.spawn_cmd();
    let mut backup = backup
        .env("PLAKAR_SERVER_TOKEN", TOKEN)
        .args(["at", &through, "backup", src.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while packfiles(&env.path("store")).len() < 3 {
        assert!(start.elapsed() < Duration::from_secs(60), "no packfile landed");
        assert!(backup.try_wait().unwrap().is_none(), "the backup ended before the server was killed");
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(srv); // SIGKILL
    let status = backup.wait().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(&mut backup.stderr.take().unwrap(), &mut err).unwrap();
    assert!(!status.success(), "the backup went through a dead server: {err}");

    // Back on the same address: the store checks, holds no snapshot of the failed backup,
    // and the next backup works and restores.
    let srv = serve_with(&env, &env.store(), &addr, &[], Some(TOKEN));
    proxy.throttle(0);
    via(&env, &srv.url, &["check"]).assert().success();
    assert_eq!(env.stdout(&["ls"]), "", "{err}");
    via(&env, &through, &["backup", src.to_str().unwrap()]).assert().success();
    via(&env, &srv.url, &["check"]).assert().success();
    via(&env, &srv.url, &["restore", "-to", env.path("out").to_str().unwrap()]).assert().success();
    assert_same_tree(&src, &env.path("out"));
    // The leftovers of the killed backup go with the next maintenance.
    drop(srv);
    let srv = serve_with(&env, &env.store(), &addr, &["-allow-delete"], Some(TOKEN));
    via(&env, &srv.url, &["maintenance"]).assert().success();
    env.at(&["check"]).assert().success();
}
