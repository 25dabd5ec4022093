# dcvpn developer entry points.
#   make demo   install dcvpn into .venv and run the main job on the example fabric
#   make test   install the test dependencies (Debian packages + Python) and run the whole suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
EXAMPLE ?= inventory/examples/acme-hybrid.yaml
# make demo also runs the offline part of the README's quick start on this fabric (no root):
# lint, topology, render, and `diff --offline` of one model change (a prefix more at qssjc)
QUICKSTART ?= inventory/examples/quickstart.yaml
DEMO_DIR ?= .cache/demo
PYTEST_ARGS ?=
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)
# Programs the tests drive for real: strongSwan, FRR, libyang (YANG validation), graphviz.
DEB_PACKAGES := python3-venv iproute2 strongswan-swanctl strongswan-charon charon-systemd \
	libcharon-extra-plugins libstrongswan-extra-plugins libstrongswan-standard-plugins \
	strongswan-pki frr nftables iputils-ping libyang2-dev libyang2-tools graphviz openssl \
	netconfd rsync curl pebble

.PHONY: install install-dev deps demo test check lint typecheck unit bench bench-render \
	bench-emulators bench-deploy gitlab-ci-local clean

$(BIN)/dcvpn: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e .
	touch $@

$(VENV)/.dev-installed: $(BIN)/dcvpn
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

install: $(BIN)/dcvpn

install-dev: deps $(VENV)/.dev-installed

deps:
	@missing=$$(for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:" $$missing; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi

demo: install
	$(BIN)/dcvpn lint -f $(EXAMPLE)
	$(BIN)/dcvpn topology -f $(EXAMPLE)
	@echo "== the offline part of the README's quick start ($(QUICKSTART))"
	$(BIN)/dcvpn lint -f $(QUICKSTART)
	$(BIN)/dcvpn topology -f $(QUICKSTART)
	rm -rf $(DEMO_DIR) && mkdir -p $(DEMO_DIR)
	$(BIN)/dcvpn render -f $(QUICKSTART) -o $(DEMO_DIR)/out
	sed 's|prefixes: \[10.105.0.0/24\]|prefixes: [10.105.0.0/24, 10.105.1.0/24]|' \
		$(QUICKSTART) > $(DEMO_DIR)/quickstart.yaml
	$(BIN)/dcvpn diff -f $(DEMO_DIR)/quickstart.yaml --offline $(DEMO_DIR)/out

lint: install-dev
	$(BIN)/ruff check .

typecheck: install-dev
	$(BIN)/mypy

# gitlab-ci-local runs the GitLab pipeline locally in the tests (shell executor); needs Node.js + npm.
GITLAB_CI_LOCAL_VERSION := 4.73.0
GITLAB_CI_LOCAL := .cache/gitlab-ci-local/node_modules/.bin/gitlab-ci-local

$(GITLAB_CI_LOCAL):
	@command -v npm >/dev/null || { echo "npm is needed for gitlab-ci-local (Node.js 20 + npm)"; exit 2; }
	mkdir -p .cache/gitlab-ci-local
	npm install --silent --no-audit --no-fund --prefix .cache/gitlab-ci-local \
		gitlab-ci-local@$(GITLAB_CI_LOCAL_VERSION)

gitlab-ci-local: $(GITLAB_CI_LOCAL)

unit: install-dev $(GITLAB_CI_LOCAL)
	$(BIN)/pytest $(PYTEST_ARGS)

test: lint typecheck unit

bench: install-dev
	$(BIN)/python bench/bench_compile.py

bench-render: install-dev
	$(BIN)/python bench/bench_render.py

# NETCONF emulator load test: 200 emulators in one process, 50 ncclient clients (issue 5)
bench-emulators: install-dev
	$(BIN)/python bench/bench_emulators.py

# dcvpn deploy to 200 emulated gateways (--workers 50) vs a single-device deploy (issue 6)
bench-deploy: install-dev  # both fabrics: every site prefix listed, then bgp.accept ranges
	$(BIN)/python bench/bench_deploy.py; listed=$$?; \
	$(BIN)/python bench/bench_deploy.py --accept 10.0.0.0/8 && exit $$listed

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .ruff_cache .pytest_cache .hypothesis .cache
