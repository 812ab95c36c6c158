# Two commands set everything up on a fresh machine with Python 3.11:
#   make demo   run the demo (daily close of the embedded demo hotel)
#   make test   run the test suite
# Both install uv if it is missing, then the locked environment (uv sync --frozen).

SHELL := /bin/bash
UV_VERSION := 0.13.9
UV := $(shell command -v uv 2>/dev/null || echo "python3 -m uv")
SIZE ?= full

.PHONY: setup system-deps demo test bench golden clean

setup: .venv/.synced

.venv/.synced: pyproject.toml uv.lock
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || \
	  python3 -m pip install --quiet "uv==$(UV_VERSION)" 2>/dev/null || \
	  python3 -m pip install --quiet --break-system-packages "uv==$(UV_VERSION)"
	$(UV) sync --frozen
	@touch $@

demo: setup
	$(UV) run --frozen ledgerflow demo

# Tests run real servers: OpenSSH's sshd for sFTP (installed with apt-get when missing and possible).
system-deps:
	@if ! command -v sshd >/dev/null 2>&1 && [ ! -x /usr/sbin/sshd ]; then \
	  if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    apt-get install -y -qq openssh-server >/dev/null || \
	    (apt-get update -qq && apt-get install -y -qq openssh-server >/dev/null); \
	  else echo "note: sshd is missing and cannot be installed here: the sFTP tests will skip"; fi; \
	fi
	@# Factur-X PDFs embed DejaVu Sans (Debian's fonts-dejavu-core) unless COMPANY.toml names other fonts.
	@if [ ! -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] && command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	  apt-get install -y -qq fonts-dejavu-core >/dev/null || (apt-get update -qq && apt-get install -y -qq fonts-dejavu-core >/dev/null); \
	fi
	@# hledger checks the hledger export; bean-check (beancount, kept out of the project's own
	@# environment) checks the beancount export.
	@if ! command -v hledger >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	  apt-get install -y -qq hledger >/dev/null || (apt-get update -qq && apt-get install -y -qq hledger >/dev/null); \
	fi
	@if ! command -v bean-check >/dev/null 2>&1 && [ ! -x .tools/bin/bean-check ]; then \
	  $(UV) venv --quiet .tools && $(UV) pip install --quiet --python .tools/bin/python "beancount==3.2.3"; \
	fi

test: setup system-deps
	$(UV) run --frozen ruff check .
	$(UV) run --frozen pytest

bench: setup
	$(UV) run --frozen python -m bench --size $(SIZE)

golden: setup
	LEDGERFLOW_REGENERATE_GOLDEN=1 $(UV) run --frozen pytest tests -k golden -q
	@git status --short tests/golden

clean:
	rm -rf ledgerflow-demo var .pytest_cache bench/.data .tools
