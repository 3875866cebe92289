# The template's own commands. Two of them are all a new contributor needs:
#   make demo   render a demo service from this checkout (default answers) into build/
#   make test   install every tool the tests need, then run the whole test suite
.DEFAULT_GOAL := help
SHELL := bash
LANGUAGE ?= node
STRATEGY ?= rolling
DEMO_DIR ?= build/demo-$(LANGUAGE)-service
PYTEST_ARGS ?=

.PHONY: help demo test docs bench

help:
	@echo "make demo [LANGUAGE=node|go|django] [STRATEGY=rolling|blue-green|canary]"
	@echo "make test [PYTEST_ARGS='-k django']"
	@echo "make docs   make bench"

demo:
	@scripts/bootstrap.sh
	.venv/bin/copier copy --trust --defaults --overwrite --vcs-ref HEAD \
	  --data language=$(LANGUAGE) --data deployment_strategy=$(STRATEGY) "$(CURDIR)" "$(DEMO_DIR)"
	@echo "Demo service rendered in $(CURDIR)/$(DEMO_DIR)"

test:
	@scripts/bootstrap.sh --system
	.venv/bin/pytest -n 2 $(PYTEST_ARGS)

docs:
	@scripts/bootstrap.sh
	.venv/bin/mkdocs serve

bench:
	@scripts/bootstrap.sh
	.venv/bin/python bench/render_time.py
	.venv/bin/python bench/update_time.py
	.venv/bin/python bench/image_size.py
	.venv/bin/python bench/service_bench.py
