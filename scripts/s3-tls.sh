#!/usr/bin/env bash
# A TLS front for the test S3 server: stunnel (Debian's stunnel4) on 127.0.0.1 with a
# certificate from a throw-away private CA, made with openssl at each start, forwarding to
# the plain-HTTP Garage of scripts/s3-server.sh.
#
#   eval "$(scripts/s3-tls.sh start)"   # needs the Garage running (S3_ENDPOINT, or GARAGE_PORT)
#   scripts/s3-tls.sh stop
#   scripts/s3-tls.sh env               # prints the variables again
#
# S3_TLS_ENDPOINT is the front (host:port); S3_TLS_CA is the CA that signed its certificate
# (for 127.0.0.1 and localhost); S3_TLS_OTHER_CA is another CA, one that did not.
set -euo pipefail
port=${S3_TLS_PORT:-39005}
dir=${S3_TLS_DIR:-${TMPDIR:-/tmp}/plakar-test-s3-tls}
backend=${S3_TLS_BACKEND:-${S3_ENDPOINT:-127.0.0.1:${GARAGE_PORT:-39000}}}

sudo_() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo -n "$@"; fi; }

install_stunnel() {
  command -v stunnel4 >/dev/null && return
  echo "installing stunnel4 (Debian package)" >&2
  export DEBIAN_FRONTEND=noninteractive
  sudo_ apt-get install -y --no-install-recommends stunnel4 openssl >&2 ||
    { sudo_ apt-get update >&2 && sudo_ apt-get install -y --no-install-recommends stunnel4 openssl >&2; }
}

running() { [ -f "$dir/stunnel.pid" ] && kill -0 "$(cat "$dir/stunnel.pid")" 2>/dev/null; }

# A CA: $1.key and $1.pem.
make_ca() {
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=$2" \
    -keyout "$dir/$1.key" -out "$dir/$1.pem" 2>/dev/null
}

certificates() {
  make_ca ca "plakar test CA"
  make_ca other-ca "another test CA"
  openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
    -keyout "$dir/server.key" -out "$dir/server.csr" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >"$dir/server.ext"
  openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial \
    -days 2 -extfile "$dir/server.ext" -out "$dir/server.pem" 2>/dev/null
}

print_env() {
  printf 'export S3_TLS_ENDPOINT=127.0.0.1:%s S3_TLS_CA=%s S3_TLS_OTHER_CA=%s\n' \
    "$port" "$dir/ca.pem" "$dir/other-ca.pem"
}

case ${1:-start} in
  start)
    install_stunnel
    if running; then print_env; exit 0; fi
    rm -rf "$dir" && mkdir -p "$dir"
    certificates
    cat >"$dir/stunnel.conf" <<CONF
foreground = no
pid = $dir/stunnel.pid
output = $dir/log
[s3]
accept = 127.0.0.1:$port
connect = $backend
cert = $dir/server.pem
key = $dir/server.key
CONF
    stunnel4 "$dir/stunnel.conf" >&2
    for _ in $(seq 1 50); do
      if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
      sleep 0.1
    done
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { echo "stunnel did not start:" >&2; tail -20 "$dir/log" >&2; exit 1; }
    print_env | tee "$dir/env"
    ;;
  stop)
    if running; then kill "$(cat "$dir/stunnel.pid")"; fi
    rm -f "$dir/stunnel.pid"
    ;;
  env) cat "$dir/env" ;;
  *) echo "usage: $0 start|stop|env" >&2; exit 64 ;;
esac
