//! S3 over TLS with a private CA: the Garage of scripts/s3-server.sh behind the stunnel
//! front of scripts/s3-tls.sh, whose certificate a throw-away CA signed.
use crate::util::*;
use predicates::prelude::*;
use std::fs;

/// Adds @NAME of `kind` at `loc` on the TLS front (use_tls left at its default, true).
fn add(env: &Env, kind: &str, name: &str, loc: &str, extra: &[String]) {
    let (_, ak, sk) = s3_server().expect("checked by the caller");
    env.cmd()
        .args([kind, "add", name, loc, &format!("access_key={ak}"), &format!("secret_access_key={sk}")])
        .args(extra)
        .assert()
        .success();
}

fn id_of_latest(env: &Env, store: &str) -> String {
    let ls = env.cmd().args(["at", store, "ls"]).output().unwrap();
    String::from_utf8(ls.stdout).unwrap().split_whitespace().nth(1).expect("a snapshot").to_string()
}

#[test]
fn tls_ca_file_trusts_a_private_ca_for_store_source_and_destination() {
    let (Some(tls), Some(_)) = (s3_tls(), s3_server()) else { return };
    let env = Env::new();
    let data = env.path("data");
    sample_tree(&data);
    let ca = vec![format!("tls_ca_file={}", tls.ca)];
    let bucket = unique_bucket("tlsca");
    add(&env, "store", "s", &format!("s3://{}/{bucket}/kloset", tls.endpoint), &ca);
    add(&env, "destination", "dst", &format!("s3://{}/{bucket}/restored", tls.endpoint), &ca);
    add(&env, "source", "src", &format!("s3://{}/{bucket}/restored", tls.endpoint), &ca);
    env.cmd().args(["at", "@s", "create"]).assert().success();
    env.cmd().args(["at", "@s", "backup", data.to_str().unwrap()]).assert().success();
    env.cmd().args(["at", "@s", "check"]).assert().success();
    let id = id_of_latest(&env, "@s");
    let out = env.path("out");
    env.cmd().args(["at", "@s", "restore", "-to", out.to_str().unwrap(), &id]).assert().success();
    assert_same_tree(&data, &out);
    // Into a bucket and back, over the same TLS front.
    env.cmd().args(["at", "@s", "restore", "-to", "@dst", &id]).assert().success();
    env.cmd().args(["at", "@s", "backup", "@src"]).assert().success();
    let out2 = env.path("out2");
    env.cmd()
        .args(["at", "@s", "restore", "-to", out2.to_str().unwrap(), &id_of_latest(&env, "@s")])
        .assert()
        .success();
    assert_eq!(fs::read(out2.join("sub/deeper/big.bin")).unwrap(), fs::read(data.join("sub/deeper/big.bin")).unwrap());
}

#[test]
fn ssl_cert_file_is_honoured() {
    let (Some(tls), Some(_)) = (s3_tls(), s3_server()) else { return };
    let env = Env::new();
    let data = env.path("data");
    sample_tree(&data);
    add(&env, "store", "s", &format!("s3://{}/{}", tls.endpoint, unique_bucket("sslcert")), &[]);
    env.cmd().env("SSL_CERT_FILE", &tls.ca).args(["at", "@s", "create"]).assert().success();
    env.cmd().env("SSL_CERT_FILE", &tls.ca).args(["at", "@s", "backup", data.to_str().unwrap()]).assert().success();
    let out = env.path("out");
    let id = {
        let ls = env.cmd().env("SSL_CERT_FILE", &tls.ca).args(["at", "@s", "ls"]).output().unwrap();
        String::from_utf8(ls.stdout).unwrap().split_whitespace().nth(1).expect("a snapshot").to_string()
    };
    env.cmd()
        .env("SSL_CERT_FILE", &tls.ca)
        .args(["at", "@s", "restore", "-to", out.to_str().unwrap(), &id])
        .assert()
        .success();
    assert_same_tree(&data, &out);
    // A variable naming a file that is not there is an error of its own, not a TLS failure.
    env.cmd()
        .env("SSL_CERT_FILE", env.path("nope.pem"))
        .args(["at", "@s", "ls"])
        .assert()
        .code(64)
        .stderr(predicate::str::contains("SSL_CERT_FILE").and(predicate::str::contains("nope.pem")));
}

#[test]
fn an_untrusted_certificate_is_refused_with_the_options_that_fix_it() {
    let (Some(tls), Some(_)) = (s3_tls(), s3_server()) else { return };
    let env = Env::new();
    let loc = format!("s3://{}/{}", tls.endpoint, unique_bucket("untrusted"));
    add(&env, "store", "plain", &loc, &[]);
    add(&env, "store", "wrongca", &loc, &[format!("tls_ca_file={}", tls.other_ca)]);
    for name in ["@plain", "@wrongca"] {
        let started = std::time::Instant::now();
        env.cmd().args(["at", name, "create"]).assert().code(77).stderr(
            predicate::str::contains(format!("certificate of {} is not trusted", tls.endpoint))
                .and(predicate::str::contains("tls_ca_file"))
                .and(predicate::str::contains("SSL_CERT_FILE"))
                .and(predicate::str::contains("tls_insecure_no_verify")),
        );
        // At once: a certificate that does not verify is not retried with backoff.
        assert!(started.elapsed().as_secs() < 4, "{name}: took {:?}", started.elapsed());
    }
    // A CA file that cannot be used is named, with its own exit code.
    add(&env, "store", "missing", &loc, &[format!("tls_ca_file={}", env.path("missing.pem").display())]);
    env.cmd()
        .args(["at", "@missing", "ls"])
        .assert()
        .code(64)
        .stderr(predicate::str::contains("tls_ca_file").and(predicate::str::contains("missing.pem")));
}

#[test]
fn tls_insecure_no_verify_connects_and_warns() {
    let (Some(tls), Some(_)) = (s3_tls(), s3_server()) else { return };
    let env = Env::new();
    let data = env.path("data");
    sample_tree(&data);
    add(
        &env,
        "store",
        "s",
        &format!("s3://{}/{}", tls.endpoint, unique_bucket("insecure")),
        &["tls_insecure_no_verify=true".into()],
    );
    let warning =
        predicate::str::contains("warning: tls_insecure_no_verify").and(predicate::str::contains("tls_ca_file"));
    env.cmd().args(["at", "@s", "create"]).assert().success().stderr(warning);
    env.cmd().args(["at", "@s", "backup", data.to_str().unwrap()]).assert().success();
    let out = env.path("out");
    let id = id_of_latest(&env, "@s");
    env.cmd().args(["at", "@s", "restore", "-to", out.to_str().unwrap(), &id]).assert().success();
    assert_same_tree(&data, &out);
    // Once per run, not once per connector.
    let run = env.cmd().args(["at", "@s", "check"]).output().unwrap();
    assert!(run.status.success());
    assert_eq!(String::from_utf8_lossy(&run.stderr).matches("warning:").count(), 1);
}
