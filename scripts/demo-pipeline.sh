#!/usr/bin/env bash
# The main job: the task-api example end to end. A tokenizer trained on the example's corpus,
# a tiny Llama initialised from it (task-api-base@init), pipelines/base-model pretrains it
# (promoted to task-api-base@latest), pipelines/task-api runs SFT -> merge -> DPO behind its
# three gates and promotes task-api@production; then the lineage of that model.
# Store: $CAIRN_STORE, else ./store. Work files: ./artifacts. A second run is served by the stage cache.
set -euo pipefail
cd "$(dirname "$0")/.."
CAIRN=${CAIRN:-.build/release/cairn}
export CAIRN_STORE=${CAIRN_STORE:-$PWD/store}
step() { printf '\n\033[1m$ %s\033[0m\n' "$*" >&2; "$@"; }
start=$(date +%s)

step "$CAIRN" init
mkdir -p artifacts/demo
step "$CAIRN" tokenizer train --corpus pipelines/task-api/data/corpus.txt --vocab-size 512 --out artifacts/demo/tokenizer
step "$CAIRN" model init --arch llama --config pipelines/base-model/model.json --tokenizer artifacts/demo/tokenizer \
  --out artifacts/demo/init --seed 1
init=$(step "$CAIRN" add artifacts/demo/init --kind base-model --name task-api-base-init)
echo "$init"
step "$CAIRN" alias set task-api-base@init "$init" --reason "demo: initialised by cairn model init"
step "$CAIRN" run pipelines/base-model
step "$CAIRN" run pipelines/task-api
step "$CAIRN" lineage task-api@production
step "$CAIRN" runs --limit 5
echo "demo finished in $(( $(date +%s) - start )) s" >&2
