#!/usr/bin/env bash
# The store end to end on a throwaway store: add a dataset, a config and a "base model",
# record a training step by hand, promote it, roll back, check everything.
set -euo pipefail
CAIRN=${CAIRN:-.build/release/cairn}
work=$(mktemp -d "${TMPDIR:-/tmp}/cairn-demo.XXXXXX")
trap 'chmod -R u+w "$work"; rm -rf "$work"' EXIT
export CAIRN_STORE="$work/store"
step() { printf '\n\033[1m$ %s\033[0m\n' "$*" >&2; "$@"; }

mkdir -p "$work/data" "$work/base" "$work/adapter-v1" "$work/adapter-v2"
for i in $(seq 1 50); do
  printf '{"prompt":"Create a task %d","completion":"{\\"action\\":\\"create\\",\\"id\\":%d}"}\n' "$i" "$i"
done > "$work/data/sft.jsonl"
printf 'learning_rate: 2e-4\nlora_r: 16\nepochs: 3\n' > "$work/sft_config.yaml"
printf '{"architectures":["LlamaForCausalLM"],"hidden_size":64}\n' > "$work/base/config.json"
head -c 1048576 /dev/zero > "$work/base/model.safetensors"
echo v1 > "$work/adapter-v1/adapter_model.safetensors"
echo v2 > "$work/adapter-v2/adapter_model.safetensors"

step "$CAIRN" init
data=$(step "$CAIRN" add "$work/data/sft.jsonl" --kind dataset); echo "$data"
cfg=$(step "$CAIRN" add "$work/sft_config.yaml" --kind config); echo "$cfg"
base=$(step "$CAIRN" add "$work/base" --kind base-model --name tiny-llama); echo "$base"
v1=$(step "$CAIRN" add "$work/adapter-v1" --kind adapter --used data="$data" --used config="$cfg" --used base_model="$base"); echo "$v1"
v2=$(step "$CAIRN" add "$work/adapter-v2" --kind adapter --used data="$data" --used config="$cfg" --used base_model="$base"); echo "$v2"
step "$CAIRN" artifacts
step "$CAIRN" lineage "$v2"
step "$CAIRN" descendants "$data"
step "$CAIRN" alias set task-api@production "$v1" --reason "first release"
step "$CAIRN" alias set task-api@production "$v2" --reason "retrained"
step "$CAIRN" rollback task-api@production --reason "v2 regressed"
step "$CAIRN" alias history task-api@production
step "$CAIRN" checkout task-api@production "$work/deployed"
step "$CAIRN" fsck

# The training core: a tokenizer and a tiny Llama, kept in the store, run by reference.
for i in $(seq 1 300); do printf '{"action":"create","title":"task %d","priority":"high"}\n' "$i"; done > "$work/corpus.txt"
step "$CAIRN" tokenizer train --corpus "$work/corpus.txt" --vocab-size 400 --out "$work/tok"
printf '{"hidden_size":64,"intermediate_size":128,"num_hidden_layers":2,"num_attention_heads":4,"num_key_value_heads":2}\n' > "$work/tiny.json"
step "$CAIRN" model init --arch llama --config "$work/tiny.json" --tokenizer "$work/tok" --out "$work/tiny-llama" --seed 1
model=$(step "$CAIRN" add "$work/tiny-llama" --kind base-model --name tiny-llama-init); echo "$model"
step "$CAIRN" model tokenize "$model" --text '{"action":"create"}'
step "$CAIRN" model logprobs "$model" --text '{"action":"create"}'
step "$CAIRN" model generate "$model" --prompt '{"action":' --max-tokens 12
