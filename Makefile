# The two commands of the README. Everything installs into .venv from pyproject.toml, pinned by
# constraints.txt (regenerate it with `make constraints` after changing dependencies).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export PATH := $(CURDIR)/$(BIN):$(PATH)
export MLFLOW_DISABLE_TELEMETRY := true

.PHONY: repro test ui server server-stop constraints

$(VENV)/installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $@

repro: $(VENV)/installed
	dvc repro

test: $(VENV)/installed
	python -m pytest

ui: $(VENV)/installed
	mlflow ui --backend-store-uri sqlite:///$(CURDIR)/mlflow.db --host 127.0.0.1 --port $(or $(PORT),5000)

# MLflow on PostgreSQL, data in server/ (ARTIFACTS=s3://bucket/prefix to keep artefacts on S3)
server: $(VENV)/installed
	python -m mlplab server start --port $(or $(PORT),5000) $(if $(ARTIFACTS),--artifacts $(ARTIFACTS))

server-stop: $(VENV)/installed
	python -m mlplab server stop --port $(or $(PORT),5000)

constraints: $(VENV)/installed
	python -m pip freeze --exclude-editable | grep -v '^mlplab' > constraints.txt
