//! Credentials from the standard chain (issue 18) when no access key is configured: a named
//! profile of ~/.aws/credentials and `credential_process` on Garage, cached while valid and
//! asked again when they expire in the middle of a command (the new ones then used: the old
//! key is revoked on the server); web identity exchanged at moto's STS (`sts_endpoint`),
//! whose credentials are the only ones moto takes.
use crate::s3_servers::snapshot;
use crate::util::proxy::Proxy;
use crate::util::*;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

fn text(out: &std::process::Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// @s on Garage with no keys, only `extra` options.
fn add_keyless(env: &Env, srv: &S3Server, extra: &[&str]) -> String {
    let bucket = unique_bucket("chain");
    env.cmd()
        .args(["store", "add", "s", &format!("s3://{}/{bucket}", srv.endpoint), "use_tls=false"])
        .args(extra)
        .assert()
        .success();
    bucket
}

#[test]
fn a_named_profile_of_the_shared_credentials_file_is_used_and_explicit_keys_still_win() {
    let Some(srv) = garage() else { return };
    let env = Env::new();
    let data = env.path("data");
    sample_tree(&data);
    fs::create_dir_all(env.path("home/.aws")).unwrap();
    fs::write(
        env.path("home/.aws/credentials"),
        format!(
            "[default]\naws_access_key_id = GKwrongwrongwrong\naws_secret_access_key = wrong-secret-0123456789\n\n\
             [plakar-test]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            srv.access_key, srv.secret_key
        ),
    )
    .unwrap();
    add_keyless(&env, &srv, &["profile=plakar-test"]);
    // The profile wins over credentials in the environment: the option names it.
    let with_env = |c: &mut assert_cmd::Command| {
        c.env("AWS_ACCESS_KEY_ID", "GKfromtheenvironment").env("AWS_SECRET_ACCESS_KEY", "env-secret-0123456789");
    };
    let mut c = env.cmd();
    with_env(&mut c);
    c.args(["at", "@s", "create"]).assert().success();
    env.cmd().args(["at", "@s", "backup", data.to_str().unwrap()]).assert().success();
    env.cmd().args(["at", "@s", "check"]).assert().success();
    let out = env.path("out");
    env.cmd()
        .args(["at", "@s", "restore", "-to", out.to_str().unwrap(), &snapshot(&env, "@s")[..8]])
        .assert()
        .success();
    assert_same_tree(&data, &out);
    // Without the option, the chain takes [default], whose keys Garage refuses: exit 77.
    env.cmd().args(["store", "unset", "s", "profile"]).assert().success();
    let o = env.cmd().args(["at", "@s", "ls"]).output().unwrap();
    assert_eq!(o.status.code(), Some(77), "{}", text(&o));
    // Explicit keys win over the (wrong) default profile.
    env.cmd()
        .args(["store", "set", "s"])
        .arg(format!("access_key={}", srv.access_key))
        .arg(format!("secret_access_key={}", srv.secret_key))
        .assert()
        .success();
    env.cmd().args(["at", "@s", "ls"]).assert().success();
}

/// A credential_process that counts its calls and hands out credentials expiring `ttl`
/// seconds from now.
fn credential_process(env: &Env, srv: &S3Server, ttl: u64) -> std::path::PathBuf {
    let count = env.path("calls");
    let script = env.path("creds.sh");
    fs::write(
        &script,
        format!(
            "#!/bin/sh\necho x >> {count}\nexp=$(date -u -d @$(( $(date +%s) + {ttl} )) +%Y-%m-%dT%H:%M:%SZ)\n\
             printf '{{\"Version\": 1, \"AccessKeyId\": \"{}\", \"SecretAccessKey\": \"{}\", \"SessionToken\": \"t\", \"Expiration\": \"%s\"}}' \"$exp\"\n",
            srv.access_key,
            srv.secret_key,
            count = count.display()
        ),
    )
    .unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    fs::create_dir_all(env.path("home/.aws")).unwrap();
    fs::write(env.path("home/.aws/config"), format!("[profile proc]\ncredential_process = {}\n", script.display()))
        .unwrap();
    count
}

fn calls(count: &std::path::Path) -> usize {
    fs::read_to_string(count).unwrap_or_default().lines().count()
}

#[test]
fn credential_process_credentials_are_cached_one_call_per_process_while_valid() {
    let Some(srv) = garage() else { return };
    let env = Env::new();
    let data = env.path("data");
    sample_tree(&data);
    for i in 0..40 {
        fs::write(data.join(format!("f{i}")), noise(300_000, i)).unwrap();
    }
    // Valid for an hour: one call for a whole backup of many requests (the cache is in front).
    let count = credential_process(&env, &srv, 3600);
    add_keyless(&env, &srv, &["profile=proc"]);
    env.cmd().args(["at", "@s", "create", "-packfile-mib", "1"]).assert().success();
    assert_eq!(calls(&count), 1);
    env.cmd().args(["at", "@s", "backup", data.to_str().unwrap()]).assert().success();
    assert_eq!(calls(&count), 2, "one call per process while the credentials are valid");
    env.cmd().args(["at", "@s", "check"]).assert().success();
}

/// The key a credential_process handed out at each call, in order ("A" or "B").
fn handed_out(log: &std::path::Path) -> Vec<String> {
    fs::read_to_string(log).unwrap_or_default().lines().map(str::to_string).collect()
}

/// Temporary credentials that expire in the middle of one command are asked for again, and
/// the new ones are used. A credential_process hands out key A valid for 20 s once, then key
/// B; the backup is slowed (a throttling proxy) to outlive A. The SDK's identity cache takes
/// credentials for expired 10 s (plus up to 5 s of jitter) before they are, so the process is
/// asked again 10 to 15 s in. Then A is deleted on Garage: from there on, only requests
/// signed with B can pass, and the proxy sees which key signed each one.
#[test]
fn credentials_expiring_during_a_backup_are_asked_for_again_and_the_new_ones_used() {
    let Some(srv) = garage() else { return };
    let env = Env::new();
    let bucket = unique_bucket("refresh");
    let key = |name: &str| {
        let out = script("s3-server.sh", &["key", &bucket, &format!("{bucket}-{name}")]);
        let (id, secret) = out.trim().split_once(' ').expect("ID SECRET");
        (id.to_string(), secret.to_string())
    };
    let ((a_id, a_secret), (b_id, b_secret)) = (key("a"), key("b"));
    let (log, first) = (env.path("handed-out"), env.path("first"));
    let process = env.path("creds.sh");
    fs::write(
        &process,
        format!(
            "#!/bin/sh\nif [ -e {first} ]; then rm -f {first}; k=A id={a_id} s={a_secret} ttl=20; \
             else k=B id={b_id} s={b_secret} ttl=3600; fi\necho $k >> {log}\n\
             exp=$(date -u -d @$(( $(date +%s) + ttl )) +%Y-%m-%dT%H:%M:%SZ)\n\
             printf '{{\"Version\": 1, \"AccessKeyId\": \"%s\", \"SecretAccessKey\": \"%s\", \"Expiration\": \"%s\"}}' \
             \"$id\" \"$s\" \"$exp\"\n",
            first = first.display(),
            log = log.display()
        ),
    )
    .unwrap();
    fs::set_permissions(&process, fs::Permissions::from_mode(0o755)).unwrap();
    fs::create_dir_all(env.path("home/.aws")).unwrap();
    fs::write(env.path("home/.aws/config"), format!("[profile proc]\ncredential_process = {}\n", process.display()))
        .unwrap();
    let proxy = Proxy::start(&srv.endpoint);
    let loc = format!("s3://{}/{bucket}", proxy.addr);
    env.cmd().args(["store", "add", "s", &loc, "use_tls=false", "profile=proc"]).assert().success();
    env.cmd().args(["at", "@s", "create", "-packfile-mib", "1"]).assert().success();
    assert_eq!(handed_out(&log), ["B"]);

    // 16 MiB at 512 KiB/s: about 32 s, twice what A lasts.
    let data = env.path("data");
    fs::create_dir_all(&data).unwrap();
    for i in 0..16 {
        fs::write(data.join(format!("f{i:02}")), noise(1 << 20, 100 + i)).unwrap();
    }
    fs::write(&first, "").unwrap();
    proxy.throttle(512 << 10);
    let started = Instant::now();
    let mut child = env
        .spawn_cmd()
        .args(["at", "@s", "backup", data.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let asked_again = loop {
        if handed_out(&log).len() >= 3 {
            break Instant::now();
        }
        if child.try_wait().unwrap().is_some() || started.elapsed() > Duration::from_secs(80) {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "the credential process was not asked again during the backup ({:?} after {:?}): {}",
                handed_out(&log),
                started.elapsed(),
                text(&out)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(handed_out(&log), ["B", "A", "B"]);
    // Requests signed with A just before may still be on their way: let them land first.
    std::thread::sleep(Duration::from_secs(2));
    assert!(child.try_wait().unwrap().is_none(), "the backup ended too soon to show which key it uses now");
    let revoked = Instant::now();
    script("s3-server.sh", &["delete-key", &a_id]);
    let out = child.wait_with_output().unwrap();
    let t = text(&out);
    assert!(out.status.success(), "the backup failed after A was revoked: {t}");
    for secret in [&a_secret, &b_secret] {
        assert!(!t.contains(secret.as_str()), "a secret in the output: {t}");
    }
    assert_eq!(handed_out(&log), ["B", "A", "B"], "asked once more, not at every request");
    let signers = proxy.signers();
    // (Around the switch, requests signed with A and with B may cross: only the time after the
    // revocation is strict.)
    let during: Vec<&str> = signers.iter().filter(|(at, _)| *at > started).map(|(_, k)| k.as_str()).collect();
    assert!(during.contains(&a_id.as_str()), "A was used first: {during:?}");
    let after: Vec<&str> = signers.iter().filter(|(at, _)| *at > revoked).map(|(_, k)| k.as_str()).collect();
    assert!(after.len() >= 3 && after.iter().all(|k| *k == b_id), "only B once A was revoked: {after:?}");
    eprintln!(
        "asked again {:?} into the backup; it took {:?}; {} requests after A was revoked",
        asked_again - started,
        started.elapsed(),
        after.len()
    );

    // A is refused now; the snapshot is whole.
    proxy.throttle(0);
    env.cmd()
        .args(["store", "add", "a", &loc, "use_tls=false"])
        .arg(format!("access_key={a_id}"))
        .arg(format!("secret_access_key={a_secret}"))
        .assert()
        .success();
    let o = env.cmd().args(["at", "@a", "ls"]).output().unwrap();
    assert_eq!(o.status.code(), Some(77), "{}", text(&o));
    env.cmd().args(["at", "@s", "check"]).assert().success();
    let restored = env.path("out");
    env.cmd()
        .args(["at", "@s", "restore", "-to", restored.to_str().unwrap(), &snapshot(&env, "@s")[..8]])
        .assert()
        .success();
    assert_same_tree(&data, &restored);
}

/// A request over plain HTTP/1.1 to moto's own API; the reply's body.
fn moto_api(endpoint: &str, method: &str, path: &str, body: &str) -> String {
    let mut c = std::net::TcpStream::connect(endpoint).unwrap();
    write!(
        c,
        "{method} {path} HTTP/1.1\r\nHost: {endpoint}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut reply = String::new();
    c.read_to_string(&mut reply).unwrap();
    assert!(reply.starts_with("HTTP/1.1 200"), "{method} {path}: {reply}");
    reply.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default()
}

/// Web identity through moto's STS, as for MinIO with single sign-on: with `sts_endpoint`,
/// the token in AWS_WEB_IDENTITY_TOKEN_FILE is exchanged (AssumeRoleWithWebIdentity) for
/// AWS_ROLE_ARN's temporary credentials. moto enforces IAM, so its S3 takes requests only
/// signed with a key it issued, within its policy: the role's. moto's own state lists each
/// exchange, and a proxy sees every S3 request signed with a key the exchange returned. A
/// role without S3 rights is refused (exit 77). Neither the token nor the credentials it
/// bought appear in any output.
#[test]
fn web_identity_through_sts_endpoint_backs_up_with_the_role_credentials_moto() {
    let Some(srv) = moto_sts() else { return };
    let env = Env::new();
    let tag = format!("{:x}", rand_u64());
    let role = script("moto-server.sh", &["sts-role", &format!("plakar-{tag}"), "s3:*"]).trim().to_string();
    let no_s3 = script("moto-server.sh", &["sts-role", &format!("plakar-{tag}-no-s3"), "sts:GetCallerIdentity"])
        .trim()
        .to_string();
    // moto's STS answers the unsigned AssumeRoleWithWebIdentity only while it lets unsigned
    // requests in: the proxy in front of it lets one in per connection, and nothing else
    // reaches this instance meanwhile.
    let ep = srv.endpoint.clone();
    let sts = Proxy::start_with(&srv.endpoint, move || {
        moto_api(&ep, "POST", "/moto-api/reset-auth", "1");
    });
    let s3 = Proxy::start(&srv.endpoint);
    let token = format!("eyJhbGciOiJSUzI1NiJ9.plakar-test-{tag}.c2lnbmF0dXJl");
    fs::write(env.path("token"), &token).unwrap();
    let session = format!("plakar-test-{tag}");
    let cmd = |arn: &str| {
        let mut c = env.cmd();
        c.env("AWS_WEB_IDENTITY_TOKEN_FILE", env.path("token"))
            .env("AWS_ROLE_ARN", arn)
            .env("AWS_ROLE_SESSION_NAME", &session);
        c
    };
    let bucket = unique_bucket("webid");
    cmd(&role)
        .args(["store", "add", "s", &format!("s3://{}/{bucket}", s3.addr), "use_tls=false"])
        .arg(format!("sts_endpoint=http://{}", sts.addr))
        .assert()
        .success();
    let data = env.path("data");
    sample_tree(&data);
    let restored = env.path("out");
    let mut outputs = vec![];
    let mut run = |arn: &str, args: &[&str]| {
        let out = cmd(arn).args(["at", "@s"]).args(args).output().unwrap();
        outputs.push(text(&out));
        out
    };
    for args in [vec!["create"], vec!["backup", data.to_str().unwrap()], vec!["check"]] {
        let out = run(&role, &args);
        assert!(out.status.success(), "{args:?}: {}", text(&out));
    }
    let ls = run(&role, &["ls", "-uuid"]);
    let id = String::from_utf8(ls.stdout).unwrap().split_whitespace().nth(1).expect("a snapshot").to_string();
    let out = run(&role, &["restore", "-to", restored.to_str().unwrap(), &id[..8]]);
    assert!(out.status.success(), "{}", text(&out));
    assert_same_tree(&data, &restored);
    let out = run(&no_s3, &["ls"]);
    assert_eq!(out.status.code(), Some(77), "{}", text(&out));

    // moto's record of the exchanges: one per command, each for the role asked, by this
    // session name.
    let state: serde_json::Value =
        serde_json::from_str(&moto_api(&srv.endpoint, "GET", "/moto-api/data.json", "")).unwrap();
    let assumed: Vec<&serde_json::Value> = state["sts"]["AssumedRole"]
        .as_array()
        .expect("moto's STS state")
        .iter()
        .filter(|r| r["session_name"] == session.as_str())
        .collect();
    let for_role = |arn: &str| assumed.iter().filter(|r| r["role_arn"] == arn).count();
    assert_eq!((for_role(&role), for_role(&no_s3)), (5, 1), "{assumed:?}");
    let keys: Vec<&str> = assumed.iter().map(|r| r["access_key_id"].as_str().unwrap()).collect();
    let signers = s3.signers();
    assert!(!signers.is_empty() && signers.iter().all(|(_, k)| keys.contains(&k.as_str())), "{signers:?} vs {keys:?}");
    let mut secrets = vec![token.clone(), srv.secret_key.clone()];
    for r in &assumed {
        secrets.extend(["secret_access_key", "session_token"].map(|f| r[f].as_str().unwrap().to_string()));
    }
    for out in &outputs {
        for secret in &secrets {
            assert!(!out.contains(secret.as_str()), "a secret in the output: {out}");
        }
    }

    // Without the token's variables, sts_endpoint says what it needs.
    let out = env.cmd().args(["at", "@s", "ls"]).output().unwrap();
    assert_eq!(out.status.code(), Some(64), "{}", text(&out));
    assert!(text(&out).contains("AWS_WEB_IDENTITY_TOKEN_FILE"), "{}", text(&out));
}
