#!/usr/bin/env bash
# The 1,000,000-user verify benchmark: `authmigrate verify` (Auth0 export against the
# Authgear export of the same users) against the straightforward Python script
# (baseline.py), on the same files, one after the other.
#
#   benches/verify/run.sh            # N=1000000 by default
#   N=100000 benches/verify/run.sh   # smaller run
#
# Prints wall time and peak RSS (Maximum resident set size) of each, and both summaries
# (they must agree: 10 different users, 4 missing, 1000 extra at N=1000000). Data is
# generated once under target/bench-data/verify (regenerated when N changes).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
N="${N:-1000000}"
DATA="$ROOT/target/bench-data/verify"
BIN="$ROOT/target/release/authmigrate"
mkdir -p "$DATA"

echo "== building (release)"
cargo build --release -p authmigrate-cli

if [ ! -s "$DATA/source.ndjson" ] || [ "$(cat "$DATA/n" 2>/dev/null)" != "$N" ]; then
    echo "== generating $N users into $DATA"
    python3 benches/verify/gen.py "$N" "$DATA/source.ndjson" "$DATA/target.ndjson"
    echo "$N" > "$DATA/n"
fi
echo "== input: $(wc -l < "$DATA/source.ndjson") source users ($(du -h "$DATA/source.ndjson" | cut -f1)), $(wc -l < "$DATA/target.ndjson") target users ($(du -h "$DATA/target.ndjson" | cut -f1))"

measure() {
    local label="$1"; shift
    echo "== $label: $*"
    sync
    /usr/bin/time -v -o "$DATA/$label.time" "$@" > "$DATA/$label.out" 2> "$DATA/$label.err" || true
    local wall rss
    wall="$(grep 'Elapsed (wall clock)' "$DATA/$label.time" | awk '{print $NF}')"
    rss="$(grep 'Maximum resident set size' "$DATA/$label.time" | awk '{print $NF}')"
    echo "   wall $wall, peak RSS $((rss / 1024)) MiB"
    tail -n 3 "$DATA/$label.err"
}

measure authmigrate "$BIN" -v verify --from auth0 --to authgear \
    --source-file "$DATA/source.ndjson" --target-file "$DATA/target.ndjson" \
    --custom-attribute user_metadata.plan=plan --skip roles,groups \
    --work-dir "$DATA/work" --report "$DATA/report.json"
measure baseline python3 benches/verify/baseline.py "$DATA/source.ndjson" "$DATA/target.ndjson"
