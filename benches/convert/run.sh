#!/usr/bin/env bash
# The 1,000,000-user convert benchmark: authmigrate convert (Auth0 export + password-hash
# export -> Authgear NDJSON) against the straightforward Python script (baseline.py).
#
#   benches/convert/run.sh            # N=1000000 by default
#   N=200000 benches/convert/run.sh   # smaller run
#   RUNS=5 benches/convert/run.sh     # rounds (default 3)
#
# Each round runs both tools, one after the other, on the same files. Prints wall time,
# users/s, peak RSS (Maximum resident set size), CPU time and the time the hypervisor
# stole from the VM during every run, then the median of the rounds' speed-ups and the
# ratio of the median times: a VM's speed drifts between runs, and a median is not
# thrown by one slow moment. Data is generated once under target/bench-data/
# (regenerated when N changes).
# If the CLI has no working `convert` yet, the core join benchmark (an ignored test that
# joins N synthetic users in process) is measured instead, and said so.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
N="${N:-1000000}"
RUNS="${RUNS:-3}"
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
    local before; before="$(steal_ticks)"
    if ! /usr/bin/time -v -o "$tv" "$@"; then
        echo "!! $label failed (see above)"; cat "$tv" >&2 || true
        return 1
    fi
    STEAL="$(awk -v a="$before" -v b="$(steal_ticks)" -v hz="$(getconf CLK_TCK)" 'BEGIN{printf "%.2f", (b-a)/hz}')"
    WALL="$(awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,p,":"); s=0; for(i=1;i<=n;i++) s=s*60+p[i]; print s}' "$tv")"
    RSS="$(awk -F': ' '/Maximum resident set size/ {print $2}' "$tv")"
    CPU="$(awk -F': ' '/User time|System time/ {s+=$2} END{printf "%.2f", s}' "$tv")"
    printf '   %-10s wall %8.2f s   %10.0f users/s   peak RSS %8.1f MiB   cpu %6.2f s   steal %5.2f s\n' \
        "$label" "$WALL" "$(awk -v n="$N" -v w="$WALL" 'BEGIN{print (w>0)? n/w : 0}')" \
        "$(awk -v r="$RSS" 'BEGIN{print r/1024}')" "$CPU" "$STEAL"
}

# CPU time the hypervisor gave to other guests ("steal"), all CPUs, in clock ticks; 0
# where /proc/stat does not say. On a shared VM, a run with seconds of steal measures
# the neighbours, not the program.
steal_ticks() { awk '/^cpu / {print $9 + 0; found=1} END{if (!found) print 0}' /proc/stat 2>/dev/null || echo 0; }

RUST_LABEL="authmigrate"
CONVERT=1
if ! "$BIN" convert --help >/dev/null 2>&1; then
    RUST_LABEL="core-join"
    CONVERT=0
    echo "!! '$BIN convert' is not available yet: measuring the core join alone instead"
    echo "   (synthetic users built in process, no NDJSON parsing or output writing)"
    cargo test --release -p authmigrate-core --lib --no-run 2>/dev/null
    TEST_BIN="$(cargo test --release -p authmigrate-core --lib --no-run --message-format=json 2>/dev/null \
        | python3 -c 'import sys,json
for l in sys.stdin:
    m=json.loads(l)
    if m.get("reason")=="compiler-artifact" and m.get("executable") and m["target"]["kind"]==["lib"]: print(m["executable"])' | tail -1)"
fi

R_WALLS=(); R_RSSS=(); R_STEALS=(); P_WALLS=(); P_RSSS=(); P_STEALS=(); RATIOS=()
for round in $(seq "$RUNS"); do
    echo "== round $round of $RUNS"
    if [ "$CONVERT" = 1 ]; then
        rm -f "$DATA/out.ndjson"
        measure authmigrate "$BIN" convert --to authgear "$DATA/users.ndjson" \
            --password-hashes "$DATA/hashes.ndjson" --out "$DATA/out.ndjson"
        echo "   output: $(wc -l < "$DATA/out.ndjson") lines, $(grep -c '"password_hash"' "$DATA/out.ndjson" || true) with a password"
    else
        JOIN_BENCH_USERS="$N" measure core-join "$TEST_BIN" join::tests::million_users_peak_rss \
            --ignored --nocapture --test-threads 1
    fi
    R_WALLS+=("$WALL"); R_RSSS+=("$RSS"); R_STEALS+=("$STEAL")
    rm -f "$DATA/out-python.ndjson"
    measure python python3 benches/convert/baseline.py "$DATA/users.ndjson" "$DATA/hashes.ndjson" "$DATA/out-python.ndjson"
    P_WALLS+=("$WALL"); P_RSSS+=("$RSS"); P_STEALS+=("$STEAL")
    RATIOS+=("$(awk -v a="$WALL" -v b="${R_WALLS[-1]}" 'BEGIN{printf "%.2f", a/b}')")
    printf '   round %d: speed-up %.1fx\n' "$round" "${RATIOS[-1]}"
done

# median VALUES...: the middle value (the mean of the two middle ones for an even count).
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END{print (NR%2)? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
# largest VALUES...
largest() { printf '%s\n' "$@" | sort -g | tail -1; }
R_WALL="$(median "${R_WALLS[@]}")"; P_WALL="$(median "${P_WALLS[@]}")"
R_RSS="$(largest "${R_RSSS[@]}")"; P_RSS="$(largest "${P_RSSS[@]}")"

echo "== summary ($N users, $RUNS rounds: median wall, largest peak RSS)"
printf '   %-12s %8.2f s  %10.0f users/s  %8.1f MiB   (runs: %s; steal: %s)\n' "$RUST_LABEL" "$R_WALL" \
    "$(awk -v n="$N" -v w="$R_WALL" 'BEGIN{print n/w}')" "$(awk -v r="$R_RSS" 'BEGIN{print r/1024}')" "${R_WALLS[*]}" "${R_STEALS[*]}"
printf '   %-12s %8.2f s  %10.0f users/s  %8.1f MiB   (runs: %s; steal: %s)\n' python "$P_WALL" \
    "$(awk -v n="$N" -v w="$P_WALL" 'BEGIN{print n/w}')" "$(awk -v r="$P_RSS" 'BEGIN{print r/1024}')" "${P_WALLS[*]}" "${P_STEALS[*]}"
printf '   speed-up %.1fx (median of the rounds: %s), %.1fx (ratio of the medians); peak RSS %.1fx smaller\n' \
    "$(median "${RATIOS[@]}")" "${RATIOS[*]}" "$(awk -v a="$P_WALL" -v b="$R_WALL" 'BEGIN{print a/b}')" \
    "$(awk -v a="$P_RSS" -v b="$R_RSS" 'BEGIN{print a/b}')"
