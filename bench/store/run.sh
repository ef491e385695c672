#!/usr/bin/env bash
# The store benchmarks (`make bench-store`): ingest (bench/store/ingest.sh), lineage
# (bench/store/lineage.sh), then the journal's cost against the commit before it
# (bench/store/journal.sh, which builds that commit too). Env: BUILD_PATH (default .build), WORK (default bench/store/work),
# REPS, LINEAGE_REPS; see each script. The combined report is written to $WORK/report.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
export BUILD_PATH=${BUILD_PATH:-.build}
export WORK=${WORK:-bench/store/work}
if [ "${SKIP_BUILD:-0}" != 1 ]; then
    swift build -c release --scratch-path "$BUILD_PATH" >&2
fi
export SKIP_BUILD=1
mkdir -p "$WORK"
{
    echo "## Store benchmarks: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(uname -r), $(swift --version 2>/dev/null | head -1)"
    echo
    echo "Source: commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- Sources Package.swift 2>/dev/null || echo ' with uncommitted changes under Sources/ or Package.swift')"
    echo
    bench/store/ingest.sh
    echo
    bench/store/lineage.sh
    echo
    SKIP_BUILD=0 bench/store/journal.sh
} | tee "$WORK/report.md.tmp"
mv "$WORK/report.md.tmp" "$WORK/report.md"
