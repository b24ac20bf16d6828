# tinyml-ptq: `make test` and `make demo` set up everything they need themselves
# (Debian packages, a .venv with pinned Python packages) and are idempotent.

PYTHON    ?= python3.11
VENV      := .venv
VPY       := $(VENV)/bin/python
CLI       := $(VENV)/bin/tinyml-ptq
STAMP     := $(VENV)/.installed
APT_PKGS  := gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm gcc make
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

test: setup
	$(VPY) -m pytest -q

test-fast: setup
	$(VPY) -m pytest -q -m "not slow"

# The digits example end to end: quantize, generate, build, run on an emulated Cortex-M4.
demo: setup
	$(CLI) quantize examples/digits/digits_cnn.keras --data examples/digits/calib.npz \
	  --eval examples/digits/eval.npz -o $(DEMO_OUT)/digits_int8.tflite \
	  --report $(DEMO_OUT)/quantize_report.json
	$(CLI) generate $(DEMO_OUT)/digits_int8.tflite -o $(DEMO_OUT)/firmware --board mps2-an386
	$(CLI) build $(DEMO_OUT)/firmware --json $(DEMO_OUT)/build.json
	$(CLI) run $(DEMO_OUT)/firmware --data examples/digits/eval.npz --json $(DEMO_OUT)/run.json

# The MLPerf Tiny models and the digits example on emulated Cortex-M4 and M7, both kernel sets:
# bench/results.json and bench/results.md (minutes; not part of make test).
bench: setup
	$(CLI) bench -o bench

clean:
	rm -rf out build .pytest_cache
