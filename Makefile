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

.PHONY: setup apt venv test test-fast demo bench clean

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
test test-fast: APT_PKGS += chromium

test: setup
	$(VPY) -m pytest -q

test-fast: setup
	$(VPY) -m pytest -q -m "not slow"

# The digits example end to end with one command: quantize, generate, build, run on an emulated
# Cortex-M4; prints the summary and writes $(DEMO_OUT)/report.json and report.html. A second
# run reuses the quantized model and the firmware.
demo: setup
	$(CLI) deploy examples/digits/digits_cnn.keras --data examples/digits/calib.npz \
	  --eval examples/digits/eval.npz --board mps2-an386 -o $(DEMO_OUT)

# The MLPerf Tiny models and the digits example on emulated Cortex-M4, M7 and M33: TFLM (reference,
# CMSIS-NN) and ours (reference, DSP) side by side; bench/results.json and bench/results.md. TFLM
# comes from TFLM_DIR (default: the shared/ tree beside the checkout, if there); the first run
# builds its libraries (about 5 minutes each, cached in ~/.cache/tinyml-ptq). Not part of make test.
TFLM_DIR  ?= $(wildcard $(abspath ../shared/tflm))
bench: setup
	$(CLI) bench -o bench $(if $(TFLM_DIR),--tflm-dir $(TFLM_DIR))

clean:
	rm -rf out build .pytest_cache
