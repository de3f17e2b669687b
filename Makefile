# make demo | make test | make bench | make lint -- each builds .venv from nothing first.
# make test TEST_WORKERS=1 runs the suite in one process; TEST_ARGS are passed to pytest.
# make bench BENCH_ARGS=--quick (smaller sizes) or BENCH_ARGS=--readme (also rewrites README's table).
# make demo DEMO_ARGS=--serve keeps the HTTP API and the emulators up after the run (Ctrl-C ends).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PLUGIN_PROJECTS := $(wildcard plugins/*/*/pyproject.toml)

.PHONY: install demo test bench lint clean

install: $(STAMP)

$(STAMP): pyproject.toml requirements.txt constraints.txt $(PLUGIN_PROJECTS)
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 10), "Python 3.10+ is required"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt -c constraints.txt
	# Byte-compile our editable sources as pip does an installed package's: where
	# PYTHONDONTWRITEBYTECODE is set, every command would otherwise compile ~65 modules (0.2 s).
	$(BIN)/python -m compileall -q connector plugins
	touch $(STAMP)

demo: install
	$(BIN)/mfn-connector --config config/sandbox.yaml demo $(DEMO_ARGS)

# The suite mostly waits (emulated timeouts, daemons, SIGKILLs), so four pytest-xdist workers
# finish it in well under half the time even on 2 cores; worksteal keeps them busy to the end.
# Tests marked `alone` change the shared .venv (a pip install) and run after, by themselves;
# pytest's exit status 5 is "no test selected" (TEST_ARGS may leave none of them).
TEST_WORKERS ?= 4
test: install
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist worksteal -m "not alone" $(TEST_ARGS)
	$(BIN)/python -m pytest -m alone $(TEST_ARGS) || [ $$? -eq 5 ]

bench: install
	$(BIN)/python bench/run.py $(BENCH_ARGS)

lint: install
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) .mfn build *.egg-info
