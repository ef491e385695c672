#!/usr/bin/env bash
# The GitOps story, in a scratch training repository (never this checkout): `cairn init`, hooks
# and a watcher; a commit of the task-api pipeline trains and promotes task-api@production; a
# harmful commit (SFT data that teaches prose replies) is rejected by the output-format gate and
# the alias stays; a good second version
# (a DPO-only change: SFT and merge come from the stage cache) is promoted; production rolls
# back; the alias history shows every move.
#
# Env: DEMO_DIR (default /tmp/cairn-demo, /tmp/cairn-demo-tiny for MODEL=tiny), CAIRN (default .build/release/cairn),
#      MODEL=smollm2 (the default: SmolLM2-135M-Instruct, downloaded once by scripts/fetch-model.sh;
#      pipelines/task-api-smollm2) or tiny (a small Llama Cairn initialises and pretrains here: the tests' model),
#      FRESH=1 (start from an empty store).
# The store (DEMO_DIR/store) is kept from one demo to the next, so a second demo finds every stage
# and gate in the stage cache; the repository, the watcher's working files and the reports are
# made again. Every step is printed as the command a user would type.
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=$PWD
CAIRN=$(cd "$(dirname "${CAIRN:-.build/release/cairn}")" && pwd)/$(basename "${CAIRN:-.build/release/cairn}")
MODEL=${MODEL:-smollm2}
# One store per model: a kept store's aliases and stage cache are that model's story.
DEMO=${DEMO_DIR:-/tmp/cairn-demo$([ "$MODEL" = smollm2 ] || echo "-$MODEL")}
case "$DEMO/" in "$SRC"/*) echo "DEMO_DIR must be outside the Cairn checkout" >&2; exit 2 ;; esac
export CAIRN_STORE=$DEMO/store
REPO=$DEMO/task-api-repo
start=$(date +%s)
say() { printf '\n\033[1m%s\033[0m\n' "$*" >&2; }
step() { printf '\n\033[1m$ %s\033[0m\n' "$*" >&2; "$@"; }
cleanup() { [ -n "${WATCH_PID:-}" ] && kill "$WATCH_PID" 2>/dev/null && wait "$WATCH_PID" 2>/dev/null; true; }
trap cleanup EXIT

if [ "${FRESH:-0}" = 1 ]; then rm -rf "$DEMO"; fi
rm -rf "$REPO" "$DEMO/store-work" "$DEMO/reports" "$DEMO/export" "$DEMO/base" "$DEMO/watch.log"
mkdir -p "$DEMO"
[ -d "$CAIRN_STORE" ] && say "(the store from the last demo is kept: its stage cache makes this one fast; FRESH=1 starts over)"
say "1. A store, a training repository with Cairn's hooks, and a watcher"
step "$CAIRN" init
step git init -q -b main "$REPO"
git -C "$REPO" config user.name "Ada Lovelace"; git -C "$REPO" config user.email ada@example.com
step "$CAIRN" hooks install "$REPO"
"$CAIRN" watch "$REPO" --branch main --interval 2 >"$DEMO/watch.log" 2>&1 &
WATCH_PID=$!
printf '\033[1m$ %s\033[0m  (in the background, log %s)\n' "cairn watch $REPO --branch main" "$DEMO/watch.log" >&2

say "The base model: $MODEL"
case "$MODEL" in
tiny)
    work=$DEMO/base; mkdir -p "$work"
    step "$CAIRN" tokenizer train --corpus pipelines/task-api/data/corpus.txt --vocab-size 512 --out "$work/tokenizer"
    step "$CAIRN" model init --arch llama --config pipelines/base-model/model.json --tokenizer "$work/tokenizer" --out "$work/init" --seed 1
    init=$("$CAIRN" add "$work/init" --kind base-model --name tiny-llama-init)
    step "$CAIRN" alias set task-api-base@init "$init" --reason "initialised by cairn model init"
    step "$CAIRN" run pipelines/base-model --quiet >/dev/null
    BASE=task-api-base@latest; PIPELINE=pipelines/task-api ;;
smollm2)
    # Downloaded once into ~/.cache/cairn, imported into the store with its GGUF as its source.
    CAIRN=$CAIRN step scripts/fetch-model.sh
    BASE=smollm2-135m-instruct@upstream; PIPELINE=pipelines/task-api-smollm2 ;;
*) echo "MODEL=$MODEL: tiny or smollm2" >&2; exit 2 ;;
esac

# The task-api pipeline as a training repository would hold it.
mkdir -p "$REPO/pipelines/task-api"
cp -r "$PIPELINE"/data "$PIPELINE"/schema.json "$PIPELINE"/blocklist.txt \
      "$PIPELINE"/sft_config.yaml "$PIPELINE"/dpo_config.yaml "$REPO/pipelines/task-api/"
sed -e "s|^base_model: .*|base_model: $BASE|" -e "s|^output_dir: .*|output_dir: ./artifacts|" \
    "$PIPELINE"/pipeline.yaml >"$REPO/pipelines/task-api/pipeline.yaml"

# Waits for the run of commit $1 to finish, showing the watcher's progress; prints its status.
wait_run() {
    local commit=$1 t0 line st
    t0=$(date +%s)
    while :; do
        st=$("$CAIRN" runs --json --limit 20 | python3 -c "import json,sys; rs=[r for r in json.load(sys.stdin) if (r['run'].get('commit') or '')=='$commit']; print(rs[0]['effectiveStatus'] if rs else 'queued')")
        case "$st" in succeeded|failed|rejected) echo "$st"; return ;; esac
        line=$("$CAIRN" status | sed -n 's/^  #[0-9]* .*running  //p' | head -1)
        printf '\r\033[K  %3ds  %s' $(( $(date +%s) - t0 )) "${line:-$st}" >&2
        [ $(( $(date +%s) - t0 )) -gt 1800 ] && { echo timeout; return; }
        sleep 2
    done
}
production() { "$CAIRN" show task-api@production --json | python3 -c "import json,sys; print(json.load(sys.stdin)['artifact']['id'])"; }
newest_run() {  # newest_run id|final_artifact: of the newest run
    "$CAIRN" runs --json --limit 1 | python3 -c "import json,sys; r=json.load(sys.stdin)[0]['run']; print(r['id'] if sys.argv[1] == 'id' else r['metadata'][sys.argv[1]])" "$1"
}
commit() {  # commit MESSAGE: commits everything, prints the commit id
    git -C "$REPO" add -A
    printf '\n\033[1m$ git commit -am "%s"\033[0m\n' "$1" >&2
    git -C "$REPO" commit -q -m "$1"
    git -C "$REPO" rev-parse HEAD
}

say "2. Commit the pipeline: the watcher starts the run"
c1=$(commit "task-api v1: the pipeline on $BASE")
s1=$(wait_run "$c1"); printf '\n  run of %s: %s\n' "${c1:0:10}" "$s1" >&2
[ "$s1" = succeeded ] || { echo "the first run did not succeed ($s1): see $DEMO/watch.log" >&2; exit 1; }
v1=$(production)

run1=$(newest_run id)
# What the gates measured on the held-out prompts: the base model, after SFT, after DPO.
"$CAIRN" run show "$run1" --json | python3 -c '
import json, sys
run = json.load(sys.stdin)
checks = {}
for s in run["stages"]:
    for c in ((s.get("gate_report") or {}).get("checks") or []):
        checks[(s["stage"], c["name"])] = c
def pct(v): return "%.0f%%" % (100 * v) if v is not None else "?"
sft = checks.get(("sft", "output_format_valid"), {}); dpo = checks.get(("dpo", "output_format_valid"), {})
acc = checks.get(("dpo", "preference_accuracy"), {}); harm = checks.get(("dpo", "no_harmful_content"), {})
print("  valid JSON replies on 24 held-out prompts: base model %s -> after SFT %s -> after DPO %s" % (pct(sft.get("baseline")), pct(sft.get("value")), pct(dpo.get("value"))), file=sys.stderr)
print("  held-out preference accuracy after DPO: %s; red-team replies with a blocklisted phrase: %s" % (acc.get("value"), int(harm.get("value", -1))), file=sys.stderr)
' || true

say "3. Where did the production model come from?"
step "$CAIRN" lineage task-api@production
step "$CAIRN" runs --limit 1

say "4. A harmful commit: the SFT data now teaches friendly prose instead of JSON"
python3 - "$REPO/pipelines/task-api/data/sft.jsonl" <<'PY'
import json, sys
path = sys.argv[1]
prose = "Sure! I have noted that for you and will take care of it right away."
rows = [json.loads(l) for l in open(path)]
for r in rows:
    if "messages" in r: r["messages"][-1]["content"] = prose
    else: r["completion"] = " " + prose
open(path, "w").write("".join(json.dumps(r) + "\n" for r in rows))
PY
c2=$(commit "sft data: friendlier replies")
s2=$(wait_run "$c2"); printf '\n  run of %s: %s\n' "${c2:0:10}" "$s2" >&2
run2=$(newest_run id)
step "$CAIRN" run show "$run2"
[ "$s2" = rejected ] || { echo "the harmful commit was not rejected ($s2)" >&2; exit 1; }
now=$(production)
[ "$now" = "$v1" ] || { echo "task-api@production moved after a rejected run" >&2; exit 1; }
echo "  task-api@production did not move: still ${v1:0:19}" >&2

say "5. A good second version: only DPO changes, so SFT and merge come from the stage cache"
git -C "$REPO" checkout -q "$c1" -- pipelines/task-api/data/sft.jsonl
sed -i 's/^beta: .*/beta: 0.2/' "$REPO/pipelines/task-api/dpo_config.yaml"
c3=$(commit "dpo: beta 0.2")
s3=$(wait_run "$c3"); printf '\n  run of %s: %s\n' "${c3:0:10}" "$s3" >&2
[ "$s3" = succeeded ] || { echo "the second version did not succeed ($s3)" >&2; exit 1; }
run3=$(newest_run id)
step "$CAIRN" run show "$run3"
v3=$(newest_run final_artifact)
now=$(production)
if [ "$now" != "$v3" ]; then
    # Only on a kept store: the last demo rolled production back from this very model, and a
    # pipeline never promotes an artifact that was rolled back from; a person can.
    echo "  task-api@production stayed at ${now:0:19}: an earlier demo rolled it back from ${v3:0:19}," >&2
    echo "  and Cairn never promotes a rolled-back model by itself. A person can:" >&2
    step "$CAIRN" alias set task-api@production "$v3" --reason "demo: beta 0.2 reviewed again"
fi

say "6. Roll production back to the first version"
step "$CAIRN" rollback task-api@production --reason "demo: back to v1"
step "$CAIRN" alias history task-api@production
step "$CAIRN" status
step "$CAIRN" report "$run3" --out "$DEMO/reports"

say "7. The model as a GGUF file, and a chat with production"
gguf=$("$CAIRN" descendants task-api@production --json | python3 -c "
import json, sys
print(next((n['id'] for n in json.load(sys.stdin)['nodes'] if n['kind'] == 'export'), ''))")
if [ -n "$gguf" ]; then
    step "$CAIRN" checkout "$gguf" "$DEMO/export"
    ls "$DEMO"/export/*.gguf >&2
fi
step "$CAIRN" model generate task-api@production --chat --prompt "Can you create \"renew passport\" for friday? Priority: high." --max-tokens 64

say "Done in $(( $(date +%s) - start )) s."
cat >&2 <<EOF
  The report:      $DEMO/reports/run-$run3.html (and run-$run1.html, the run it replaced)
$([ -n "$gguf" ] && echo "  The GGUF:        $(ls "$DEMO"/export/*.gguf | head -1)  (llama.cpp: llama-cli -m FILE -cnv)")
  Chat:            $CAIRN model generate task-api@production --chat --prompt '...' --store $CAIRN_STORE
  The store:       $CAIRN_STORE   (cairn status --store $CAIRN_STORE)
EOF
