#!/usr/bin/env bash
# llama.cpp's vocab-only GGUFs of Qwen2 and Llama 3 (its tokenizer test files), for the chat-template
# id tests: taken from llama-cpp-python 0.3.36's source distribution on PyPI (76 MB, downloaded
# once into $CAIRN_CACHE, default ~/.cache/cairn; every file's sha256 checked). Prints the folder.
set -euo pipefail
CACHE=${CAIRN_CACHE:-$HOME/.cache/cairn}
DIR=$CACHE/vocab
SDIST=llama_cpp_python-0.3.36.tar.gz
SDIST_URL=https://files.pythonhosted.org/packages/ec/e9/e7de2b0463ea3ffbf0ede6cb21b58c1258a8f6521aae45ca773a59fe7cf3/$SDIST
SDIST_SHA256=832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e
declare -A FILES=([ggml-vocab-qwen2.gguf]=44c2f46b715f585c6ab513970e8a006bfa5badd6108560054921cf598d154d8c [ggml-vocab-llama-bpe.gguf]=97272e430d53bc7688f52d5e0ad8ea8f163ede9f1bbd1694feaa504797d5d96e)
. "$(dirname "$0")/sha256.sh"

ok=1
for f in "${!FILES[@]}"; do [ -f "$DIR/$f" ] && [ "$(sha "$DIR/$f")" = "${FILES[$f]}" ] || ok=0; done
if [ $ok = 1 ]; then echo "$DIR"; exit 0; fi
mkdir -p "$DIR"
if [ ! -f "$CACHE/$SDIST" ] || [ "$(sha "$CACHE/$SDIST")" != "$SDIST_SHA256" ]; then
  echo "downloading $SDIST (76 MB) from PyPI into $CACHE" >&2
  if ! python3 - "$SDIST_URL" "$CACHE/$SDIST.tmp" <<'PY'
import shutil, sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=60) as r, open(sys.argv[2], "wb") as f:
    shutil.copyfileobj(r, f, 1 << 20)
PY
  then
    rm -f "$CACHE/$SDIST.tmp"
    echo "fetch-vocab: cannot download $SDIST from PyPI (files.pythonhosted.org)" >&2
    exit 1
  fi
  mv "$CACHE/$SDIST.tmp" "$CACHE/$SDIST"
  [ "$(sha "$CACHE/$SDIST")" = "$SDIST_SHA256" ] || { echo "fetch-vocab: $SDIST has the wrong sha256" >&2; rm -f "$CACHE/$SDIST"; exit 1; }
fi
python3 - "$CACHE/$SDIST" "$DIR" "${!FILES[@]}" <<'PY'
import os, sys, tarfile
sdist, out, names = sys.argv[1], sys.argv[2], sys.argv[3:]
with tarfile.open(sdist) as t:
    for n in names:
        src = t.extractfile(f"llama_cpp_python-0.3.36/vendor/llama.cpp/models/{n}")
        with open(os.path.join(out, n + ".tmp"), "wb") as f:
            f.write(src.read())
        os.replace(os.path.join(out, n + ".tmp"), os.path.join(out, n))
PY
for f in "${!FILES[@]}"; do [ "$(sha "$DIR/$f")" = "${FILES[$f]}" ] || { echo "fetch-vocab: $f has the wrong sha256" >&2; exit 1; }; done
echo "$DIR"
