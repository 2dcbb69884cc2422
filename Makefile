# `make demo` and `make test` install what they need first (idempotently).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
RECIPE ?= synthetic
# Debian packages for the synthetic corpus and the test fixtures (TTS engines, text sources, sox).
DEBIAN := flite festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts espeak-ng sox bible-kjv wordnet-base

.PHONY: install system test demo prepare clean

install: $(STAMP)

$(STAMP): pyproject.toml requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -r requirements.txt
	$(BIN)/pip install -q --disable-pip-version-check --no-deps -e .
	touch $@

system: install
	$(BIN)/python -m asr.debian $(DEBIAN)

test: install system
	$(BIN)/python -m pytest -q

prepare: install
	$(BIN)/asr prepare $(RECIPE)

# The main job on the built-in offline corpus: prepare, train, evaluate, transcribe.
demo: install
	@start=$$(date +%s); \
	$(BIN)/asr prepare synthetic && \
	$(MAKE) --no-print-directory exp/synthetic/model.pt && \
	$(BIN)/asr evaluate --model exp/synthetic/model.pt --manifest data/synthetic/test.jsonl \
		--report exp/synthetic/report_test.json && \
	$(BIN)/asr evaluate --model exp/synthetic/model.pt --manifest data/synthetic/test_unseen_voice.jsonl \
		--report exp/synthetic/report_test_unseen_voice.json && \
	$(BIN)/asr transcribe --model exp/synthetic/model.pt $$(ls data/synthetic/audio/test/*.flac | head -n 5) && \
	echo "demo finished in $$(( $$(date +%s) - start )) s; model: exp/synthetic/model.pt"

exp/synthetic/model.pt: data/synthetic/.done recipes/synthetic/config.yaml
	$(BIN)/asr train --config recipes/synthetic/config.yaml

clean:
	rm -rf exp/synthetic
