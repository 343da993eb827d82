//! Against a real FTP server (pyftpdlib, started by scripts/ftp-server.sh): FTP as a backup
//! source and a restore target. Files reach the server, and are checked there, through the
//! server user's home directory on this machine.
use crate::util::*;
use predicates::prelude::*;
use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Configures @NAME of `kind` (source, destination) on the test server.
fn add(env: &Env, kind: &str, name: &str, srv: &FtpServer, path: &str, password: &str) {
    env.cmd()
        .args([
            kind,
            "add",
            name,
            &format!("ftp://{}/{path}", srv.endpoint),
            &format!("username={}", srv.user),
            &format!("password={password}"),
        ])
        .assert()
        .success();
}

/// What FTP cannot carry: pyftpdlib follows symbolic links (the link would come back as a
/// file), and suppaftp sends paths as UTF-8 text.
fn drop_what_ftp_cannot_hold(tree: &Path) {
    fs::remove_file(tree.join("link")).unwrap();
    fs::remove_file(tree.join(OsStr::from_bytes(b"latin1-\xe9t\xe9"))).unwrap();
}

#[test]
fn backup_from_ftp_and_restore_to_fs() {
    let Some(srv) = ftp_server() else { return };
    let env = Env::new();
    let dir = unique_bucket("src");
    let remote = srv.home.join(&dir);
    sample_tree(&remote);
    drop_what_ftp_cannot_hold(&remote);
    add(&env, "source", "src", &srv, &dir, &srv.password);
    env.create();
    env.at(&["backup", "@src"]).assert().success();
    let id = env.latest();
    let info = env.stdout(&["info", &id[..8]]);
    assert!(info.contains("Type: ftp") && info.contains(&srv.endpoint), "{info}");
    let out = env.path("out");
    env.at(&["restore", "-to", out.to_str().unwrap(), &id[..8]]).assert().success();
    assert_same_tree(&remote, &out);
    // Again, unchanged: the same content, from the previous snapshot's entries.
    env.at(&["backup", "@src"]).assert().success();
    let out2 = env.path("out2");
    env.at(&["restore", "-to", out2.to_str().unwrap(), &env.latest()[..8]]).assert().success();
    assert_same_tree(&remote, &out2);
}

#[test]
fn restore_to_ftp() {
    let Some(srv) = ftp_server() else { return };
    let env = Env::new();
    let data = env.path("data");
    sample_tree(&data);
    env.create();
    let id = env.backup(&data);
    let dir = unique_bucket("dst");
    add(&env, "destination", "dst", &srv, &format!("{dir}/nested"), &srv.password);
    // The link and the non-UTF-8 name cannot be written over FTP: the restore says so
    // for each (exit 3, partial) and writes everything else.
    env.at(&["restore", "-to", "@dst", &id[..8]]).assert().code(3).stderr(
        predicate::str::contains("link")
            .and(predicate::str::contains("symbolic link not restored"))
            .and(predicate::str::contains("UTF-8"))
            .and(predicate::str::contains(&srv.password).not()),
    );
    drop_what_ftp_cannot_hold(&data);
    let arrived = srv.home.join(&dir).join("nested");
    assert_same_tree(&data, &arrived);
    // No temporary file left behind.
    assert!(walk(&arrived).iter().all(|p| !p.to_string_lossy().contains(".plakar-restore")));
    // Restoring again replaces the files in place.
    fs::write(arrived.join("hello.txt"), "changed on the server\n").unwrap();
    env.at(&["restore", "-to", "@dst", &id[..8]]).assert().code(3);
    assert_same_tree(&data, &arrived);
}

#[test]
fn ftp_errors_have_exit_codes_and_name_the_server() {
    let Some(srv) = ftp_server() else { return };
    let env = Env::new();
    env.create();
    let dir = unique_bucket("errs");
    fs::create_dir_all(srv.home.join(&dir)).unwrap();
    fs::write(srv.home.join(&dir).join("f"), "x").unwrap();

    add(&env, "source", "badpass", &srv, &dir, "not-the-password-at-all");
    env.at(&["backup", "@badpass"]).assert().code(77).stderr(
        predicate::str::contains(&srv.user)
            .and(predicate::str::contains(&srv.endpoint))
            .and(predicate::str::contains("not-the-password").not()),
    );
    add(&env, "destination", "badpass", &srv, &dir, "not-the-password-at-all");
    let id = env.backup(&srv.home.join(&dir));
    env.at(&["restore", "-to", "@badpass", &id[..8]])
        .assert()
        .code(77)
        .stderr(predicate::str::contains(&srv.user).and(predicate::str::contains("not-the-password").not()));

    env.cmd().args(["source", "add", "down", "ftp://127.0.0.1:9/x", "username=u", "password=p"]).assert().success();
    env.at(&["backup", "@down"]).assert().code(66).stderr(predicate::str::contains("127.0.0.1:9"));

    add(&env, "source", "missing", &srv, &format!("{dir}/no-such-dir"), &srv.password);
    env.at(&["backup", "@missing"])
        .assert()
        .code(67)
        .stderr(predicate::str::contains("no-such-dir").and(predicate::str::contains(&srv.endpoint)));

    // scripts/ftp-server.sh denies the user everything under /locked.
    add(&env, "source", "locked", &srv, "locked", &srv.password);
    env.at(&["backup", "@locked"]).assert().failure().stderr(predicate::str::contains("permission denied"));
    add(&env, "destination", "locked", &srv, "locked/sub", &srv.password);
    env.at(&["restore", "-to", "@locked", &id[..8]])
        .assert()
        .failure()
        .stderr(predicate::str::contains("permission denied"));

    // The options are checked when set.
    env.cmd().args(["source", "set", "missing", "passive=perhaps"]).assert().failure();
    env.cmd().args(["source", "set", "missing", "access_key=x"]).assert().failure();
}

#[test]
fn dropped_connections_are_replaced() {
    use plakar::connectors::ftp::{FtpConfig, FtpExporter, FtpImporter};
    use plakar::connectors::options::Options;
    use plakar::kloset::exporter::Exporter;
    use plakar::kloset::importer::Importer;
    use std::io::Read;
    let Some(srv) = ftp_server() else { return };
    let dir = unique_bucket("cut");
    fs::create_dir_all(srv.home.join(&dir)).unwrap();
    fs::write(srv.home.join(&dir).join("a.txt"), "first\n").unwrap();
    // Control connections go through the proxy; data connections go straight to the
    // server, at the proxy's address (127.0.0.1) and the port the server names.
    let proxy = crate::util::proxy::Proxy::start(&srv.endpoint);
    let opts: Options = [("username".to_string(), srv.user.clone()), ("password".to_string(), srv.password.clone())]
        .into_iter()
        .collect();
    let cfg = FtpConfig::parse(&format!("{}/{dir}", proxy.addr), &opts).unwrap();
    let imp = FtpImporter::new(cfg.clone()).unwrap();
    let exp = FtpExporter::new(cfg, true).unwrap();
    let root = imp.root();
    assert_eq!(imp.read_dir(&root).unwrap().len(), 1);
    // Every open connection dies, as when a server drops idle sessions.
    proxy.cut();
    proxy.restore();
    assert_eq!(imp.read_dir(&root).unwrap().len(), 1);
    proxy.cut();
    proxy.restore();
    let mut s = String::new();
    imp.open(&[&root[..], b"/a.txt"].concat()).unwrap().read_to_string(&mut s).unwrap();
    assert_eq!(s, "first\n");
    proxy.cut();
    proxy.restore();
    exp.store_file(b"b.txt", &mut &b"second\n"[..], 7).unwrap();
    assert_eq!(fs::read_to_string(srv.home.join(&dir).join("b.txt")).unwrap(), "second\n");
    // A connection that fails at once, and again on a new one, is an error that names the
    // server.
    proxy.cut();
    let err = imp.read_dir(&root).unwrap_err();
    assert!(err.to_string().contains(&proxy.addr), "{err}");
}

#[test]
fn ftp_importer_and_exporter_conformance() {
    use plakar::connectors::ftp::{FtpConfig, FtpExporter, FtpImporter};
    let Some(srv) = ftp_server() else { return };
    let dir = unique_bucket("io");
    let mut opts = plakar::connectors::options::Options::new();
    opts.insert("username".into(), srv.user.clone());
    opts.insert("password".into(), srv.password.clone());
    let cfg = FtpConfig::parse(&format!("{}/{dir}", srv.endpoint), &opts).unwrap();
    let exp = FtpExporter::new(cfg.clone(), true).unwrap();
    let imp = FtpImporter::new(cfg).unwrap();
    let caps = crate::conformance::Caps { symlinks: false, metadata: true, raw_names: false };
    crate::conformance::io_suite(&exp, &imp, caps);
}
