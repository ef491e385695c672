#!/usr/bin/env bash
# The README's pictures, drawn by `cairn report` from the store `make demo` left: the lineage of
# the model the first demo run promoted to task-api@production, and its SFT and DPO loss curves
# (training and held-out). Writes docs/images/{lineage,sft-loss,dpo-loss}.svg.
#
# Env: DEMO_DIR (default /tmp/cairn-demo), CAIRN (default .build/release/cairn).
set -euo pipefail
cd "$(dirname "$0")/.."
CAIRN=${CAIRN:-.build/release/cairn}
export CAIRN_STORE=${DEMO_DIR:-/tmp/cairn-demo}/store
[ -d "$CAIRN_STORE" ] || { echo "no demo store at $CAIRN_STORE: run make demo first" >&2; exit 2; }
run=$("$CAIRN" alias history task-api@production --json | python3 -c "
import json, sys
moves = [m for m in json.load(sys.stdin) if m.get('run') is not None]
print(moves[0]['run'] if moves else '')")
[ -n "$run" ] || { echo "no run has promoted task-api@production in $CAIRN_STORE" >&2; exit 2; }
out=$(mktemp -d); trap 'rm -rf "$out"' EXIT
"$CAIRN" report "$run" --out "$out" >/dev/null
mkdir -p docs/images
cp "$out/run-$run-lineage.svg" docs/images/lineage.svg
cp "$out/run-$run-sft-loss.svg" docs/images/sft-loss.svg
cp "$out/run-$run-dpo-loss.svg" docs/images/dpo-loss.svg
echo "docs/images/{lineage,sft-loss,dpo-loss}.svg from run $run of $CAIRN_STORE" >&2
