# Two commands a newcomer needs: `make run` and `make test`. Both set up a virtualenv first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test bench chaos clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# `make run` installs the demo's extra too: without Slack settings it runs the demo.
$(VENV)/.app: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[demo]'
	touch $@

$(VENV)/.test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[test]'
	touch $@

# Without Slack settings there is nothing to serve yet: show the whole journey on this machine instead.
run: $(VENV)/.app
ifeq ($(strip $(SLACK_BOT_TOKEN)),)
	$(BIN)/iam-bot demo
else
	$(BIN)/iam-bot serve
endif

test: $(VENV)/.test
	$(BIN)/lint-imports
	bash scripts/ensure-postgres.sh
	# Two processes: most of the suite waits on servers (moto, the Slack stand-in, PostgreSQL), not the CPU.
	# The heavy tests (several bot processes each) run after the rest, so their load never makes another
	# test's bot miss Slack's 3 s ack; both phases always run, and either failing fails the target.
	status=0; \
	IAM_BOT_REQUIRE_PG=1 $(BIN)/python -m pytest -n 2 --dist worksteal -m "not heavy" || status=1; \
	IAM_BOT_REQUIRE_PG=1 $(BIN)/python -m pytest -n 2 --dist worksteal -m heavy || status=1; \
	exit $$status

# Every benchmark in bench/, one after the other (about 20 minutes on 2 cores); each prints its figures beside its baseline.
BENCHES := ack modal journey queries bulk crash footprint
bench: $(VENV)/.test
	bash scripts/ensure-postgres.sh
	for b in $(BENCHES); do $(BIN)/python bench/$$b.py || exit 1; done

chaos: $(VENV)/.test
	bash scripts/ensure-postgres.sh
	$(BIN)/python scripts/chaos.py

clean:
	rm -rf $(VENV) *.egg-info
