# The interface everyone uses: `make demo` (quick suite + leaderboard) and
# `make test`. Both run `setup` first, which is idempotent.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
DB ?= results/quick.sqlite
DEB_PACKAGES := flite festival festvox-kallpc16k festvox-us-slt-hts pocketsphinx-testdata sox libsndfile1

.PHONY: setup system-packages demo test test-slow leaderboard corpus clean-results

setup: system-packages $(VENV)/.installed

# Install the Debian packages only when one is missing, so a warm machine
# pays nothing. Needs root (or sudo) the first time.
system-packages:
	@missing=""; for p in $(DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO="sudo"; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

$(VENV)/.installed: pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip "setuptools>=68,<82" wheel
	$(BIN)/python -m pip install -q -e '.[test]'
	@touch $@

demo: setup
	$(BIN)/ssbm-bench run leaderboards/suites/quick.toml --db $(DB)
	$(BIN)/ssbm-bench leaderboard --db $(DB) --format markdown

test: setup
	$(BIN)/python -m pytest -q

test-slow: setup
	$(BIN)/python -m pytest -q -m slow

corpus: setup
	$(BIN)/ssbm-bench corpus build synthetic

clean-results:
	rm -rf results/
