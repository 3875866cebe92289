# The template's own commands. Two of them are all a new contributor needs:
#   make demo   render a demo service from this checkout (default answers) into build/
#   make test   install every tool the tests need, then run the whole test suite
.DEFAULT_GOAL := help
SHELL := bash
LANGUAGE ?= node
STRATEGY ?= rolling
DEMO_DIR ?= build/demo-$(LANGUAGE)-service
PYTEST_ARGS ?=

.PHONY: help demo test docs bench cluster-up cluster-down

help:
	@echo "make demo [LANGUAGE=node|go|django] [STRATEGY=rolling|blue-green|canary]"
	@echo "make test [PYTEST_ARGS='-k django']"
	@echo "make docs   make bench   make cluster-up   make cluster-down"

demo:
	@scripts/bootstrap.sh
	.venv/bin/copier copy --trust --defaults --overwrite --vcs-ref HEAD \
	  --data language=$(LANGUAGE) --data deployment_strategy=$(STRATEGY) "$(CURDIR)" "$(DEMO_DIR)"
	@echo "Demo service rendered in $(CURDIR)/$(DEMO_DIR)"

# The deploy-path tests run against a real control plane (scripts/cluster.sh): built from its Go
# modules when missing (cached under ~/.cache), started before the suite, stopped after it.
test:
	@scripts/bootstrap.sh --system
	@scripts/cluster.sh up >/dev/null
	@status=0; .venv/bin/pytest -n 2 $(PYTEST_ARGS) || status=$$?; scripts/cluster.sh down; exit $$status

docs:
	@scripts/bootstrap.sh
	.venv/bin/mkdocs serve

bench:
	@scripts/bootstrap.sh
	.venv/bin/python bench/render_time.py
	.venv/bin/python bench/update_time.py
	.venv/bin/python bench/image_size.py
	.venv/bin/python bench/service_bench.py

# The test control plane on its own: `eval "$$(make -s cluster-up)"` points kubectl at it (and puts
# the kubectl of the server's release first on PATH).
cluster-up:
	@scripts/cluster.sh up | sed 's/^/export /'
	@echo "export PATH=$$(scripts/cluster.sh bin):\$$PATH"

cluster-down:
	@scripts/cluster.sh down
