# kantoku: `make demo` and `make test` set everything up on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
CONSTRAINTS := constraints/cpu.txt
STAMP := $(VENV)/.kantoku-installed
# llama.cpp (the embedded LLM) for any x86-64 with AVX2: a -march=native build on a CPU with AMX
# uses AMX tiles, which some virtual machines do not grant, and crashes at the first token there.
ifeq ($(shell uname -m),x86_64)
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON
endif

.PHONY: setup test test-slow demo studio avatar protos lint bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml $(CONSTRAINTS)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	# torch first, from the CPU build; the constraints keep every later step on it
	$(PIP) install --quiet -c $(CONSTRAINTS) torch==2.13.0
	# built here with those flags, never taken from pip's cache (a wheel built with other flags)
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(PIP) install --quiet --no-cache-dir -c $(CONSTRAINTS) \
		"llama-cpp-python[server]"
	$(PIP) install --quiet -c $(CONSTRAINTS) -e ".[gpu,postgres,dev]"
	touch $(STAMP)

# Everything but the slowest tests (each starts a Ray cluster of its own); `make test-slow`
# runs those (CI runs both).
test: setup
	$(PY) -m pytest -q -m "not slow"

test-slow: setup
	$(PY) -m pytest -q -m slow

# A folder holds one job (kantoku refuses a used one), so the demo starts from an empty one.
demo: setup
	rm -rf out/demo
	$(VENV)/bin/kantoku mv examples/brief.yaml --song examples/song.wav \
		--lyrics examples/song.lrc --out out/demo --yes

# The studio's page and API at http://127.0.0.1:8000/ on the embedded default (Ctrl-C stops).
studio: setup
	$(VENV)/bin/kantoku studio

# The virtual human at http://127.0.0.1:8010/ (Ctrl-C stops); the embedded LLM chats in English.
avatar: setup
	$(VENV)/bin/kantoku avatar

protos: setup
	$(PY) protos/generate.py

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy services planner agents

bench: setup
	$(PY) bench/tts_rtf.py
	$(PY) bench/asr_rtf.py
	$(PY) bench/call_overhead.py
	$(PY) bench/previz_animatic.py
	$(PY) bench/orchestration.py
	$(PY) bench/cluster.py
	$(PY) bench/ledger_append.py
	$(PY) bench/mv_e2e.py
	$(PY) bench/timeline_edit.py
	$(PY) bench/planner.py
	$(PY) bench/studio.py
	$(PY) bench/avatar.py

clean:
	rm -rf $(VENV) out build *.egg-info
