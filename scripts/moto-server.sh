#!/usr/bin/env bash
# scripts/moto-server.sh start|stop|env|versioned BUCKET|objects BUCKET KEY...|versions BUCKET
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
set -euo pipefail
version=${MOTO_VERSION:-5.2.5}
tools=${PLAKAR_TOOLS:-$HOME/.cache/plakar-tools}
venv=$tools/moto-$version
dir=${MOTO_DIR:-${TMPDIR:-/tmp}/plakar-test-moto}
port=${MOTO_PORT:-39400}

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

case ${1:-start} in
  start)
    install
    if [ -f "$dir/pid" ] && kill -0 "$(cat "$dir/pid")" 2>/dev/null; then cat "$dir/env"; exit 0; fi
    rm -rf "$dir" && mkdir -p "$dir"
    INITIAL_NO_AUTH_ACTION_COUNT=3 MOTO_ALLOW_NONEXISTENT_REGION=false \
      nohup "$venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$dir/log" 2>&1 &
    echo $! >"$dir/pid"
    for _ in $(seq 1 150); do
      if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
      sleep 0.1
    done
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { echo "moto did not start:" >&2; tail -20 "$dir/log" >&2; exit 1; }
    keys=$(client unused unused '
import boto3, json, os
iam = boto3.client("iam", endpoint_url=os.environ["MOTO_URL"])
iam.create_user(UserName="plakar-test")
iam.put_user_policy(UserName="plakar-test", PolicyName="all", PolicyDocument=json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
k = iam.create_access_key(UserName="plakar-test")["AccessKey"]
print(k["AccessKeyId"], k["SecretAccessKey"])
') || { echo "moto: cannot create the IAM user:" >&2; tail -20 "$dir/log" >&2; exit 1; }
    read -r key secret <<<"$keys"
    printf 'export MOTO_S3_ENDPOINT=127.0.0.1:%s MOTO_S3_ACCESS_KEY=%s MOTO_S3_SECRET_KEY=%s\n' \
      "$port" "$key" "$secret" | tee "$dir/env"
    ;;
  stop)
    [ -f "$dir/pid" ] && kill "$(cat "$dir/pid")" 2>/dev/null || true
    rm -f "$dir/pid"
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
  *) echo "usage: $0 start|stop|env|versioned BUCKET|objects BUCKET KEY...|versions BUCKET" >&2; exit 64 ;;
esac
