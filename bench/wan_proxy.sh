# Sourced by the bench/ scripts that simulate a WAN (wan.sh, history.sh, scale.sh).
# start_proxy PORT TARGET_HOST:PORT DELAY_MS OUT [LOG]: starts the WAN proxy
# (examples/wan_proxy.rs, built once in release; WAN_PROXY_BIN=path runs that build
# instead, so a tree being edited does not stop a run given PLAKAR_BIN) in the background
# on 127.0.0.1:PORT, holding every chunk DELAY_MS each way; its output goes to OUT,
# requests are logged to LOG. Sets proxy_pid and returns once it listens; fails if it exits.
start_proxy() {
  local port=$1 to=$2 delay=$3 out=$4 log=${5:-}
  local bin=${WAN_PROXY_BIN:-}
  if [ -z "$bin" ]; then
    bin=${CARGO_TARGET_DIR:-$PWD/target}/release/examples/wan_proxy
    cargo build --release --locked -q --example wan_proxy
  fi
  : >"$out"
  "$bin" "$port" "$to" "$delay" ${log:+"$log"} >>"$out" 2>&1 &
  proxy_pid=$!
  until grep -qx ready "$out" 2>/dev/null; do
    kill -0 "$proxy_pid" 2>/dev/null || { echo "the WAN proxy did not start:" >&2; cat "$out" >&2; return 1; }
    sleep 0.1
  done
}
