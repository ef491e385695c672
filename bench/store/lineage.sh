#!/usr/bin/env bash
# Lineage benchmark: a synthetic index of 1,000,000 artifacts (bench/store/gen_lineage_index.py),
# then bench-store-lineage times ancestors/descendants and alias moves through CairnStore.
#
# Env: BUILD_PATH (default .build)  swift build scratch path
#      WORK       (default bench/store/work)  the synthetic store goes to $WORK/lineage-store
#      ARTIFACTS  (default 1000000)  DEPTH (default 50)  LINEAGE_REPS (default 300, at least 200)
#      SKIP_BUILD=1  use the binaries already built
# Goals (issue): ancestors and descendants of a node 50 levels deep p50 < 10 ms; alias set and rollback < 5 ms.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD_PATH=${BUILD_PATH:-.build}
WORK=${WORK:-bench/store/work}
ARTIFACTS=${ARTIFACTS:-1000000}
DEPTH=${DEPTH:-50}
LINEAGE_REPS=${LINEAGE_REPS:-300}
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)

if [ "${SKIP_BUILD:-0}" != 1 ]; then
    swift build -c release --scratch-path "$BUILD_PATH" >&2
fi
BIN=$(cd "$BUILD_PATH/release" && pwd)
STORE=$WORK/lineage-store
rm -rf "$STORE"
"$BIN/cairn" init --store "$STORE" >&2
GEN=$(python3 bench/store/gen_lineage_index.py --store "$STORE" --artifacts "$ARTIFACTS" --depth "$DEPTH")
sync  # the generator writes without fsync: flush it now, not in the first timed checkpoint
{
    echo "### Lineage ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'))"
    echo
    echo "Index: $GEN"
    echo
    "$BIN/bench-store-lineage" --store "$STORE" --reps "$LINEAGE_REPS"
    # The same queries end to end through the CLI (process start, store open, printing the tree).
    deep=$(head -1 "$STORE/bench-nodes.tsv" | cut -f2); root=$(head -1 "$STORE/bench-nodes.tsv" | cut -f1)
    cli_ms() {  # median wall ms of 21 runs of: cairn ARGS...
        local i t0 t1
        for i in $(seq 21); do
            t0=$(date +%s%N); "$BIN/cairn" "$@" --store "$STORE" >/dev/null; t1=$(date +%s%N)
            echo $(((t1 - t0) / 1000))
        done | sort -n | awk '{a[NR] = $1} END {printf "%.1f", a[11] / 1000}'
    }
    echo
    echo "CLI, not a goal (median of 21 runs, whole process): \`cairn lineage <node 50 deep>\` $(cli_ms lineage "$deep") ms, \`cairn descendants <chain root>\` $(cli_ms descendants "$root") ms, \`cairn --help\` $(cli_ms --help) ms."
    echo
    echo "- Times are wall time of one library call in one process (\`ArtifactStore(root:)\` opened once), a different chain per repetition, after 10 warm-up calls; index.db in the page cache (just written). Percentiles are nearest-rank."
    echo "- Alias moves: one alias set to the deep node of another chain, then rolled back (default target), each a write transaction with the library's settings (WAL, synchronous=FULL)."
} | tee "$WORK/lineage-report.md"
