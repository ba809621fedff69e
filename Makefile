# TripClick Pipeline — local mode entry points. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help
PY := .venv/bin/python
SETUP_STAMP := .venv/.lock.sha256

.PHONY: help setup up down status test test-fast demo bench

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

setup: ## install environments, jars and PostgreSQL 15 (idempotent)
	@bash infrastructure/local/setup.sh core

up: setup ## start Kafka x3 (KRaft), PostgreSQL 15 and the S3 API server; create topics, roles, bucket
	@$(PY) -m infrastructure.local.platform up

down: ## stop exactly what `make up` started
	@$(PY) -m infrastructure.local.platform down

status: ## table of local services and their health
	@$(PY) -m infrastructure.local.platform status

test: setup ## the whole suite against real services (what CI runs)
	@bash infrastructure/local/setup.sh browser
	@bash infrastructure/local/setup.sh compose
	@$(PY) -m pytest

test-fast: setup ## unit tests only (no services)
	@$(PY) -m pytest -m unit
