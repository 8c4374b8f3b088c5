# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
# Both install what they need (Debian packages, a venv at .venv/) and skip
# what is already there.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.edgekit-installed
APT_PACKAGES := gcc g++ cmake make gcc-arm-none-eabi libnewlib-arm-none-eabi libstdc++-arm-none-eabi-newlib qemu-system-arm nodejs chromium openssh-server openssh-client
# npm: a Debian package of its own, but bundled with some Node.js builds (NodeSource's)
APT_PACKAGES += $(if $(shell command -v npm),,npm)
PYTEST_ARGS ?=

.PHONY: demo test setup system-deps clean

demo: setup
	$(PY) -m edgekit.demo

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

JS_STAMP := js/node_modules/.package-lock.json

setup: system-deps $(STAMP) $(JS_STAMP)

# Debian packages: the Cortex-M toolchain, the emulated board, Node.js and Chromium
# (TF.js runs under both; compare's page is tested in Chromium), and the OpenSSH
# server the remote tests start on loopback. Installed only when missing.
system-deps:
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

# The venv is rebuilt only when pyproject.toml changes.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[all,test]'
	touch $(STAMP)

# TF.js and its wasm backend for the node and browser runners, exactly as js/package-lock.json
# pins them; npm rewrites its own copy of the lockfile only when it installs.
$(JS_STAMP): js/package.json js/package-lock.json
	cd js && npm ci --no-audit --no-fund --loglevel=error

clean:
	rm -rf $(VENV) .edgekit build demo-out .pytest_cache js/node_modules
