//! Against a real sshd (OpenSSH, started by scripts/sftp-server.sh).
use crate::util::*;
use plakar::connectors::options::Options;
use plakar::connectors::sftp::{SftpConfig, SftpStore};
use predicates::prelude::*;
use std::fs;

fn add(env: &Env, kind: &str, name: &str, location: &str, opts: &[String]) {
    env.cmd().args([kind, "add", name, location]).args(opts).assert().success();
}

fn snapshot_id(env: &Env, store: &str) -> String {
    let ls = env.cmd().args(["at", store, "ls", "-uuid"]).output().unwrap();
    String::from_utf8(ls.stdout).unwrap().lines().next().unwrap().split_whitespace().nth(1).unwrap().to_string()
}

/// A store in a new directory of the server, logged in with the test key.
fn store_at(srv: &SftpServer, tag: &str) -> (SftpStore, std::path::PathBuf) {
    let (url, dir) = srv.url(tag);
    let opts: Options =
        srv.key_opts().iter().map(|kv| kv.split_once('=').unwrap()).map(|(k, v)| (k.into(), v.into())).collect();
    (SftpStore::new(SftpConfig::parse(url.strip_prefix("sftp://").unwrap(), &opts).unwrap()).unwrap(), dir)
}

#[test]
fn sftp_store_conformance() {
    let Some(srv) = sftp_server() else {
        return;
    };
    let (store, _) = store_at(&srv, "conf");
    crate::conformance::suite(&store);
}

#[test]
fn sftp_importer_and_exporter_conformance() {
    use plakar::connectors::sftp::{SftpExporter, SftpImporter};
    let Some(srv) = sftp_server() else {
        return;
    };
    let (url, _) = srv.url("io");
    let opts: Options =
        srv.key_opts().iter().map(|kv| kv.split_once('=').unwrap()).map(|(k, v)| (k.into(), v.into())).collect();
    let cfg = SftpConfig::parse(url.strip_prefix("sftp://").unwrap(), &opts).unwrap();
    let exp = SftpExporter::new(cfg.clone()).unwrap();
    let imp = SftpImporter::new(cfg).unwrap();
    let caps = crate::conformance::Caps { symlinks: true, metadata: true, raw_names: true };
    crate::conformance::io_suite(&exp, &imp, caps);
}

#[test]
fn backup_to_sftp_restore_into_sftp_and_back_up_from_sftp() {
    let Some(srv) = sftp_server() else {
        return;
    };
    let env = Env::new();
    let data = env.path("data");
    sample_tree(&data);
    let (store_url, _) = srv.url("store");
    let (files_url, files_dir) = srv.url("files");
    add(&env, "store", "sf", &store_url, &srv.key_opts());
    add(&env, "destination", "dst", &files_url, &srv.key_opts());
    add(&env, "source", "src", &files_url, &srv.key_opts());
    env.cmd().args(["at", "@sf", "create"]).assert().success();
    env.cmd().args(["at", "@sf", "create"]).assert().code(73).stderr(predicate::str::contains("already"));
    env.cmd().args(["at", "@sf", "backup", data.to_str().unwrap()]).assert().success();
    env.cmd().args(["at", "@sf", "check"]).assert().success();
    let id = snapshot_id(&env, "@sf");
    let out = env.path("out");
    env.cmd().args(["at", "@sf", "restore", "-to", out.to_str().unwrap(), &id]).assert().success();
    assert_same_tree(&data, &out);

    // Into a directory on the server, then that directory backed up into a local store.
    env.cmd().args(["at", "@sf", "restore", "-to", "@dst", &id]).assert().success();
    assert_same_tree_but_link_mtimes(&data, &files_dir);
    env.create();
    env.at(&["backup", "@src"]).assert().success();
    let id2 = env.latest();
    let out2 = env.path("out2");
    env.at(&["restore", "-to", out2.to_str().unwrap(), &id2[..8]]).assert().success();
    assert_same_tree_but_link_mtimes(&data, &out2);
    let info = env.stdout(&["info", &id2[..8]]);
    assert!(info.contains("Type: sftp"), "{info}");
    // An unchanged second backup from SFTP reuses what it has.
    env.at(&["backup", "@src"]).assert().success();
    env.at(&["check"]).assert().success();
}

#[test]
fn password_login_wrong_password_and_permission_denied() {
    let Some(srv) = sftp_server() else {
        return;
    };
    let env = Env::new();
    let data = env.path("data");
    sample_tree(&data);
    let dir = srv.pw_root.join(format!("store-{:x}", rand_u64()));
    let url = format!("sftp://127.0.0.1:{}{}", srv.port, dir.display());
    let known = format!("known_hosts={}", srv.known_hosts);
    let user = format!("username={}", srv.pw_user);
    add(&env, "store", "pw", &url, &[user.clone(), format!("password={}", srv.pw), known.clone()]);
    env.cmd().args(["at", "@pw", "create"]).assert().success();
    env.cmd().args(["at", "@pw", "backup", data.to_str().unwrap()]).assert().success();
    env.cmd().args(["at", "@pw", "check"]).assert().success();
    // The password is masked in the config listing.
    env.cmd().args(["store", "show", "pw"]).assert().success().stdout(predicate::str::contains(&srv.pw).not());

    add(&env, "store", "badpw", &url, &[user.clone(), "password=not-the-password".into(), known.clone()]);
    env.cmd().args(["at", "@badpw", "ls"]).assert().code(77).stderr(
        predicate::str::contains("authentication as plakartest")
            .and(predicate::str::contains("not-the-password").not()),
    );

    // The password user may not write into the key user's directory.
    let denied = format!("sftp://127.0.0.1:{}{}/denied-{:x}", srv.port, srv.root.display(), rand_u64());
    add(&env, "store", "denied", &denied, &[user, format!("password={}", srv.pw), known]);
    env.cmd()
        .args(["at", "@denied", "create"])
        .assert()
        .code(77)
        .stderr(predicate::str::contains("denied").and(predicate::str::contains("may not")));
}

#[test]
fn unknown_or_changed_host_key_and_unreachable_server() {
    let Some(srv) = sftp_server() else {
        return;
    };
    let env = Env::new();
    let (url, _) = srv.url("hostkey");
    let id = format!("identity={}", srv.identity);
    // The test HOME has no known_hosts: the key is refused, and the message says how to trust it.
    add(&env, "store", "unknown", &url, std::slice::from_ref(&id));
    env.cmd().args(["at", "@unknown", "create"]).assert().code(77).stderr(
        predicate::str::contains("not trusted")
            .and(predicate::str::contains(format!("ssh-keyscan -p {} 127.0.0.1", srv.port)))
            .and(predicate::str::contains("SHA256:")),
    );
    add(&env, "store", "trusting", &url, &[id.clone(), "insecure_ignore_host_key=true".into()]);
    env.cmd().args(["at", "@trusting", "create"]).assert().success();
    // A known_hosts that names another key for this host.
    let wrong = env.path("wrong_known_hosts");
    let other_key = fs::read_to_string(format!("{}.pub", srv.identity)).unwrap();
    let other_key: Vec<&str> = other_key.split_whitespace().take(2).collect();
    fs::write(&wrong, format!("[127.0.0.1]:{} {}\n", srv.port, other_key.join(" "))).unwrap();
    add(&env, "store", "changed", &url, &[id.clone(), format!("known_hosts={}", wrong.display())]);
    env.cmd().args(["at", "@changed", "ls"]).assert().code(77).stderr(predicate::str::contains("does not match"));
    // Nothing listens on port 1.
    add(&env, "store", "down", "sftp://127.0.0.1:1/x", std::slice::from_ref(&id));
    env.cmd().args(["at", "@down", "ls"]).assert().code(66).stderr(predicate::str::contains("127.0.0.1:1"));
    // A missing source directory on the server.
    let (missing, _) = srv.url("missing");
    add(&env, "source", "gone", &missing, &srv.key_opts());
    env.create();
    env.at(&["backup", "@gone"]).assert().code(67);
}

#[test]
fn server_disk_full_mid_backup_keeps_the_store_valid() {
    let Some(srv) = sftp_server() else {
        return;
    };
    let env = Env::new();
    let (url, dir) = srv.url("full");
    let _disk = SmallDisk::mount(&dir, "6m");
    add(&env, "store", "full", &url, &srv.key_opts());
    env.cmd().args(["at", "@full", "create"]).assert().success();
    let small = env.path("small");
    fs::create_dir_all(&small).unwrap();
    fs::write(small.join("a.bin"), noise(1_000_000, 1)).unwrap();
    env.cmd().args(["at", "@full", "backup", small.to_str().unwrap()]).assert().success();
    let big = env.path("big");
    fs::create_dir_all(&big).unwrap();
    fs::write(big.join("b.bin"), noise(12_000_000, 2)).unwrap();
    env.cmd()
        .args(["at", "@full", "backup", big.to_str().unwrap()])
        .assert()
        .code(74)
        .stderr(predicate::str::contains("no space left on the SFTP server"));
    // What was there is intact, and nothing half-written is left behind.
    env.cmd().args(["at", "@full", "check"]).assert().success();
    let leftovers: Vec<_> = walk(&dir).into_iter().filter(|p| p.to_string_lossy().contains(".tmp-")).collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let out = env.path("out");
    let id = snapshot_id(&env, "@full");
    env.cmd().args(["at", "@full", "restore", "-to", out.to_str().unwrap(), &id]).assert().success();
    assert_same_tree(&small, &out);
}

/// A CONFIG replace cut between its two renames leaves only CONFIG.prev (which `open`
/// reads); the next replace (a `passwd` run again) used to delete CONFIG.prev first and
/// leave no CONFIG at all. Found by the adversarial review of key slots.
#[test]
fn a_config_replace_cut_half_way_is_put_back_by_the_next() {
    let Some(srv) = sftp_server() else {
        return;
    };
    let (store, dir) = store_at(&srv, "cut");
    use plakar::kloset::store::Store;
    store.create(b"first").unwrap();
    // Killed after CONFIG stepped aside, before CONFIG.next took its place.
    fs::write(dir.join("CONFIG.next"), b"second").unwrap();
    fs::rename(dir.join("CONFIG"), dir.join("CONFIG.prev")).unwrap();
    assert_eq!(store.open().unwrap(), b"first");
    store.replace_config(b"third").unwrap();
    assert_eq!(store.open().unwrap(), b"third");
    assert!(!dir.join("CONFIG.prev").exists() && !dir.join("CONFIG.next").exists());
}

#[test]
fn a_ranged_read_fetches_the_range_not_four_times_it() {
    // libssh2 asks for four times the buffer it is given ahead of each read, and a close
    // waits for all of it: ranged reads of a packfile fetched up to 4x what a restore
    // needed (1,480 MiB over the wire for a 261 MiB store). Counted here at a TCP proxy
    // between plakar and sshd.
    use plakar::kloset::store::{Resource, Store};
    let Some(srv) = sftp_server() else {
        return;
    };
    let proxy = crate::util::proxy::Proxy::start(&format!("127.0.0.1:{}", srv.port));
    let (url, _) = srv.url("range");
    let url = url.replace(&format!(":{}/", srv.port), &format!(":{}/", proxy.addr.rsplit(':').next().unwrap()));
    let mut opts: Options =
        srv.key_opts().iter().map(|kv| kv.split_once('=').unwrap()).map(|(k, v)| (k.into(), v.into())).collect();
    // The proxy's port is not in known_hosts.
    opts.insert("insecure_ignore_host_key".into(), "true".into());
    let store = SftpStore::new(SftpConfig::parse(url.strip_prefix("sftp://").unwrap(), &opts).unwrap()).unwrap();
    store.create(b"config").unwrap();
    let pack = noise(8 << 20, 7);
    store.put(Resource::Packfile, &[7; 32], &pack).unwrap();
    let before = proxy.received();
    let mut wanted = 0u64;
    for (n, len) in [1u64, 1000, 30_000, 65_536, 100_000, 1 << 20, 3 << 20].into_iter().enumerate() {
        let off = 12_345 + n as u64 * 611_953;
        let got = store.get(Resource::Packfile, &[7; 32], Some((off, len))).unwrap();
        assert_eq!(got, pack[off as usize..(off + len) as usize], "{len} bytes at {off}");
        wanted += len;
    }
    let whole = store.get(Resource::Packfile, &[7; 32], None).unwrap();
    assert!(whole == pack);
    wanted += pack.len() as u64;
    let fetched = proxy.received() - before;
    // SFTP and SSH framing and the open/close replies add a little to each read.
    assert!(fetched < wanted + wanted / 10 + 100_000, "fetched {fetched} bytes for {wanted}");
}
