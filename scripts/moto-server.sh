#!/usr/bin/env bash
# scripts/moto-server.sh start|stop|env|versioned BUCKET|objects BUCKET KEY...|versions BUCKET|sts-role NAME ACTION
# Runs moto's standalone server, an in-memory model of AWS, as a process on 127.0.0.1 for
# the tests: unlike Garage it enforces what AWS does with storage classes (GLACIER objects
# refuse GETs), regions (CreateBucket needs a LocationConstraint outside us-east-1), copy
# sources, versioning and conditional writes. moto[server] comes from PyPI, installed once
# per machine into a venv under ~/.cache/plakar-tools, keyed by its version.
# IAM is enforced: INITIAL_NO_AUTH_ACTION_COUNT lets exactly the first three requests in
# unsigned (CreateUser, PutUserPolicy, CreateAccessKey, below); every later request must be
# signed by a key of an IAM user whose policy allows it, so a wrong secret is refused
# (SignatureDoesNotMatch) as on AWS. `start` prints the variables the tests read (also
# written to $dir/env).
# A second instance (port + 1, its own state) serves the web identity test alone: moto's STS
# cannot answer an unsigned AssumeRoleWithWebIdentity while IAM is enforced, so that test lets
# one unsigned request in at a time (POST /moto-api/reset-auth), which is process-wide: on a
# shared instance it would let another test's request in unchecked.
set -euo pipefail
version=${MOTO_VERSION:-5.2.5}
tools=${PLAKAR_TOOLS:-$HOME/.cache/plakar-tools}
venv=$tools/moto-$version
dir=${MOTO_DIR:-${TMPDIR:-/tmp}/plakar-test-moto}
port=${MOTO_PORT:-39400}
sts_dir=${MOTO_STS_DIR:-$dir-sts}
sts_port=${MOTO_STS_PORT:-$((port + 1))}

install() {
  [ -x "$venv/bin/moto_server" ] && "$venv/bin/python" -c 'import moto, flask' 2>/dev/null && return
  echo "installing moto[server] $version (once per machine, in $venv)..." >&2
  python3 -m venv "$venv" >&2
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "moto[server]==$version" >&2
}

# Runs boto3 (a dependency of moto) against the server with the test key.
client() {
  AWS_ACCESS_KEY_ID=$1 AWS_SECRET_ACCESS_KEY=$2 AWS_DEFAULT_REGION=us-east-1 MOTO_URL=http://127.0.0.1:$port \
    "$venv/bin/python" -c "$3" "${@:4}"
}

# instance DIR PORT PREFIX: starts moto on PORT (unless it runs) with one IAM user allowed
# everything; prints "export PREFIX_ENDPOINT=... PREFIX_ACCESS_KEY=... PREFIX_SECRET_KEY=...".
instance() {
  local d=$1 p=$2 prefix=$3
  if [ -f "$d/pid" ] && kill -0 "$(cat "$d/pid")" 2>/dev/null; then cat "$d/env"; return; fi
  rm -rf "$d" && mkdir -p "$d"
  INITIAL_NO_AUTH_ACTION_COUNT=3 MOTO_ALLOW_NONEXISTENT_REGION=false \
    nohup "$venv/bin/moto_server" -H 127.0.0.1 -p "$p" >"$d/log" 2>&1 &
  echo $! >"$d/pid"
  for _ in $(seq 1 150); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then break; fi
    sleep 0.1
  done
  (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "moto did not start:" >&2; tail -20 "$d/log" >&2; exit 1; }
  keys=$(port=$p client unused unused '
import boto3, json, os
iam = boto3.client("iam", endpoint_url=os.environ["MOTO_URL"])
iam.create_user(UserName="plakar-test")
iam.put_user_policy(UserName="plakar-test", PolicyName="all", PolicyDocument=json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
k = iam.create_access_key(UserName="plakar-test")["AccessKey"]
print(k["AccessKeyId"], k["SecretAccessKey"])
') || { echo "moto: cannot create the IAM user:" >&2; tail -20 "$d/log" >&2; exit 1; }
  read -r key secret <<<"$keys"
  printf 'export %s_ENDPOINT=127.0.0.1:%s %s_ACCESS_KEY=%s %s_SECRET_KEY=%s\n' \
    "$prefix" "$p" "$prefix" "$key" "$prefix" "$secret" | tee "$d/env"
}

case ${1:-start} in
  start)
    install
    instance "$dir" "$port" MOTO_S3
    instance "$sts_dir" "$sts_port" MOTO_STS
    ;;
  stop)
    for d in "$dir" "$sts_dir"; do
      [ -f "$d/pid" ] && kill "$(cat "$d/pid")" 2>/dev/null || true
      rm -f "$d/pid"
    done
    ;;
  env) cat "$dir/env" "$sts_dir/env" ;;
  sts-role)
    # sts-role NAME ACTION: on the STS instance, a role that web identities may assume, whose
    # policy allows ACTION (e.g. "s3:*") on everything; prints its ARN.
    name=${2:?usage: $0 sts-role NAME ACTION} action=${3:?usage: $0 sts-role NAME ACTION}
    eval "$(cat "$sts_dir/env")"
    port=$sts_port client "$MOTO_STS_ACCESS_KEY" "$MOTO_STS_SECRET_KEY" '
import boto3, json, os, sys
iam = boto3.client("iam", endpoint_url=os.environ["MOTO_URL"])
trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Federated": "oidc.example.com"},
         "Action": "sts:AssumeRoleWithWebIdentity"}]}
arn = iam.create_role(RoleName=sys.argv[1], AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
iam.put_role_policy(RoleName=sys.argv[1], PolicyName="p", PolicyDocument=json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": sys.argv[2], "Resource": "*"}]}))
print(arn)
' "$name" "$action"
    ;;
  env) cat "$dir/env" ;;
  versioned)
    # versioned BUCKET: creates BUCKET with versioning enabled (what an admin may have done).
    bucket=${2:?usage: $0 versioned BUCKET}
    eval "$(cat "$dir/env")"
    client "$MOTO_S3_ACCESS_KEY" "$MOTO_S3_SECRET_KEY" '
import boto3, os, sys
s3 = boto3.client("s3", endpoint_url=os.environ["MOTO_URL"])
s3.create_bucket(Bucket=sys.argv[1])
s3.put_bucket_versioning(Bucket=sys.argv[1], VersioningConfiguration={"Status": "Enabled"})
' "$bucket"
    ;;
  objects)
    # objects BUCKET KEY...: creates BUCKET (unless it is there) and puts each KEY, holding the key's own bytes
    # (keys no file path can hold, written as any S3 client may).
    bucket=${2:?usage: $0 objects BUCKET KEY...}
    eval "$(cat "$dir/env")"
    client "$MOTO_S3_ACCESS_KEY" "$MOTO_S3_SECRET_KEY" '
import boto3, os, sys
s3 = boto3.client("s3", endpoint_url=os.environ["MOTO_URL"])
try:
    s3.create_bucket(Bucket=sys.argv[1])
except s3.exceptions.BucketAlreadyOwnedByYou:
    pass
for k in sys.argv[2:]:
    s3.put_object(Bucket=sys.argv[1], Key=k, Body=k.encode())
' "$bucket" "${@:3}"
    ;;
  versions)
    # versions BUCKET: every version of every key, one a line: KEY current|old|marker
    # (what ListObjectVersions shows; a marker that is the latest is "marker" too).
    bucket=${2:?usage: $0 versions BUCKET}
    eval "$(cat "$dir/env")"
    client "$MOTO_S3_ACCESS_KEY" "$MOTO_S3_SECRET_KEY" '
import boto3, os, sys
s3 = boto3.client("s3", endpoint_url=os.environ["MOTO_URL"])
for page in s3.get_paginator("list_object_versions").paginate(Bucket=sys.argv[1]):
    for v in page.get("Versions", []):
        print(v["Key"], "current" if v["IsLatest"] else "old")
    for m in page.get("DeleteMarkers", []):
        print(m["Key"], "marker")
' "$bucket"
    ;;
  *) echo "usage: $0 start|stop|env|versioned BUCKET|objects BUCKET KEY...|versions BUCKET|sts-role NAME ACTION" >&2; exit 64 ;;
esac
