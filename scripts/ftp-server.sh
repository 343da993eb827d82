#!/usr/bin/env bash
# scripts/ftp-server.sh start|stop|env|hostile HOME SPEC
# Runs pyftpdlib, a real FTP server, as a plain process on 127.0.0.1 for the tests, with a
# throw-away user whose home is a directory under /tmp (the tests put files there and read
# what restores write there). pyftpdlib is installed once per machine into a venv under
# ~/.cache/plakar-tools, keyed by its version. `start` prints the variables the tests read
# (also written to $dir/env).
set -euo pipefail
version=${PYFTPDLIB_VERSION:-2.2.0}
tools=${PLAKAR_TOOLS:-$HOME/.cache/plakar-tools}
venv=$tools/pyftpdlib-$version
dir=${FTP_DIR:-${TMPDIR:-/tmp}/plakar-test-ftp}
port=${FTP_PORT:-39021}
user=plakar-test pass=plakar-test-password-0123456789

install() {
  [ -x "$venv/bin/python" ] && "$venv/bin/python" -c 'import pyftpdlib' 2>/dev/null && return
  echo "installing pyftpdlib $version (once per machine, in $venv)..." >&2
  python3 -m venv "$venv" >&2
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "pyftpdlib==$version" >&2
}

case ${1:-start} in
  start)
    install
    if [ -f "$dir/pid" ] && kill -0 "$(cat "$dir/pid")" 2>/dev/null; then cat "$dir/env"; exit 0; fi
    # home/locked: a directory the user may not read, for permission errors.
    rm -rf "$dir" && mkdir -p "$dir/home/locked"
    cat >"$dir/server.py" <<PY
import logging
from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler
from pyftpdlib.servers import FTPServer
logging.basicConfig(level=logging.WARNING)
auth = DummyAuthorizer()
auth.add_user("$user", "$pass", "$dir/home", perm="elradfmwMT")
auth.override_perm("$user", "$dir/home/locked", perm="", recursive=True)
FTPHandler.authorizer = auth
FTPHandler.passive_ports = range($((port + 1)), $((port + 200)))
server = FTPServer(("127.0.0.1", $port), FTPHandler)
server.serve_forever()
PY
    nohup "$venv/bin/python" "$dir/server.py" >"$dir/log" 2>&1 &
    echo $! >"$dir/pid"
    for _ in $(seq 1 100); do
      if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
      sleep 0.1
    done
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { echo "pyftpdlib did not start:" >&2; tail -20 "$dir/log" >&2; exit 1; }
    printf 'export FTP_ENDPOINT=127.0.0.1:%s FTP_USER=%s FTP_PASSWORD=%s FTP_HOME=%s\n' "$port" "$user" "$pass" "$dir/home" | tee "$dir/env"
    ;;
  stop)
    [ -f "$dir/pid" ] && kill "$(cat "$dir/pid")" 2>/dev/null || true
    rm -f "$dir/pid"
    ;;
  env) cat "$dir/env" ;;
  hostile)
    # A server that lies in its listings (scripts/ftp-hostile.py), in the foreground, for
    # one test: `hostile HOME SPEC.json` prints its port, then serves until killed.
    install
    exec "$venv/bin/python" "$(dirname "$0")/ftp-hostile.py" "$2" "$3"
    ;;
  *) echo "usage: $0 start|stop|env|hostile HOME SPEC" >&2; exit 64 ;;
esac
