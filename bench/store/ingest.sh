#!/usr/bin/env bash
# Ingest benchmark: `cairn add` against sha256sum, openssl dgst -sha256 and `dvc add`, same run,
# same files, page cache warm. Two sets: 1 GiB as 16 files of 64 MiB, and 10,000 files of 4 KiB.
#
# Env: BUILD_PATH (default .build)  swift build scratch path; the cairn binary is $BUILD_PATH/release/cairn
#      WORK       (default bench/store/work)  data, stores and dvc projects (git-ignored)
#      REPS       (default 3)  repetitions per tool and set; the median is reported
#      SKIP_BUILD=1  use the binary already built
#      KEEP=1     keep the stores and dvc projects of this run (under $WORK/run-PID)
#
# Nothing is deleted while timing: this VM's ext4 has no journal, and after many files are
# deleted its inode allocator skips the recently freed inodes (ext4 recently_deleted(): 60 s, up
# to 5 min more while their inode-table block is dirty), scanning each group again for every new
# file. Creating 10,000 files then costs seconds of system time, for cairn and dvc alike. Every
# repetition therefore gets its own directories, removed only at the end. Running this script
# again within a few minutes of a previous run's cleanup can still show that effect.
# Goals (issue): faster than sha256sum on the big files; at least 3x faster than `dvc add` on both sets.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
BUILD_PATH=${BUILD_PATH:-.build}
WORK=${WORK:-bench/store/work}
REPS=${REPS:-3}
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
export DVC_NO_ANALYTICS=1   # no telemetry daemon during timing; dvc's cache settings stay default

if [ "${SKIP_BUILD:-0}" != 1 ]; then
    swift build -c release --scratch-path "$BUILD_PATH" >&2
fi
CAIRN=$(cd "$BUILD_PATH/release" && pwd)/cairn
[ -x "$CAIRN" ] || { echo "no cairn binary at $CAIRN" >&2; exit 1; }
for t in sha256sum openssl dvc; do command -v $t >/dev/null || { echo "ingest.sh: $t not found on PATH" >&2; exit 1; }; done

DATA=$WORK/data
RUN=$WORK/run-$$
mkdir -p "$RUN"
cleanup() { if [ "${KEEP:-0}" != 1 ]; then rm -rf "$RUN"; fi; }
trap cleanup EXIT
LOG=$WORK/ingest.log
RAW=$WORK/ingest-times.tsv
: >"$LOG"; : >"$RAW"

# --- Data: deterministic (AES-128-CTR keystream of zeros, fixed key, one IV per file/stream) ---
gen() {  # gen BYTES IV FILE
    # openssl dies of SIGPIPE when head has enough: check the size instead of the status.
    (set +o pipefail; openssl enc -aes-128-ctr -nosalt -K 000102030405060708090a0b0c0d0e0f -iv "$2" </dev/zero 2>/dev/null | head -c "$1" >"$3")
    [ "$(stat -c %s "$3")" = "$1" ] || { echo "could not generate $3" >&2; exit 1; }
}
if [ ! -f "$DATA/.complete-v2" ]; then
    echo "generating data under $DATA ..." >&2
    rm -rf "$DATA"; mkdir -p "$DATA/big" "$DATA/small"
    for i in $(seq -w 0 15); do gen $((64 << 20)) "$(printf '%032x' $((10#$i + 1)))" "$DATA/big/part-$i.bin"; done
    gen $((10000 * 4096)) "$(printf '%032x' 1000)" "$DATA/small.stream"
    (cd "$DATA/small" && split -b 4096 -a 4 -d "$DATA/small.stream" f && rm "$DATA/small.stream")
    touch "$DATA/.complete-v2"
fi
nbig=$(find "$DATA/big" -type f | wc -l); nsmall=$(find "$DATA/small" -type f | wc -l)
[ "$nbig" = 16 ] && [ "$nsmall" = 10000 ] || { echo "bad data set ($nbig, $nsmall files); rm -rf $DATA" >&2; exit 1; }
bytes_of() { find "$1" -type f -printf '%s\n' | awk '{s += $1} END {print s}'; }

# --- Timing: wall time of one command, nanoseconds; its output goes to the log ---
timeit() {  # timeit SET TOOL REP CMD...
    local set=$1 tool=$2 rep=$3; shift 3
    sync
    local t0 t1
    t0=$(date +%s%N)
    "$@" >>"$LOG" 2>&1 || { echo "FAILED: $tool on $set: $*  (see $LOG)" >&2; tail -5 "$LOG" >&2; exit 1; }
    t1=$(date +%s%N)
    printf '%s\t%s\t%s\t%s\n' "$set" "$tool" "$rep" $((t1 - t0)) >>"$RAW"
}
warm() { find "$1" -type f -print0 | xargs -0 cat >/dev/null; }  # read every file once

sha_seq() { find "$1" -type f -print0 | xargs -0 sha256sum >/dev/null; }
sha_par() { find "$1" -type f -print0 | xargs -0 -P 2 -n "$2" sha256sum >/dev/null; }
ossl_seq() { find "$1" -type f -print0 | xargs -0 openssl dgst -sha256 >/dev/null; }
ossl_par() { find "$1" -type f -print0 | xargs -0 -P 2 -n "$2" openssl dgst -sha256 >/dev/null; }
dvc_add() { (cd "$1" && dvc add -q data); }
cp_sync() { cp -r "$1" "$2" && sync -f "$2"; }

DVC_CACHE_TYPE=""
run_set() {  # run_set NAME DIR FILES_PER_XARGS_CHUNK_FOR_P2
    local set=$1 src=$2 half=$3 rep store proj
    warm "$src"
    for rep in $(seq 1 "$REPS"); do
        # cairn add into a fresh, empty store
        store=$RUN/store-$set-$rep; "$CAIRN" init --store "$store" >>"$LOG"
        timeit "$set" "cairn add" "$rep" "$CAIRN" add "$src" --kind dataset --store "$store"
        # cairn add again into the store that now holds the content: hashes only
        timeit "$set" "cairn add (already stored)" "$rep" "$CAIRN" add "$src" --kind dataset --store "$store"
        warm "$src"
        timeit "$set" "sha256sum" "$rep" sha_seq "$src"
        timeit "$set" "openssl dgst -sha256" "$rep" ossl_seq "$src"
        timeit "$set" "sha256sum, xargs -P 2" "$rep" sha_par "$src" "$half"
        timeit "$set" "openssl dgst -sha256, xargs -P 2" "$rep" ossl_par "$src" "$half"
        # The disk's share: copy the files and make them durable, no hashing.
        timeit "$set" "cp -r + sync" "$rep" cp_sync "$src" "$RUN/cp-$set-$rep"
        # dvc: a fresh project (unique path: dvc keeps per-project state under its site cache dir),
        # the data copied into it as a user's workspace, default config; only `dvc add` is timed.
        proj=$RUN/dvc-$set-$rep; mkdir -p "$proj"
        (cd "$proj" && dvc init -q --no-scm)
        cp -a "$src" "$proj/data"
        warm "$proj/data"
        timeit "$set" "dvc add" "$rep" dvc_add "$proj"
        # dvc does not fsync what it copies into .dvc/cache (strace: only its state databases);
        # the writeback it leaves behind is timed separately, to compare at equal durability.
        timeit "$set" "sync after dvc add" "$rep" sync
        if [ -z "$DVC_CACHE_TYPE" ]; then
            local conf f cf
            conf=$(cd "$proj" && dvc config cache.type 2>/dev/null || true)
            f=$(find "$proj/data" -type f | head -1)
            cf=$(find "$proj/.dvc/cache" -type f -size "$(stat -c %s "$f")c" | head -1)
            if [ -L "$f" ]; then how=symlink
            elif [ "$(stat -c %i "$f")" = "$(stat -c %i "$cf")" ]; then how=hardlink
            else how="copy (separate inode; $(stat -f -c %T "$proj") has no reflink)"; fi
            DVC_CACHE_TYPE="cache.type ${conf:-unset (default reflink,copy)}; files went to the cache as: $how"
        fi
    done
}

BIG_BYTES=$(bytes_of "$DATA/big"); SMALL_BYTES=$(bytes_of "$DATA/small")
run_set big "$DATA/big" 8
run_set small "$DATA/small" 5000

# --- Report ---
median_ns() {  # median_ns SET TOOL; TOOL "dvc add + sync" sums the two per repetition
    awk -F'\t' -v s="$1" -v t="$2" '$1 == s && (t == "dvc add + sync" ? ($2 == "dvc add" || $2 == "sync after dvc add") : $2 == t) {n[$3] += $4}
        END {for (r in n) print n[r]}' "$RAW" | sort -n | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : int((a[NR / 2] + a[NR / 2 + 1]) / 2)}'; }
reps_s() {  # every repetition of SET TOOL, in run order, seconds
    awk -F'\t' -v s="$1" -v t="$2" '$1 == s && (t == "dvc add + sync" ? ($2 == "dvc add" || $2 == "sync after dvc add") : $2 == t) {if (!($3 in n)) o[++k] = $3; n[$3] += $4}
        END {for (i = 1; i <= k; i++) printf "%s%.2f", (i > 1 ? " " : ""), n[o[i]] / 1e9}' "$RAW"; }
tools=("cairn add" "cairn add (already stored)" "sha256sum" "openssl dgst -sha256" "sha256sum, xargs -P 2" "openssl dgst -sha256, xargs -P 2" "cp -r + sync" "dvc add" "dvc add + sync")
declare -A MED
report() {  # report SET TITLE BYTES
    local set=$1 title=$2 bytes=$3 t c
    echo
    echo "**$title** ($(awk -v b="$bytes" 'BEGIN {printf "%.1f MB", b / 1e6}'), median of $REPS)"
    echo
    echo "| tool | median s | MB/s | peer time / cairn add time | peer time / cairn re-add time | each run, s |"
    echo "|---|---:|---:|---:|---:|---|"
    c=$(median_ns "$set" "cairn add"); r=$(median_ns "$set" "cairn add (already stored)")
    for t in "${tools[@]}"; do
        local m; m=$(median_ns "$set" "$t"); MED["$set/$t"]=$m
        awk -v t="$t" -v m="$m" -v b="$bytes" -v c="$c" -v r="$r" -v all="$(reps_s "$set" "$t")" 'BEGIN {
            ratio = (t ~ /^cairn/) ? "-" : sprintf("%.2f", m / c); rr = (t ~ /^cairn/) ? "-" : sprintf("%.2f", m / r)
            printf "| %s | %.3f | %.0f | %s | %s | %s |\n", t, m / 1e9, b / 1e6 / (m / 1e9), ratio, rr, all }'
    done
}
{
    echo "### Ingest ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'))"
    report big "1 GiB as 16 files of 64 MiB" "$BIG_BYTES"
    report small "10,000 files of 4 KiB" "$SMALL_BYTES"
    echo
    echo "- Nothing is deleted while timing (each repetition has its own store, project and copy; removed at the end): see the note on ext4 inode allocation in the script."
    echo "- Wall time per command; page cache warm for every tool (every file read once before timing, \`sync\` before each timed command)."
    echo "- sha256sum / openssl: \`find DIR -type f -print0 | xargs -0 sha256sum\` (resp. \`openssl dgst -sha256\`), one process at a time; the \"xargs -P 2\" rows split the list over 2 processes (2 cores)."
    echo "- cairn add: a fresh store (\`cairn init\`) per repetition; \"already stored\": the same add again into that store."
    echo "- dvc $(dvc --version): fresh \`dvc init --no-scm\` project per repetition, data copied in (\`cp -a\`, untimed), \`dvc add data\` timed; $DVC_CACHE_TYPE. DVC_NO_ANALYTICS=1."
    echo "- cp -r + sync: \`cp -r\` of the set to a new directory, then \`sync -f\`: the cost of writing the bytes durably, without hashing."
    echo "- cairn makes its blobs durable before it returns (fsync per file for <= 16 files, else two syncfs). dvc does not fsync what it copies into its cache (strace shows fdatasync only on its state databases under /var/tmp/dvc): \"dvc add + sync\" adds a \`sync\` run right after it (per repetition, then the median), to compare at equal durability."
    echo "- MB = 10^6 bytes. Ratios above 1 mean cairn is faster."
    echo
    awk -v c="${MED[big/cairn add]}" -v s="${MED[big/sha256sum]}" 'BEGIN {printf "- Goal: faster than sha256sum on the big files: %s (cairn %.3f s, sha256sum %.3f s)\n", (c < s) ? "MET" : "NOT MET", c / 1e9, s / 1e9}'
    for set in big small; do
        awk -v set=$set -v c="${MED[$set/cairn add]}" -v d="${MED[$set/dvc add]}" 'BEGIN {printf "- Goal: at least 3x faster than dvc add on the %s set: %s (%.2fx)\n", set, (d / c >= 3) ? "MET" : "NOT MET", d / c}'
    done
} | tee "$WORK/ingest-report.md"
echo >&2; echo "raw times: $RAW; command output: $LOG" >&2
