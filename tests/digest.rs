//! `digest`: SHA-256 or BLAKE3 of files in a snapshot, without restoring them, in Plakar's
//! `ALGO (PATH) = HEX` lines; checked against sha256sum and the blake3 crate.
use crate::util::*;
use predicates::prelude::*;
use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::process::Command as Proc;

fn setup() -> (Env, std::path::PathBuf, String) {
    let env = Env::new();
    let data = env.path("data");
    fs::create_dir_all(data.join("sub/deeper")).unwrap();
    fs::write(data.join("hello.txt"), "hello world\n").unwrap();
    fs::write(data.join("empty"), "").unwrap();
    fs::write(data.join("sub/deeper/big.bin"), noise(4_000_000, 11)).unwrap();
    fs::write(data.join("sub/small"), "small\n").unwrap();
    std::os::unix::fs::symlink("hello.txt", data.join("link")).unwrap();
    env.create();
    let id = env.backup(&data);
    (env, data, id)
}

fn sha256sum(p: &Path) -> String {
    let out = Proc::new("sha256sum").arg(p).output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().split_whitespace().next().unwrap().to_string()
}

#[test]
fn sha256_of_one_file_matches_sha256sum() {
    let (env, data, id) = setup();
    let big = data.join("sub/deeper/big.bin");
    let out = env.stdout(&["digest", &format!("{}:sub/deeper/big.bin", &id[..8])]);
    assert_eq!(out, format!("SHA256 ({}) = {}\n", big.display(), sha256sum(&big)));
    // Several arguments, absolute paths too, and the algorithm in any case.
    let hello = data.join("hello.txt");
    let out = env.stdout(&[
        "digest",
        "-hashing",
        "sha256",
        &format!("{}:{}", &id[..8], hello.display()),
        &format!("{}:empty", &id[..8]),
    ]);
    assert_eq!(
        out,
        format!(
            "SHA256 ({}) = {}\nSHA256 ({}) = {}\n",
            hello.display(),
            sha256sum(&hello),
            data.join("empty").display(),
            sha256sum(&data.join("empty"))
        )
    );
}

#[test]
fn blake3_of_a_directory_lists_every_regular_file_below_it() {
    let (env, data, id) = setup();
    let out = env.stdout(&["digest", "-hashing", "BLAKE3", &id[..8]]);
    let got: Vec<&str> = out.lines().collect();
    let mut expected = BTreeSet::new();
    for p in walk(&data) {
        if fs::symlink_metadata(&p).unwrap().is_file() {
            let h = blake3::hash(&fs::read(&p).unwrap()).to_hex().to_string();
            expected.insert(format!("BLAKE3 ({}) = {h}", p.display()));
        }
    }
    assert_eq!(got.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>(), expected, "{out}");
    assert_eq!(got.len(), 4, "regular files only, each once: {out}");
    let mut sorted = got.clone();
    sorted.sort();
    assert_eq!(got, sorted, "in path order");
}

#[test]
fn bad_input_says_what_to_do() {
    let (env, _data, id) = setup();
    env.at(&["digest", "-hashing", "MD5", &format!("{}:hello.txt", &id[..8])])
        .assert()
        .code(64)
        .stderr(predicate::str::contains("MD5").and(predicate::str::contains("SHA256, BLAKE3")));
    env.at(&["digest"]).assert().code(64).stderr(predicate::str::contains("SNAPSHOT"));
    env.at(&["digest", &format!("{}:nope", &id[..8])])
        .assert()
        .code(64)
        .stderr(predicate::str::contains("no such file"));
    env.at(&["digest", "0000000000:hello.txt"]).assert().code(64).stderr(predicate::str::contains("no snapshot"));
}
