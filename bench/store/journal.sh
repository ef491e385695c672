#!/usr/bin/env bash
# What the journal costs on the write path: the same commands timed with a cairn built from a
# commit before the journal (BEFORE, default ce388a7) and with this tree's cairn, alternating
# repetition by repetition in one run so that both see the same machine and disk.
#
#   - add one small file (a process: blob fsync, index commit; with the journal one more fdatasync)
#   - add a directory of 1,000 files of 4 KiB (one index transaction, one journal record)
#   - alias set (one index transaction: an alias move)
#   - add the same small file again (already stored: no index change, no journal record)
#   - in one process (bench-store-lineage on a synthetic index of LINEAGE_ARTIFACTS artifacts):
#     setAlias and rollback, each one write transaction, p50 over LINEAGE_REPS
#
# Env: BEFORE (git revision, default ce388a7), BUILD_PATH (default .build), WORK (default
#      bench/store/work), REPS (default 5), N (commands per repetition for the one-line
#      commands, default 40), LINEAGE_ARTIFACTS (default 100000), LINEAGE_REPS (default 200),
#      SKIP_BUILD=1 (use the binaries already built).
# Writes $WORK/journal-report.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
BEFORE=${BEFORE:-ce388a7}
BUILD_PATH=${BUILD_PATH:-.build}
WORK=${WORK:-bench/store/work}
REPS=${REPS:-5}
N=${N:-40}
LINEAGE_ARTIFACTS=${LINEAGE_ARTIFACTS:-100000}
LINEAGE_REPS=${LINEAGE_REPS:-200}
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
OLD_TREE=$WORK/before-$BEFORE
if [ "${SKIP_BUILD:-0}" != 1 ]; then
    if [ ! -d "$OLD_TREE" ]; then git worktree add -f "$OLD_TREE" "$BEFORE" >&2; fi
    for p in cairn bench-store-lineage; do
        swift build -c release --product $p --scratch-path "$BUILD_PATH" >&2
        (cd "$OLD_TREE" && swift build -c release --product $p) >&2
    done
fi
NEW=$(cd "$BUILD_PATH/release" && pwd)/cairn
OLD=$OLD_TREE/.build/release/cairn
for b in "$NEW" "$OLD"; do [ -x "$b" ] && [ -x "$(dirname "$b")/bench-store-lineage" ] || { echo "no cairn or bench-store-lineage beside $b" >&2; exit 1; }; done

RUN=$WORK/journal-run-$$
mkdir -p "$RUN/small" "$RUN/dir"
trap 'rm -rf "$RUN"' EXIT
for i in $(seq 1 "$N"); do printf 'small file %d\n' "$i" >"$RUN/small/f$i.txt"; done
head -c $((1000 * 4096)) /dev/urandom | split -b 4096 -a 3 -d - "$RUN/dir/f"
RAW=$RUN/times.tsv
: >"$RAW"

ns() { date +%s%N; }
bench_one() {  # bench_one LABEL BINARY REP
    local label=$1 bin=$2 rep=$3 store=$RUN/store-$1-$3 t0 t1 i
    "$bin" init --store "$store" >/dev/null
    sync
    t0=$(ns); for i in $(seq 1 "$N"); do "$bin" add "$RUN/small/f$i.txt" --kind dataset --store "$store" >/dev/null; done; t1=$(ns)
    printf '%s\tadd one small file\t%s\t%s\n' "$label" "$rep" $(((t1 - t0) / N)) >>"$RAW"
    sync
    t0=$(ns); "$bin" add "$RUN/dir" --kind dataset --store "$store" >/dev/null; t1=$(ns)
    printf '%s\tadd 1,000 files of 4 KiB\t%s\t%s\n' "$label" "$rep" $((t1 - t0)) >>"$RAW"
    local a b; a=$("$bin" add "$RUN/small/f1.txt" --kind dataset --store "$store"); b=$("$bin" add "$RUN/small/f2.txt" --kind dataset --store "$store")
    sync
    t0=$(ns); for i in $(seq 1 "$N"); do "$bin" alias set bench@prod "$([ $((i % 2)) = 0 ] && echo "$a" || echo "$b")" --store "$store" >/dev/null; done; t1=$(ns)
    printf '%s\talias set (one move)\t%s\t%s\n' "$label" "$rep" $(((t1 - t0) / N)) >>"$RAW"
    t0=$(ns); for i in $(seq 1 "$N"); do "$bin" add "$RUN/small/f1.txt" --kind dataset --store "$store" >/dev/null 2>&1; done; t1=$(ns)
    printf '%s\tadd again (already stored)\t%s\t%s\n' "$label" "$rep" $(((t1 - t0) / N)) >>"$RAW"
}
bench_lib() {  # bench_lib LABEL BINARY REP: alias moves in one process on a synthetic index
    local label=$1 bin=$2 rep=$3 store=$RUN/lineage-$1-$3 row op
    "$bin" init --store "$store" >/dev/null
    python3 bench/store/gen_lineage_index.py --store "$store" --artifacts "$LINEAGE_ARTIFACTS" --depth 50 >/dev/null
    sync
    "$(dirname "$bin")/bench-store-lineage" --store "$store" --reps "$LINEAGE_REPS" >"$store.out"
    for op in "setAlias(_:to:reason:)" "rollback(_:)"; do
        row=$(grep -F "| $op | " "$store.out" | head -1)
        printf '%s\tin one process: %s\t%s\t%s\n' "$label" "$op" "$rep" "$(echo "$row" | awk -F'|' '{printf "%d", $4 * 1e6}')" >>"$RAW"
    done
    rm -rf "$store"
}
for rep in $(seq 1 "$REPS"); do
    if [ $((rep % 2)) = 1 ]; then bench_one before "$OLD" "$rep"; bench_one journal "$NEW" "$rep"
    else bench_one journal "$NEW" "$rep"; bench_one before "$OLD" "$rep"; fi
done
for rep in 1 2 3; do
    if [ $((rep % 2)) = 1 ]; then bench_lib before "$OLD" "$rep"; bench_lib journal "$NEW" "$rep"
    else bench_lib journal "$NEW" "$rep"; bench_lib before "$OLD" "$rep"; fi
done

median() {  # median LABEL OP  (ns)
    awk -F'\t' -v l="$1" -v o="$2" '$1 == l && $2 == o {print $4}' "$RAW" | sort -n |
        awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : int((a[NR / 2] + a[NR / 2 + 1]) / 2)}'
}
{
    echo "### The journal's cost ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'))"
    echo
    echo "Before: commit $BEFORE; journal: $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- Sources 2>/dev/null || echo ' with uncommitted changes'). Median of $REPS repetitions, alternating; per command (each a process), $N commands per repetition for the one-line rows."
    echo
    echo "| command | before, ms | with the journal, ms | journal / before |"
    echo "|---|---:|---:|---:|"
    for op in "add one small file" "add 1,000 files of 4 KiB" "alias set (one move)" "add again (already stored)" \
              "in one process: setAlias(_:to:reason:)" "in one process: rollback(_:)"; do
        b=$(median before "$op"); j=$(median journal "$op")
        awk -v o="$op" -v b="$b" -v j="$j" 'BEGIN {printf "| %s | %.3f | %.3f | %.2f |\n", o, b / 1e6, j / 1e6, j / b}'
    done
    echo
    echo "In-process rows: p50 of $LINEAGE_REPS calls of bench-store-lineage on a synthetic index of $LINEAGE_ARTIFACTS artifacts (bench/store/gen_lineage_index.py), median of 3 runs per build."
} | tee "$WORK/journal-report.md"
