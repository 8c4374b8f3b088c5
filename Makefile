# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
# Both install what they need (Debian packages, a venv at .venv/) and skip
# what is already there.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.edgekit-installed
APT_PACKAGES := gcc g++ cmake make gcc-arm-none-eabi libnewlib-arm-none-eabi libstdc++-arm-none-eabi-newlib qemu-system-arm chromium openssh-server openssh-client
PYTEST_ARGS ?=

.PHONY: demo test setup system-deps clean

demo: setup
	$(PY) -m edgekit.demo

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

setup: system-deps $(STAMP)

# Debian packages: the Cortex-M toolchain, the emulated board, Chromium for the tests of
# compare's HTML page, and the OpenSSH server the remote tests start on loopback. Installed only when missing.
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

clean:
	rm -rf $(VENV) .edgekit build demo-out .pytest_cache
