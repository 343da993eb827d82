#!/usr/bin/env bash
# bench/ui.sh: how `plakar ui` copes with one directory of 100,000 entries (issue: "100,000
# entries in one directory stay fast by paging"). Backs the directory up into a store on
# tmpfs, starts the UI, and times API calls with curl: the first page (the tree blob read
# and decoded), pages further in (served from the decoded-tree cache), a name filter over
# every entry, a search across the snapshot, and the whole directory as a streamed .tar.gz;
# then the server's peak RSS. Writes the table between the ui markers of bench/NOTES.md and
# docs/PERFORMANCE.md.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${UI_BENCH_ENTRIES:-100000}
root=${BENCH_DIR:-/dev/shm/plakar-ui-bench}
cargo build --release --locked -q
plakar=$PWD/target/release/plakar
export PLAKAR_PASSPHRASE=bench
rm -rf "$root" && mkdir -p "$root/data/big"
(cd "$root/data/big" && seq -f 'f%06g' 0 $((n - 1)) | xargs -n 5000 touch)
"$plakar" at "$root/store" create
sync
start=$(date +%s.%N)
"$plakar" at "$root/store" backup -no-progress "$root/data" >/dev/null
backup=$(echo "$(date +%s.%N) - $start" | bc)
"$plakar" at "$root/store" ui -no-spawn >"$root/ui.out" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 50); do grep -q token= "$root/ui.out" && break; sleep 0.1; done
url=$(grep -o 'http://[^ ]*' "$root/ui.out")
base=${url%%/\?*} token=${url##*token=}
id=$("$plakar" at "$root/store" ls -uuid | awk '{print $2}')
dir=$root/data/big
t() { curl -sS -o "$root/body" -H "Authorization: Bearer $token" -w '%{time_total}' "$base$1"; }
rows=()
row() { rows+=("| $1 | $2 s | $(stat -c %s "$root/body") |"); }
row "first page (500 entries), tree read and decoded" "$(t "/api/snapshots/$id/tree?path=$dir&limit=500")"
row "page at entry 50,000" "$(t "/api/snapshots/$id/tree?path=$dir&offset=50000&limit=500")"
row "last page" "$(t "/api/snapshots/$id/tree?path=$dir&offset=$((n - 500))&limit=500")"
row "name filter over every entry (f09999)" "$(t "/api/snapshots/$id/tree?path=$dir&filter=f09999")"
row "search the snapshot (*f0999*)" "$(t "/api/search?q=f0999&snapshot=$id")"
row "whole directory as .tar.gz (streamed)" "$(t "/api/snapshots/$id/archive?path=$dir&format=tar.gz")"
rss=$(awk '/VmHWM/ {printf "%.0f MiB", $2/1024}' "/proc/$pid/status")
table=$(
  echo "<!-- ui -->"
  echo "### plakar ui: one directory of $n entries (\`bench/ui.sh\`)"
  echo
  echo "Backup of the directory: ${backup%???????} s. Server peak RSS after the calls below: $rss."
  echo
  echo "| API call | time | response bytes |"
  echo "|---|---|---|"
  printf '%s\n' "${rows[@]}"
  echo "<!-- /ui -->"
)
echo "$table"
for f in bench/NOTES.md docs/PERFORMANCE.md; do
  python3 - "$f" "$table" <<'PY'
import re, sys
path, block = sys.argv[1], sys.argv[2]
s = open(path).read()
if "<!-- ui -->" in s:
    s = re.sub(r"<!-- ui -->.*?<!-- /ui -->", lambda _: block, s, flags=re.S)
else:
    s = s.rstrip("\n") + "\n\n" + block + "\n"
open(path, "w").write(s)
PY
done
