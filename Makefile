# `make report` and `make test` do all set-up on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PERIOD ?= latest

.PHONY: report test docs config-docs bench validate simulate pictures visual-baseline clean locales \
	system-packages

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
# for the site tests, poppler-utils for the page pictures (installed when missing).
system-packages:
	@bash .ci/system-packages

# Two processes by default, each taking whole test files (their module fixtures built
# once): ~10 minutes on 2 cores against ~19 in one. TEST_WORKERS=0 runs in this process.
TEST_WORKERS ?= 2

test: $(STAMP) system-packages docs
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile

# The documentation site, MkDocs Material with every warning an error (a broken link or
# anchor fails the build), into build/site/. `make config-docs` rewrites the config
# reference from the key declarations (tests/test_docs.py fails while it is stale).
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

config-docs: $(STAMP)
	$(BIN)/python -m reporting.core.configtext

bench: $(STAMP) system-packages
	$(BIN)/python -m pytest -q -s tests/benchmarks -o python_files='bench_*.py'

simulate: $(STAMP)
	$(BIN)/reporting simulate --out data --weeks 4 --scale small --seed 7 --format parquet \
		--incident-week 4

# The README's pictures: page 1 of the executive report and the IT report's incident
# timeline, from `make report`'s output (pdftoppm, Debian's poppler-utils).
pictures: report
	$(BIN)/python docs/pictures.py --output output --docs docs

# The visual regression check's stored pictures (tests/visual/*.png): page 1 of each
# audience and the site at 1280 and 390 px. Rewrite only after an intended layout change.
visual-baseline: $(STAMP) system-packages
	$(BIN)/python -m tests.visual.render

clean:
	rm -rf $(VENV) output build

# The gettext catalogues (issue 32): extract the sentences of the code and templates into
# reporting/locales/reporting.pot, merge them into each language's .po (new ones empty,
# changed ones fuzzy: tests/test_i18n.py fails until they are translated), and compile the
# .mo files the reports read. The compiled .mo files are committed, so a fresh clone's
# `make report` needs no step of its own; run this after changing a sentence.
locales: $(STAMP)
	$(BIN)/pybabel extract -F babel.cfg -k N_ -k Metric:2 -k Chart:3 --no-location --sort-output \
		--project fullstack-diagnostics -o reporting/locales/reporting.pot .
	$(BIN)/pybabel update -i reporting/locales/reporting.pot -d reporting/locales \
		-D reporting -w 88 --ignore-obsolete
	$(BIN)/pybabel compile -d reporting/locales -D reporting --statistics
