# The interface everyone uses: `make demo` (quick suite + leaderboard) and
# `make test`. Both run `setup` first, which is idempotent.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
DB ?= results/quick.sqlite
# chromium, chromium-driver: the published leaderboard page is tested in headless Chromium, driven by
# Selenium through Debian's chromedriver (tests/test_publish.py)
DEB_PACKAGES := flite festival festvox-kallpc16k festvox-us-slt-hts pocketsphinx-testdata sox libsndfile1 chromium \
  chromium-driver

.PHONY: setup system-packages demo explain test test-slow leaderboard corpus clean-results

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
	$(BIN)/python -m pip install -q --upgrade pip "setuptools>=77,<82" wheel
	$(BIN)/python -m pip install -q -e '.[test,ray]'
	@touch $@

demo: setup
	$(BIN)/ssbm-bench run leaderboards/suites/quick.toml --db $(DB)
	$(BIN)/ssbm-bench leaderboard --db $(DB) --format markdown --figures results/figures
	$(BIN)/ssbm-bench leaderboard --db $(DB) --format markdown --board isa --figures results/figures
	$(BIN)/ssbm-bench leaderboard --db $(DB) --format markdown --board stability --figures results/figures

# One word's map, masks and noisy mixtures as a PNG (+ WAVs) under results/explain/;
# reuses the demo's store (noise level, best threshold) when it exists.
# Override e.g. `make explain METHOD=bubble PARAMS="--param n_mixtures=50"`.
UTT ?= rms_h02_01
WORD ?= when
MODEL ?= pocketsphinx
METHOD ?= energy
PARAMS ?=
explain: setup
	$(BIN)/ssbm-bench explain --utterance $(UTT) --word $(WORD) --model $(MODEL) --method $(METHOD) $(PARAMS) \
	  $(if $(wildcard $(DB)),--db $(DB),) --wav results/explain/wav

# The committed leaderboard (leaderboards/README.md, leaderboard.csv, leaderboard.json,
# index.html, figures/): each suite runs into its own store under results/ (a
# rerun computes only what is missing), then everything is published together
# with the accepted submissions. The default suites are the ones measured on
# 2 cores (about 3 hours from scratch); the standard grid is
# `make leaderboard LEADERBOARD_SUITES="standard standard-librivox standard-captum"`.
LEADERBOARD_SUITES ?= bubble-vs-energy bubble-vs-energy-pocketsphinx bubble-vs-energy-librivox \
  deletion-whisper isa-methods stability-sweep
leaderboard: setup
	@for s in $(LEADERBOARD_SUITES); do $(BIN)/ssbm-bench run $$s --db results/$$s.sqlite || exit 1; done
	$(BIN)/ssbm-bench leaderboard publish --out leaderboards $(foreach s,$(LEADERBOARD_SUITES),--db results/$(s).sqlite)

test: setup
	$(BIN)/python -m pytest -q

test-slow: setup
	$(BIN)/python -m pytest -q -m slow

corpus: setup
	$(BIN)/ssbm-bench corpus build synthetic

clean-results:
	rm -rf results/
