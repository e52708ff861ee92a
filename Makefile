# The two set-up commands of the README. Both create .venv when missing and install into it.
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: env demo test

env:
	@scripts/setup_env.sh $(VENV)

# Installs, then runs the main job on the bundled default (see README).
demo: env
	$(VENV)/bin/monodepth2 demo

# Installs, then runs the whole test suite on the CPU.
test: env
	$(PY) -m pytest test -q
