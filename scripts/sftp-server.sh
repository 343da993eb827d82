#!/usr/bin/env bash
# OpenSSH's sshd on 127.0.0.1 for the SFTP tests, as a plain process with throw-away keys.
#
#   eval "$(scripts/sftp-server.sh start)"   # installs openssh-server if needed, starts sshd
#   scripts/sftp-server.sh stop
#   scripts/sftp-server.sh env               # prints the variables again
#
# Two ways in, both tested: the current user with a key (SFTP_IDENTITY), and a throw-away
# user with a password (SFTP_PASSWORD_USER / SFTP_PASSWORD; created when running as root).
# SFTP_KNOWN_HOSTS holds the server's host key; tests pass it as known_hosts=.
set -euo pipefail

# 39010: clear of FTP's control port and passive range (39021-39220); tests/ports.rs keeps the map.
PORT=${SFTP_PORT:-39010}
DIR=${SFTP_DIR:-/tmp/plakar-test-sshd}
PW_USER=plakartest
PW=plakar-test-password-0123

sudo_() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo -n "$@"; fi; }

install_sshd() {
    [ -x /usr/sbin/sshd ] && return
    echo "installing openssh-server (Debian package)" >&2
    export DEBIAN_FRONTEND=noninteractive
    sudo_ apt-get install -y --no-install-recommends openssh-server >&2 ||
        { sudo_ apt-get update >&2 && sudo_ apt-get install -y --no-install-recommends openssh-server >&2; }
    # The package may start the system's sshd on port 22; ours is separate and leaves it be.
}

print_env() {
    cat <<EOF
export SFTP_HOST=127.0.0.1
export SFTP_PORT=$PORT
export SFTP_USER=$(id -un)
export SFTP_IDENTITY=$DIR/client_ed25519
export SFTP_KNOWN_HOSTS=$DIR/known_hosts
export SFTP_ROOT=$DIR/data
EOF
    if id "$PW_USER" >/dev/null 2>&1; then
        echo "export SFTP_PASSWORD_USER=$PW_USER"
        echo "export SFTP_PASSWORD=$PW"
        echo "export SFTP_PASSWORD_ROOT=$DIR/pwdata"
    fi
}

running() { [ -f "$DIR/sshd.pid" ] && kill -0 "$(cat "$DIR/sshd.pid")" 2>/dev/null; }

wait_port() {
    for _ in $(seq 1 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    echo "sshd did not start on port $PORT; see $DIR/sshd.log" >&2
    cat "$DIR/sshd.log" >&2 || true
    return 1
}

start() {
    if running; then
        print_env
        return
    fi
    install_sshd
    mkdir -p "$DIR/data"
    chmod 700 "$DIR"
    [ -f "$DIR/host_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C plakar-test-host -f "$DIR/host_ed25519"
    [ -f "$DIR/client_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C plakar-test-client -f "$DIR/client_ed25519"
    cp "$DIR/client_ed25519.pub" "$DIR/authorized_keys"
    echo "[127.0.0.1]:$PORT $(cut -d' ' -f1,2 "$DIR/host_ed25519.pub")" >"$DIR/known_hosts"
    if [ "$(id -u)" = 0 ]; then
        id "$PW_USER" >/dev/null 2>&1 || useradd -M -d "$DIR/pwdata" -s /bin/sh "$PW_USER"
        echo "$PW_USER:$PW" | chpasswd
        mkdir -p "$DIR/pwdata"
        chown "$PW_USER" "$DIR/pwdata"
        chmod 711 "$DIR"
    fi
    cat >"$DIR/sshd_config" <<EOF
Port $PORT
ListenAddress 127.0.0.1
HostKey $DIR/host_ed25519
PidFile $DIR/sshd.pid
AuthorizedKeysFile $DIR/authorized_keys
StrictModes no
PubkeyAuthentication yes
PasswordAuthentication yes
KbdInteractiveAuthentication no
UsePAM no
PermitRootLogin yes
MaxStartups 200
MaxSessions 200
MaxAuthTries 10
LogLevel ERROR
Subsystem sftp internal-sftp
EOF
    sudo_ mkdir -p /run/sshd
    /usr/sbin/sshd -f "$DIR/sshd_config" -E "$DIR/sshd.log"
    wait_port
    print_env
}

stop() {
    if running; then
        kill "$(cat "$DIR/sshd.pid")" || true
    fi
    rm -f "$DIR/sshd.pid"
}

case "${1:-}" in
start) start ;;
stop) stop ;;
env) print_env ;;
*)
    echo "usage: $0 start|stop|env" >&2
    exit 2
    ;;
esac
