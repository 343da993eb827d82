//! The region goes into every request's SigV4 scope: Garage (s3_region "us-east-1" in
//! scripts/s3-server.sh) refuses any other, and the message names the one it expects.
use crate::util::*;
use predicates::prelude::*;

fn add(env: &Env, kind: &str, name: &str, loc: &str, extra: &[&str]) {
    let (_, ak, sk) = s3_server().expect("checked by the caller");
    env.cmd()
        .args([
            kind,
            "add",
            name,
            loc,
            &format!("access_key={ak}"),
            &format!("secret_access_key={sk}"),
            "use_tls=false",
        ])
        .args(extra)
        .assert()
        .success();
}

fn names_the_expected_region() -> impl predicates::Predicate<str> {
    predicate::str::contains("expects requests signed for region us-east-1, not eu-west-3")
        .and(predicate::str::contains("region=us-east-1"))
}

#[test]
fn a_wrong_region_is_refused_by_store_source_and_destination_and_names_the_right_one() {
    let Some((ep, _, _)) = s3_server() else { return };
    let env = Env::new();
    let data = env.path("data");
    sample_tree(&data);
    let bucket = unique_bucket("region");
    let loc = format!("s3://{ep}/{bucket}");
    add(&env, "store", "right", &format!("{loc}/kloset"), &["region=us-east-1"]);
    add(&env, "store", "wrong", &format!("{loc}/kloset"), &["region=eu-west-3"]);
    add(&env, "source", "wrong_src", &format!("{loc}/kloset"), &["region=eu-west-3"]);
    add(&env, "destination", "wrong_dst", &format!("{loc}/out"), &["region=eu-west-3"]);
    env.cmd().args(["at", "@wrong", "create"]).assert().code(77).stderr(names_the_expected_region());
    env.cmd().args(["at", "@right", "create"]).assert().success();
    env.cmd().args(["at", "@right", "backup", data.to_str().unwrap()]).assert().success();
    env.cmd().args(["at", "@wrong", "ls"]).assert().code(77).stderr(names_the_expected_region());
    env.create();
    env.at(&["backup", "@wrong_src"]).assert().code(77).stderr(names_the_expected_region());
    let id = env.backup(&data);
    env.at(&["restore", "-to", "@wrong_dst", &id[..8]]).assert().code(77).stderr(names_the_expected_region());
}

#[test]
fn aws_region_sets_the_region_when_the_option_does_not() {
    let Some((ep, _, _)) = s3_server() else { return };
    let env = Env::new();
    add(&env, "store", "s", &format!("s3://{ep}/{}", unique_bucket("awsregion")), &[]);
    env.cmd()
        .env("AWS_REGION", "eu-west-3")
        .args(["at", "@s", "create"])
        .assert()
        .code(77)
        .stderr(names_the_expected_region());
    env.cmd().env("AWS_REGION", "us-east-1").args(["at", "@s", "create"]).assert().success();
    // The option wins over the variable.
    env.cmd().args(["store", "set", "s", "region=us-east-1"]).assert().success();
    env.cmd().env("AWS_REGION", "eu-west-3").args(["at", "@s", "ls"]).assert().success();
}
