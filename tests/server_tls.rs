//! `plakar server -cert -key` and the `https://` store: the certificate is checked against
//! the system's roots (SSL_CERT_FILE here), `tls_no_verify` skips the check, and a
//! certificate that does not verify exits 77 naming both ways out.
use crate::util::server::*;
use crate::util::*;
use std::path::Path;
use std::process::Command;

/// A throw-away CA and a certificate it signed for 127.0.0.1: (ca.pem, cert.pem, key.pem).
fn certificates(dir: &Path) -> (String, String, String) {
    let p = |n: &str| dir.join(n).display().to_string();
    let run = |args: &[&str]| {
        let out = Command::new("openssl").args(args).current_dir(dir).output().expect("openssl is needed");
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    run(&[&["req", "-x509"][..], &ec, &["-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=test CA"]]
        .concat());
    run(&[&["req"][..], &ec, &["-keyout", "key.pem", "-out", "srv.csr", "-subj", "/CN=127.0.0.1"]].concat());
    std::fs::write(dir.join("ext"), "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n").unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "srv.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "cert.pem",
        "-days",
        "2",
        "-extfile",
        "ext",
    ]);
    (p("ca.pem"), p("cert.pem"), p("key.pem"))
}

#[test]
fn https_store_through_a_tls_server() {
    let env = Env::new();
    let dir = env.path("tls");
    std::fs::create_dir_all(&dir).unwrap();
    let (ca, cert, key) = certificates(&dir);
    env.create();
    let srv = serve(&env, &["-cert", &cert, "-key", &key]);
    assert!(srv.url.starts_with("https://"), "{}", srv.url);
    let url = srv.url.clone();
    // The CA is not trusted: 77, naming SSL_CERT_FILE and tls_no_verify.
    let out = via(&env, &url, &["ls"]).env("SSL_CERT_FILE", dir.join("none.pem")).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(77), "{err}");
    assert!(err.contains("tls_no_verify") && err.contains("SSL_CERT_FILE"), "{err}");
    // Trusted through SSL_CERT_FILE.
    via(&env, &url, &["check"]).env("SSL_CERT_FILE", &ca).assert().success();
    // Not checked, with a warning.
    env.cmd()
        .args(["store", "add", "insecure", &url, &format!("auth_token={TOKEN}"), "tls_no_verify=true"])
        .assert()
        .success();
    env.cmd()
        .args(["at", "@insecure", "ls"])
        .assert()
        .success()
        .stderr(predicates::str::contains("tls_no_verify is set"));
    // Plain HTTP to a TLS server says to use https.
    let plain = url.replacen("https://", "http://", 1);
    let out = via(&env, &plain, &["ls"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("https://"), "{err}");
}

#[test]
fn a_bad_certificate_file_is_named_before_serving() {
    let env = Env::new();
    std::fs::write(env.path("junk.pem"), "not a certificate").unwrap();
    let out = env
        .at(&["server", "-listen", "127.0.0.1:0", "-cert", "junk.pem", "-key", "junk.pem"])
        .timeout(std::time::Duration::from_secs(20))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("junk.pem"), "{err}");
}
