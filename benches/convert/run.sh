#!/usr/bin/env bash
# The 1,000,000-user convert benchmark: authmigrate convert (Auth0 export + password-hash
# export -> Authgear NDJSON) against the straightforward Python script (baseline.py).
#
#   benches/convert/run.sh            # N=1000000 by default
#   N=200000 benches/convert/run.sh   # smaller run
#
# Prints wall time, users/s and peak RSS (Maximum resident set size) for both, and the
# ratios. Data is generated once under target/bench-data/ (regenerated when N changes).
# If the CLI has no working `convert` yet, the core join benchmark (an ignored test that
# joins N synthetic users in process) is measured instead, and said so.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
N="${N:-1000000}"
DATA="$ROOT/target/bench-data"
BIN="$ROOT/target/release/authmigrate"
mkdir -p "$DATA"

if [ ! -x /usr/bin/time ]; then
    echo "== /usr/bin/time is missing: installing the 'time' package"
    if [ "$(id -u)" = 0 ]; then apt-get install -y time; else sudo apt-get install -y time; fi
fi

echo "== building (release)"
cargo build --release -p authmigrate-cli

if [ ! -s "$DATA/users.ndjson" ] || [ ! -s "$DATA/hashes.ndjson" ] || [ "$(cat "$DATA/n" 2>/dev/null)" != "$N" ]; then
    echo "== generating $N users into $DATA"
    python3 benches/convert/gen.py "$N" "$DATA/users.ndjson" "$DATA/hashes.ndjson"
    echo "$N" > "$DATA/n"
fi
echo "== input: $(wc -l < "$DATA/users.ndjson") users ($(du -h "$DATA/users.ndjson" | cut -f1)), $(wc -l < "$DATA/hashes.ndjson") hashes ($(du -h "$DATA/hashes.ndjson" | cut -f1))"

# measure LABEL CMD...: runs CMD under /usr/bin/time -v; sets WALL (s) and RSS (KiB).
measure() {
    local label="$1"; shift
    local tv="$DATA/$label.time"
    echo "== $label: $*"
    # Start both programs from the same quiet disk: the previous run's output and its
    # deleted files are written back (and discarded) before the clock starts.
    sync
    if ! /usr/bin/time -v -o "$tv" "$@"; then
        echo "!! $label failed (see above)"; cat "$tv" >&2 || true
        return 1
    fi
    WALL="$(awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,p,":"); s=0; for(i=1;i<=n;i++) s=s*60+p[i]; print s}' "$tv")"
    RSS="$(awk -F': ' '/Maximum resident set size/ {print $2}' "$tv")"
    printf '   %-10s wall %8.2f s   %10.0f users/s   peak RSS %8.1f MiB\n' \
        "$label" "$WALL" "$(awk -v n="$N" -v w="$WALL" 'BEGIN{print (w>0)? n/w : 0}')" \
        "$(awk -v r="$RSS" 'BEGIN{print r/1024}')"
}

RUST_LABEL="authmigrate"
if "$BIN" convert --help >/dev/null 2>&1; then
    rm -f "$DATA/out.ndjson"
    measure authmigrate "$BIN" convert --to authgear "$DATA/users.ndjson" \
        --password-hashes "$DATA/hashes.ndjson" --out "$DATA/out.ndjson"
    R_WALL="$WALL"; R_RSS="$RSS"
    echo "   output: $(wc -l < "$DATA/out.ndjson") lines, $(grep -c '"password_hash"' "$DATA/out.ndjson" || true) with a password"
else
    RUST_LABEL="core-join"
    echo "!! '$BIN convert' is not available yet: measuring the core join alone instead"
    echo "   (synthetic users built in process, no NDJSON parsing or output writing)"
    cargo test --release -p authmigrate-core --lib --no-run 2>/dev/null
    TEST_BIN="$(cargo test --release -p authmigrate-core --lib --no-run --message-format=json 2>/dev/null \
        | python3 -c 'import sys,json
for l in sys.stdin:
    m=json.loads(l)
    if m.get("reason")=="compiler-artifact" and m.get("executable") and m["target"]["kind"]==["lib"]: print(m["executable"])' | tail -1)"
    JOIN_BENCH_USERS="$N" measure core-join "$TEST_BIN" join::tests::million_users_peak_rss \
        --ignored --nocapture --test-threads 1
    R_WALL="$WALL"; R_RSS="$RSS"
fi

rm -f "$DATA/out-python.ndjson"
measure python python3 benches/convert/baseline.py "$DATA/users.ndjson" "$DATA/hashes.ndjson" "$DATA/out-python.ndjson"
P_WALL="$WALL"; P_RSS="$RSS"

echo "== summary ($N users)"
printf '   %-12s %8.2f s  %10.0f users/s  %8.1f MiB\n' "$RUST_LABEL" "$R_WALL" \
    "$(awk -v n="$N" -v w="$R_WALL" 'BEGIN{print n/w}')" "$(awk -v r="$R_RSS" 'BEGIN{print r/1024}')"
printf '   %-12s %8.2f s  %10.0f users/s  %8.1f MiB\n' python "$P_WALL" \
    "$(awk -v n="$N" -v w="$P_WALL" 'BEGIN{print n/w}')" "$(awk -v r="$P_RSS" 'BEGIN{print r/1024}')"
printf '   speed-up %.1fx, peak RSS %.1fx smaller\n' \
    "$(awk -v a="$P_WALL" -v b="$R_WALL" 'BEGIN{print a/b}')" "$(awk -v a="$P_RSS" -v b="$R_RSS" 'BEGIN{print a/b}')"
