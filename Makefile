# tinyml-ptq: `make test` and `make demo` set up everything they need themselves
# (Debian packages, a .venv with pinned Python packages) and are idempotent.

PYTHON    ?= python3.11
VENV      := .venv
VPY       := $(VENV)/bin/python
CLI       := $(VENV)/bin/tinyml-ptq
STAMP     := $(VENV)/.installed
# What the Renode 1.15 build in ../shared/tools/renode needs of Mono, headless (--disable-xwt):
# the runtime and the assemblies it loads (found by loading it, not from a package list).
MONO_PKGS := mono-runtime libmono-microsoft-csharp4.0-cil libmono-posix4.0-cil libmono-system-drawing4.0-cil \
             libmono-system-xml-linq4.0-cil libglib2.0-cil
APT_PKGS  := gcc-arm-none-eabi libnewlib-arm-none-eabi libstdc++-arm-none-eabi-newlib qemu-system-arm gcc g++ make \
             $(MONO_PKGS)
SUDO      := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
DEMO_OUT  ?= out/digits

.PHONY: setup apt venv test test-all test-fast demo bench zoo fuzz clean

setup: apt venv

# Installs only the Debian packages that are missing; a second run does nothing.
apt:
	@missing=""; for p in $(APT_PKGS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

venv: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	@test -x $(VPY) || $(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install -q --disable-pip-version-check -r requirements.txt
	$(VPY) -m pip install -q --disable-pip-version-check --no-deps -e .
	@touch $@

# The tests also open report.html in headless Chromium.
test test-all test-fast: APT_PKGS += chromium

# Two workers (pytest-xdist), each taking whole files so that a file's fixtures are built once;
# --durations: the slowest cases, for keeping the suite inside its time budget.
TEST_WORKERS ?= 2
PYTEST    := $(VPY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile
test: setup
	$(PYTEST) -m "not heavy" --durations=25

# Everything, the cases marked heavy too (TFLM for the host and the M55, the DSP kernels on the
# M7 and M55, the zoo's ImageNet-style networks): about 20 minutes more in the last serial run.
test-all: setup
	$(PYTEST) --durations=25

test-fast: setup
	$(PYTEST) -m "not slow and not heavy"

# The digits example end to end with one command: quantize, generate, build, run on an emulated
# Cortex-M4; prints the summary and writes $(DEMO_OUT)/report.json and report.html. A second
# run reuses the quantized model and the firmware.
demo: setup
	$(CLI) deploy examples/digits/digits_cnn.keras --data examples/digits/calib.npz \
	  --eval examples/digits/eval.npz --board mps2-an386 -o $(DEMO_OUT)

# The MLPerf Tiny models and the digits example on emulated Cortex-M4, M7, M33 and M55: TFLM (reference,
# CMSIS-NN) and ours (reference, DSP; Helium on the M55) side by side; bench/results.json and bench/results.md. TFLM
# comes from TFLM_DIR (default: the shared/ tree beside the checkout, if there); the first run
# builds its libraries (about 5 minutes each, cached in ~/.cache/tinyml-ptq). Not part of make test.
TFLM_DIR  ?= $(wildcard $(abspath ../shared/tflm))
bench: setup
	$(CLI) bench -o bench $(if $(TFLM_DIR),--tflm-dir $(TFLM_DIR))

# The model zoo (examples/zoo/zoo.py): each architecture trained briefly and deployed on mps2-an386;
# rewrites the README's zoo table with the results (build/zoo/results.json). About 30 minutes.
zoo: setup
	$(VPY) examples/zoo/zoo.py -o build/zoo --json build/zoo/results.json --readme README.md

# Fuzz campaign, one target after the other (FUZZ_TARGETS), FUZZ_SECONDS each (nice 10): the model reader and
# lowering and the host protocol client under atheris, the firmware frame parser under libFuzzer
# with ASan and UBSan. Each starts from the saved corpus in fuzz/corpus/<target> and merges what
# it found back into it (minimized, inputs up to 2 KB); crash inputs land in build/fuzz/<target>/.
# make test replays the saved corpus (tests/test_fuzz_corpus.py).
FUZZ_SECONDS ?= 600
FUZZ_TARGETS ?= model protocol frame_parser
FUZZ_DIR  := build/fuzz
fuzz: APT_PKGS += clang libclang-rt-14-dev
fuzz: setup
	@mkdir -p $(FUZZ_DIR)
	clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -I firmware/app \
	  fuzz/firmware/fuzz_frame_parser.c firmware/app/protocol.c -o $(FUZZ_DIR)/frame_parser_fuzzer
	@for t in $(FUZZ_TARGETS); do \
	  rm -rf $(FUZZ_DIR)/$$t; mkdir -p $(FUZZ_DIR)/$$t/work; cp fuzz/corpus/$$t/* $(FUZZ_DIR)/$$t/work/; \
	  if [ $$t = frame_parser ]; then run="$(FUZZ_DIR)/frame_parser_fuzzer"; \
	  else run="env PATH=$(CURDIR)/$(VENV)/bin:$$PATH fuzz/atheris_run.py $$t"; fi; \
	  echo "fuzzing $$t for $(FUZZ_SECONDS) s"; \
	  nice -n 10 $$run $(FUZZ_DIR)/$$t/work -max_total_time=$(FUZZ_SECONDS) -max_len=8192 -timeout=10 \
	    -print_final_stats=1 -artifact_prefix=$(FUZZ_DIR)/$$t/ > $(FUZZ_DIR)/$$t.log 2>&1; \
	  status=$$?; grep -E '^stat::(number_of_executed_units|peak_rss)|^#[0-9]+[[:space:]]+DONE' $(FUZZ_DIR)/$$t.log; \
	  [ $$status = 0 ] || { echo "$$t: crash, see $(FUZZ_DIR)/$$t.log"; exit 1; }; \
	  $$run -merge=1 -max_len=2048 fuzz/corpus/$$t $(FUZZ_DIR)/$$t/work > $(FUZZ_DIR)/$$t.merge.log 2>&1 || exit 1; \
	done

clean:
	rm -rf out build .pytest_cache
