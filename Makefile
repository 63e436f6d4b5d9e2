# `make report` and `make test` do all set-up on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PERIOD ?= latest

.PHONY: report test bench validate simulate pictures clean system-packages

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

report: $(STAMP)
	$(BIN)/build-report --data data --output output --period $(PERIOD)

validate: $(STAMP)
	$(BIN)/reporting validate --data data

# PostgreSQL and nginx for the source tests' real servers, Chromium and chromium-driver
# for the site tests (installed when missing).
system-packages:
	@bash .ci/system-packages

test: $(STAMP) system-packages
	$(BIN)/python -m pytest -q

bench: $(STAMP) system-packages
	$(BIN)/python -m pytest -q -s tests/benchmarks -o python_files='bench_*.py'

simulate: $(STAMP)
	$(BIN)/reporting simulate --out data --weeks 4 --scale small --seed 7 --format parquet \
		--incident-week 4

# The README's pictures: page 1 of the executive report and the IT report's incident
# timeline, from `make report`'s output (pdftoppm, Debian's poppler-utils).
pictures: report
	$(BIN)/python docs/pictures.py --output output --docs docs

clean:
	rm -rf $(VENV) output
