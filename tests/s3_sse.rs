//! Server-side encryption (issue 18): SSE-C on Garage (which implements it: a wrong or missing
//! key is refused by the server), SSE-S3 and SSE-KMS on moto (which records them and reports
//! them on HeadObject). Each case asks the server itself, through the SDK, what it holds.
use crate::s3_servers::{add, snapshot};
use crate::util::*;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use base64::Engine as _;
use plakar::connectors::options::Options as Section;
use plakar::connectors::s3::{S3Config, S3Store};
use plakar::kloset::store::{Store, StoreErrorKind};
use std::fs;

/// A plain SDK client for `srv`, to look at objects as another S3 client would.
fn sdk(srv: &S3Server) -> (tokio::runtime::Runtime, aws_sdk_s3::Client) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(format!("http://{}", srv.endpoint))
        .credentials_provider(Credentials::new(&srv.access_key, &srv.secret_key, None, None, "test"))
        .force_path_style(true)
        .build();
    (rt, aws_sdk_s3::Client::from_conf(conf))
}

/// Every key in `bucket`, with its size.
fn objects(rt: &tokio::runtime::Runtime, s3: &aws_sdk_s3::Client, bucket: &str) -> Vec<(String, i64)> {
    let mut out = vec![];
    let mut token = None;
    loop {
        let page =
            rt.block_on(s3.list_objects_v2().bucket(bucket).set_continuation_token(token.take()).send()).expect("list");
        out.extend(page.contents().iter().map(|o| (o.key().unwrap().to_string(), o.size().unwrap_or(0))));
        match page.next_continuation_token() {
            Some(t) if page.is_truncated().unwrap_or(false) => token = Some(t.to_string()),
            _ => return out,
        }
    }
}

fn text(out: &std::process::Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

#[test]
fn sse_c_round_trip_on_garage_and_the_server_refuses_reads_without_the_key() {
    let Some(srv) = garage() else { return };
    let env = Env::new();
    let data = env.path("data");
    sample_tree(&data);
    fs::write(data.join("big.bin"), noise(70_000_000, 18)).unwrap();
    let raw: Vec<u8> = noise(32, 1818);
    let b64 = base64::engine::general_purpose::STANDARD.encode(&raw);
    let key_file = env.path("sse.key");
    fs::write(&key_file, format!("{b64}\n")).unwrap();
    let key_opt = format!("sse_customer_key_file={}", key_file.display());
    let bucket = unique_bucket("ssec");
    let loc = format!("s3://{}/{bucket}/kloset", srv.endpoint);
    add(&env, &srv, "store", "s", &loc, &[&key_opt]);
    let secrets = [b64.clone(), hex::encode(&raw)];
    let clean = |out: &std::process::Output| {
        let t = text(out);
        for s in &secrets {
            assert!(!t.contains(s.as_str()), "key material in the output:\n{t}");
        }
        t
    };

    // Backup (a >64 MiB packfile goes by multipart), check, restore.
    env.cmd().args(["at", "@s", "create", "-packfile-mib", "100"]).assert().success();
    // One worker: its data packfile is not split with others (packer.rs `writers`).
    let out = env.cmd().args(["at", "@s", "backup", "-concurrency", "1", data.to_str().unwrap()]).output().unwrap();
    clean(&out);
    assert!(out.status.success(), "{}", text(&out));
    env.cmd().args(["at", "@s", "check"]).assert().success();
    let id = snapshot(&env, "@s");
    let restored = env.path("out");
    env.cmd().args(["at", "@s", "restore", "-to", restored.to_str().unwrap(), &id[..8]]).assert().success();
    assert_same_tree(&data, &restored);

    // Into an SSE-C bucket (the hard link is a server-side copy, with the source's key too),
    // and that bucket backed up again.
    let data_bucket = unique_bucket("ssecdata");
    let data_loc = format!("s3://{}/{data_bucket}", srv.endpoint);
    add(&env, &srv, "destination", "dst", &data_loc, &[&key_opt]);
    add(&env, &srv, "source", "src", &data_loc, &[&key_opt]);
    env.cmd().args(["at", "@s", "restore", "-to", "@dst", &id[..8]]).assert().success();
    env.create();
    env.at(&["backup", "@src"]).assert().success();
    let again = env.path("again");
    env.at(&["restore", "-to", again.to_str().unwrap(), &env.latest()[..8]]).assert().success();
    for f in ["big.bin", "hello.txt", "hardlink", "sub/deeper/big.bin"] {
        assert_eq!(fs::read(again.join(f)).unwrap(), fs::read(data.join(f)).unwrap(), "{f}");
    }

    // The server holds every object encrypted with the key: without it, or with another, it
    // refuses each one, the multipart packfile and the copied hard link included.
    let (rt, s3) = sdk(&srv);
    let mut all = objects(&rt, &s3, &bucket);
    assert!(all.iter().any(|(_, size)| *size > 64 << 20), "no multipart-sized packfile: {all:?}");
    all.extend(objects(&rt, &s3, &data_bucket).into_iter().map(|(k, s)| (format!("//{k}"), s)));
    let md5 = |k: &[u8]| base64::engine::general_purpose::STANDARD.encode(<md5::Md5 as md5::Digest>::digest(k));
    let other = noise(32, 7);
    for (key, _) in &all {
        let (b, key) = match key.strip_prefix("//") {
            Some(k) => (data_bucket.as_str(), k),
            None => (bucket.as_str(), key.as_str()),
        };
        let bare = rt.block_on(s3.get_object().bucket(b).key(key).send());
        assert!(bare.is_err(), "{key} read without the SSE-C key");
        let wrong = rt.block_on(
            s3.get_object()
                .bucket(b)
                .key(key)
                .sse_customer_algorithm("AES256")
                .sse_customer_key(base64::engine::general_purpose::STANDARD.encode(&other))
                .sse_customer_key_md5(md5(&other))
                .send(),
        );
        assert!(wrong.is_err(), "{key} read with another SSE-C key");
        let head = rt
            .block_on(
                s3.head_object()
                    .bucket(b)
                    .key(key)
                    .sse_customer_algorithm("AES256")
                    .sse_customer_key(&b64)
                    .sse_customer_key_md5(md5(&raw))
                    .send(),
            )
            .unwrap_or_else(|e| panic!("{key} not readable with the key: {e:?}"));
        assert_eq!(head.sse_customer_algorithm(), Some("AES256"), "{key}");
    }

    // The store opened directly without the key: refused, as a credentials error naming the options.
    let mut o = Section::new();
    o.insert("access_key".into(), srv.access_key.clone());
    o.insert("secret_access_key".into(), srv.secret_key.clone());
    o.insert("use_tls".into(), "false".into());
    let store = S3Store::new(S3Config::parse(&format!("{}/{bucket}/kloset", srv.endpoint), &o).unwrap()).unwrap();
    let e = store.open().unwrap_err();
    assert_eq!(e.kind, StoreErrorKind::PermissionDenied, "{}", e.message);
    assert!(e.message.contains("sse_customer_key_file"), "{}", e.message);

    // The CLI: no key, a wrong key, from the environment: exit 77 naming the option.
    add(&env, &srv, "store", "nokey", &loc, &[]);
    let out = env.cmd().args(["at", "@nokey", "ls"]).output().unwrap();
    assert_eq!(out.status.code(), Some(77), "{}", text(&out));
    assert!(clean(&out).contains("sse_customer_key_file=PATH or sse_customer_key_env=NAME"), "{}", text(&out));
    add(&env, &srv, "store", "wrong", &loc, &["sse_customer_key_env=PLAKAR_TEST_SSE"]);
    let other_b64 = base64::engine::general_purpose::STANDARD.encode(&other);
    let out = env.cmd().env("PLAKAR_TEST_SSE", &other_b64).args(["at", "@wrong", "ls"]).output().unwrap();
    assert_eq!(out.status.code(), Some(77), "{}", text(&out));
    let t = clean(&out);
    assert!(t.contains("sse_customer_key_env=PLAKAR_TEST_SSE") && !t.contains(&other_b64), "{t}");
    let out = env.cmd().env("PLAKAR_TEST_SSE", &b64).args(["at", "@wrong", "ls"]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    clean(&out);
    let out = env.cmd().args(["at", "@wrong", "ls"]).output().unwrap();
    assert_eq!(out.status.code(), Some(64), "{}", text(&out));
    assert!(text(&out).contains("PLAKAR_TEST_SSE is not set"), "{}", text(&out));
    let elsewhere = env.path("elsewhere");
    let out = env
        .cmd()
        .env("PLAKAR_TEST_SSE", &other_b64)
        .args(["at", "@wrong", "restore", "-to", elsewhere.to_str().unwrap(), &id[..8]])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(77), "{}", text(&out));
    assert!(clean(&out).contains("sse_customer_key_env=PLAKAR_TEST_SSE"), "{}", text(&out));
}

/// A source bucket whose objects are SSE-C encrypted, backed up without the key or with
/// another: the server refuses every object alike, so the backup stops at the first one with
/// exit 77 and a message naming the options, records no snapshot, and reports no file one by
/// one (exit 3 would read as "most of it is saved"). With the key it works; an object written
/// without SSE-C among them is that object's problem (reported, exit 3), since a bucket may
/// hold both.
#[test]
fn an_sse_c_source_read_without_its_key_or_with_another_stops_with_77_naming_the_option() {
    let Some(srv) = garage() else { return };
    let env = Env::new();
    let data = env.path("data");
    sample_tree(&data);
    let raw = noise(32, 2718);
    let b64 = base64::engine::general_purpose::STANDARD.encode(&raw);
    let key_file = env.path("sse.key");
    fs::write(&key_file, &b64).unwrap();
    let key_opt = format!("sse_customer_key_file={}", key_file.display());
    let bucket = unique_bucket("ssecsrc");
    let loc = format!("s3://{}/{bucket}", srv.endpoint);
    // The bucket filled with SSE-C objects: a snapshot restored into it.
    add(&env, &srv, "destination", "dst", &loc, &[&key_opt]);
    env.create();
    let id = env.backup(&data);
    env.at(&["restore", "-to", "@dst", &id[..8]]).assert().success();
    add(&env, &srv, "source", "nokey", &loc, &[]);
    add(&env, &srv, "source", "wrong", &loc, &["sse_customer_key_env=PLAKAR_TEST_SSE"]);
    add(&env, &srv, "source", "right", &loc, &[&key_opt]);
    let other = base64::engine::general_purpose::STANDARD.encode(noise(32, 3));
    let snapshots = || env.stdout(&["ls"]).lines().count();
    let before = snapshots();
    for (name, hint) in [
        ("@nokey", "sse_customer_key_file=PATH or sse_customer_key_env=NAME"),
        ("@wrong", "sse_customer_key_env=PLAKAR_TEST_SSE"),
    ] {
        let out = env.at(&["backup", name]).env("PLAKAR_TEST_SSE", &other).output().unwrap();
        let t = text(&out);
        assert_eq!(out.status.code(), Some(77), "{name}: {t}");
        assert!(t.contains(hint) && !t.contains("KO"), "{name}: {t}");
        assert!(!t.contains(&b64) && !t.contains(&other), "{name}: key material in the output: {t}");
        assert_eq!(snapshots(), before, "{name}: a snapshot was recorded");
    }
    env.at(&["backup", "@right"]).assert().success();
    let again = env.path("again");
    env.at(&["restore", "-to", again.to_str().unwrap(), &env.latest()[..8]]).assert().success();
    assert_eq!(fs::read(again.join("sub/deeper/big.bin")).unwrap(), fs::read(data.join("sub/deeper/big.bin")).unwrap());

    let (rt, s3) = sdk(&srv);
    rt.block_on(s3.put_object().bucket(&bucket).key("plain.txt").body(b"no SSE-C".to_vec().into()).send()).unwrap();
    let out = env.at(&["backup", "@right"]).output().unwrap();
    let t = text(&out);
    assert_eq!(out.status.code(), Some(3), "{t}");
    assert!(t.contains("plain.txt") && t.contains("written without a customer key"), "{t}");
}

#[test]
fn sse_c_key_is_never_a_literal_and_never_shown() {
    let env = Env::new();
    let key = "0123456789abcdef0123456789abcdef";
    env.cmd()
        .args(["store", "add", "s", "s3://127.0.0.1:1/b", "access_key=a", "secret_access_key=b"])
        .assert()
        .success();
    for args in [
        vec!["store", "set", "s", &format!("sse_customer_key={key}")],
        vec!["destination", "add", "d", "s3://127.0.0.1:1/b", &format!("sse_customer_key={key}")],
    ] {
        let out = env.cmd().args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(64), "{}", text(&out));
        let t = text(&out);
        assert!(t.contains("sse_customer_key_file=PATH") && t.contains("sse_customer_key_env=NAME"), "{t}");
        assert!(!t.contains(key), "{t}");
    }
    let out = env.cmd().args(["store", "set", "s", "sse=rot13"]).output().unwrap();
    assert_eq!(out.status.code(), Some(64), "{}", text(&out));
    assert!(text(&out).contains("AES256"), "{}", text(&out));
    // A literal written into the config file by hand: masked when shown, refused when used.
    let cfg = env.path("home/.config/plakar/config.toml");
    let mut toml = fs::read_to_string(&cfg).unwrap();
    toml =
        toml.replace("secret_access_key = \"b\"", &format!("secret_access_key = \"b\"\nsse_customer_key = \"{key}\""));
    fs::write(&cfg, toml).unwrap();
    for args in [vec!["store", "show"], vec!["store", "show", "-json"], vec!["config"]] {
        let out = env.cmd().args(&args).output().unwrap();
        let t = text(&out);
        assert!(out.status.success() && t.contains("sse_customer_key") && !t.contains(key), "{args:?}: {t}");
    }
    let out = env.cmd().args(["at", "@s", "ls"]).output().unwrap();
    assert_eq!(out.status.code(), Some(64), "{}", text(&out));
    assert!(text(&out).contains("sse_customer_key_file") && !text(&out).contains(key), "{}", text(&out));
}

#[test]
fn sse_s3_and_kms_are_reported_by_head_object_on_every_object_moto() {
    let Some(srv) = moto() else { return };
    let env = Env::new();
    let data = env.path("data");
    sample_tree(&data);
    fs::write(data.join("big.bin"), noise(70_000_000, 19)).unwrap();
    let bucket = unique_bucket("sses3");
    add(&env, &srv, "store", "s", &format!("s3://{}/{bucket}", srv.endpoint), &["sse=AES256"]);
    env.cmd().args(["at", "@s", "create", "-packfile-mib", "100"]).assert().success();
    // One worker: its data packfile is not split with others (packer.rs `writers`).
    env.cmd().args(["at", "@s", "backup", "-concurrency", "1", data.to_str().unwrap()]).assert().success();
    env.cmd().args(["at", "@s", "check"]).assert().success();
    let id = snapshot(&env, "@s");
    let kms_bucket = unique_bucket("ssekms");
    let kms = "arn:aws:kms:us-east-1:123456789012:key/plakar-test";
    add(
        &env,
        &srv,
        "destination",
        "dst",
        &format!("s3://{}/{kms_bucket}", srv.endpoint),
        &["sse=aws:kms", &format!("sse_kms_key_id={kms}")],
    );
    env.cmd().args(["at", "@s", "restore", "-to", "@dst", &id[..8]]).assert().success();

    let (rt, s3) = sdk(&srv);
    let head = |b: &str, k: &str| rt.block_on(s3.head_object().bucket(b).key(k).send()).unwrap();
    let stored = objects(&rt, &s3, &bucket);
    assert!(stored.iter().any(|(_, size)| *size > 64 << 20), "no multipart-sized packfile: {stored:?}");
    assert!(stored.iter().any(|(k, _)| k == "CONFIG") && stored.iter().any(|(k, _)| k.starts_with("states/")));
    for (k, _) in &stored {
        let h = head(&bucket, k);
        assert_eq!(h.server_side_encryption().map(|e| e.as_str()), Some("AES256"), "{k}");
    }
    let restored = objects(&rt, &s3, &kms_bucket);
    assert!(restored.iter().any(|(k, size)| k == "big.bin" && *size == 70_000_000), "{restored:?}");
    assert!(restored.iter().any(|(k, _)| k == "hardlink"), "{restored:?}");
    for (k, _) in &restored {
        let h = head(&kms_bucket, k);
        assert_eq!(h.server_side_encryption().map(|e| e.as_str()), Some("aws:kms"), "{k}");
        assert!(h.ssekms_key_id().is_some_and(|id| id.contains("plakar-test")), "{k}: {:?}", h.ssekms_key_id());
    }
}
