# mlserve developer entry points. `make demo` and `make test` set themselves up.
SHELL := /bin/bash
# The first Python >= 3.11 on PATH (the code runs on 3.11+; Lambda runs 3.14). Override with
# `make PYTHON=python3.12 ...`; the version is checked either way.
PYTHON_CANDIDATES := python3.13 python3.12 python3.11 python3
PYTHON_OK := import sys; sys.exit(sys.version_info < (3, 11))
ifeq ($(origin PYTHON),undefined)
PYTHON := $(firstword $(foreach candidate,$(PYTHON_CANDIDATES),$(shell command -v $(candidate) >/dev/null 2>&1 && $(candidate) -c '$(PYTHON_OK)' 2>/dev/null && echo $(candidate))))
endif
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
DATA := .data
STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: help python venv node browser-deps browser demo test lint typecheck unit integration infra synth bench bench-deps e2e clean oracle-venv
.PHONY: deploy diff image

help:
	@echo "make demo   - train the demo model, publish it locally, serve it on 127.0.0.1:8000"
	@echo "make test   - lint, type-check and run the whole test suite"
	@echo "make synth  - synthesize the CDK app (cdk.out/)"
	@echo "make deploy ENV=dev - deploy the stack Mlserve-dev (context environments.dev); no ENV: the stack Mlserve"
	@echo "make diff ENV=dev   - cdk diff of Mlserve-dev against what is deployed"
	@echo "make bench  - run the benchmarks (writes benchmarks/results/)"
	@echo "make browser - the web page in a real browser (installs Chromium with apt + playwright-core)"
	@echo "make python - which Python (3.11+) make venv uses"
	@echo "make e2e    - deploy the real stack to MiniStack (no Docker/AWS) and run tests/e2e"

$(STAMP): pyproject.toml layers/deps/requirements.txt
	@$(MAKE) --no-print-directory python
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	# layers/deps/requirements.txt is the single pin: the demo model is trained with
	# exactly the scikit-learn version the Lambda layer serves.
	$(PIP) install --quiet -c layers/deps/requirements.txt -e '.[dev]'
	touch $@

venv: $(STAMP)

# Which interpreter `make venv` uses, and why not another.
python:
	@test -n "$(PYTHON)" || { echo "make: need Python 3.11+ on PATH (tried $(PYTHON_CANDIDATES)); or make PYTHON=/path/to/python3.x"; exit 1; }
	@command -v $(PYTHON) >/dev/null || { echo "make: PYTHON=$(PYTHON) is not on PATH"; exit 1; }
	@$(PYTHON) -c '$(PYTHON_OK)' || { echo "make: PYTHON=$(PYTHON) is $$($(PYTHON) -V 2>&1); need Python 3.11+"; exit 1; }
	@echo "python: $(PYTHON) ($$($(PYTHON) -V 2>&1))"

$(NODE_STAMP): package.json
	npm install --no-audit --no-fund --loglevel=error
	touch $@

node: $(NODE_STAMP)

# Evidently, the drift tests' oracle (tests/oracle), lives in its own venv: it brings ~30
# packages and needs pandas < 3, so it never enters .venv or any Lambda.
ORACLE_VENV := .venv-oracle
ORACLE_STAMP := $(ORACLE_VENV)/.installed
$(ORACLE_STAMP): tests/oracle/requirements.txt
	test -x $(ORACLE_VENV)/bin/python || $(PYTHON) -m venv $(ORACLE_VENV)
	$(ORACLE_VENV)/bin/pip install --quiet --upgrade pip
	$(ORACLE_VENV)/bin/pip install --quiet -r tests/oracle/requirements.txt
	touch $@

oracle-venv: $(ORACLE_STAMP)

# The browser tests drive Debian's Chromium with playwright-core (pinned in package.json);
# playwright's own browser download is never used.
CHROMIUM ?= /usr/bin/chromium
browser-deps: $(NODE_STAMP)
	@test -x $(CHROMIUM) || { \
		command -v apt-get >/dev/null || { echo "need Chromium at $(CHROMIUM) (no apt-get here)"; exit 1; }; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium; }
	@test -f node_modules/playwright-core/package.json || npm install --no-audit --no-fund --loglevel=error
	@$(CHROMIUM) --version

browser: $(STAMP) browser-deps
	$(PY) -m pytest -q tests/browser

# MODEL=sales: the LightGBM + XGBoost + CatBoost ensemble (examples/train_sales.py).
MODEL ?= classifier
demo: $(STAMP)
	MLSERVE_DEMO_MODEL=$(MODEL) $(PY) -m examples.demo

# The container image of packaging=image, built without Docker (podman + mmdebstrap; docs/image.md).
IMAGE_REQUIREMENTS ?= examples/requirements-sales.txt
image: $(STAMP)
	@command -v podman >/dev/null && command -v mmdebstrap >/dev/null || { \
		command -v apt-get >/dev/null || { echo "make image: needs podman and mmdebstrap"; exit 1; }; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq podman buildah skopeo mmdebstrap uidmap runc; }
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH MLSERVE_IMAGE_EXTRA=$(IMAGE_REQUIREMENTS) layers/image/build.sh

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy layers/common/python/mlserve lambda_api lambda_batch lambda_promote examples benchmarks tests $(wildcard infra/*.py app.py)

# The browser suite needs Chromium, which only `make browser` installs (apt, root): `make test`
# runs it when Chromium is there and otherwise skips it with one line. BROWSER_TESTS=skip
# leaves it out (.ci/run runs `make browser` on its own first).
BROWSER_TESTS ?= auto
test: $(STAMP) $(NODE_STAMP) oracle-venv lint typecheck
	@if [ "$(BROWSER_TESTS)" = skip ]; then \
		echo "make test: browser suite left out (BROWSER_TESTS=skip; make browser runs it)"; \
		$(PY) -m pytest -q -p no:cacheprovider --ignore=tests/browser; \
	elif [ -x $(CHROMIUM) ]; then \
		$(PY) -m pytest -q -p no:cacheprovider; \
	else \
		echo "make test: skipping the browser suite: no Chromium at $(CHROMIUM) (make browser installs it and runs the suite)"; \
		$(PY) -m pytest -q -p no:cacheprovider --ignore=tests/browser; \
	fi

unit: $(STAMP)
	$(PY) -m pytest -q tests/unit

integration: $(STAMP)
	$(PY) -m pytest -q tests/integration

infra: $(STAMP) $(NODE_STAMP)
	$(PY) -m pytest -q tests/infra

synth: $(STAMP) $(NODE_STAMP)
	npx cdk synth --quiet

e2e: $(STAMP) $(NODE_STAMP)
	tests/e2e/run.sh

# Named environments (context `environments`, docs/deploy.md): ENV=dev deploys Mlserve-dev.
# Without ENV, the single Mlserve stack from the flat context, as before.
ENV ?=
CDK_DEPLOY_FLAGS ?=
CDK_DIFF_FLAGS ?=
CDK_TARGET = $(if $(ENV),-c deploy_env=$(ENV) Mlserve-$(ENV),Mlserve)

deploy: $(STAMP) $(NODE_STAMP)
	npx cdk deploy $(CDK_TARGET) $(CDK_DEPLOY_FLAGS)

diff: $(STAMP) $(NODE_STAMP)
	npx cdk diff $(CDK_TARGET) $(CDK_DIFF_FLAGS)

bench-deps:
	@command -v wrk >/dev/null || { \
		command -v apt-get >/dev/null || { echo "need wrk (the HTTP load generator) on PATH"; exit 1; }; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq wrk; }

bench: $(STAMP) bench-deps
	$(PY) -m benchmarks.run
	$(PY) -m benchmarks.footprint

clean:
	rm -rf cdk.out .pytest_cache .mypy_cache .ruff_cache
