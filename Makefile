# TripClick Pipeline — local mode entry points. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help
PY := .venv/bin/python

.PHONY: help setup up down status test lint test-fast bench

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

SETUP_GROUPS ?= core monitoring
setup: ## install environments, jars and PostgreSQL 15 (idempotent)
	@bash infrastructure/local/setup.sh $(SETUP_GROUPS)

up: setup ## start Kafka x3 (KRaft), PostgreSQL 15, the S3 API server and the monitoring; create topics, roles, bucket [GROUP=platform|monitoring|airflow|superset|all]
	@$(PY) -m infrastructure.local.services up $(GROUP)

down: ## stop exactly what `make up` started [GROUP=platform|monitoring|airflow|superset|all]
	@$(PY) -m infrastructure.local.services down $(GROUP)

status: ## every local service (platform, Airflow, Superset) and its health [GROUP=...]
	@$(PY) -m infrastructure.local.services status $(GROUP)

TEST_WORKERS ?= 2
# One setup call for everything the suite needs: the extras install while the class archive is built.
test: SETUP_GROUPS = core monitoring browser compose docker infra-tools
test: setup lint ## ruff, then the whole suite against real services on TEST_WORKERS xdist workers (what CI runs)
	@$(PY) -m pytest -n $(TEST_WORKERS) --no-loadscope-reorder

lint: setup ## ruff over the whole code base (rules in pyproject.toml)
	@.venv/bin/ruff check .

test-fast: setup ## unit tests without the slow ones (no services, no JVM)
	@$(PY) -m pytest -m "unit and not slow"

bench: bench-ingestion bench-processing bench-backfill ## every benchmark script (each appends its result to BENCHMARKS.md)

# --- ingestion ---
.PHONY: prepare generate produce bench-ingestion
INGEST_SERVER = $(or $(SERVER),$(firstword $(filter server0 server1,$(subst /, ,$(FILE)))))

prepare: ## raw TripClick day files -> per-server replay files: RAW=<folder> [OUT=<folder>] [SOURCE_START/END=, TARGET_START/END=]
	@test -n "$(RAW)" || { echo "usage: make prepare RAW=<folder of YYYY-MM-DD.json> [OUT=<folder>]"; exit 2; }
	@$(PY) -m ingestion.prepare --raw "$(RAW)" $(if $(OUT),--out "$(OUT)") \
		$(if $(SOURCE_START),--source-start $(SOURCE_START)) $(if $(SOURCE_END),--source-end $(SOURCE_END)) \
		$(if $(TARGET_START),--target-start $(TARGET_START)) $(if $(TARGET_END),--target-end $(TARGET_END))

generate: ## synthetic logs, ready to produce (PREPARED=0: raw files): [DAYS= START= EVENTS_PER_DAY= SEED= OUT= DUPLICATES= MALFORMED=]
	@$(PY) -m ingestion.generate $(if $(filter 0,$(PREPARED)),,--prepared) $(if $(OUT),--out "$(OUT)") \
		$(if $(DAYS),--days $(DAYS)) $(if $(START),--start $(START)) \
		$(if $(EVENTS_PER_DAY),--events-per-day $(EVENTS_PER_DAY)) $(if $(SEED),--seed $(SEED)) \
		$(if $(DUPLICATES),--duplicates $(DUPLICATES)) $(if $(MALFORMED),--malformed $(MALFORMED))

produce: up ## send one day file to Kafka: FILE=<.../serverN/date=D/events.json> [MODE=realtime|batch] [SPEED=N] [SERVER=serverN]
	@test -n "$(FILE)" -a -n "$(INGEST_SERVER)" || { echo "usage: make produce FILE=<.../server0/date=D/events.json> [MODE=batch] [SPEED=60]"; exit 2; }
	@$(PY) -m ingestion.producer --file "$(FILE)" --server $(INGEST_SERVER) --mode $(or $(MODE),realtime) \
		$(if $(SPEED),--speed $(SPEED))

bench-ingestion: up ## producer throughput vs Kafka's ProducerPerformance (1M events) and realtime lateness
	@$(PY) -m ingestion.bench

# --- gold ---
.PHONY: superset superset-down superset-export screenshots sample-marts
SHOT_DASHBOARD = $(or $(DASHBOARD),main)

superset: up ## provision Superset from gold/superset/assets and serve it on 127.0.0.1:8088 (idempotent)
	@$(PY) -m infrastructure.local.services up superset

superset-down: ## stop the Superset server `make superset` started
	@$(PY) -m infrastructure.local.services down superset

superset-export: ## write the live dashboard (charts, datasets, database; password masked) back into gold/superset/assets
	@$(PY) -m gold.superset.provision export

screenshots: ## PNG of a dashboard of `make superset` (headless Chromium): [DASHBOARD=main|live|health] [OUT=] [RANGE="2026-01-01 : 2026-02-02"] [WAIT_ROWS=s] [WIDTH=1600]
	@$(PY) -m gold.superset.screenshots --dashboard $(SHOT_DASHBOARD) \
		--out "$(or $(OUT),test-artifacts/dashboard-$(SHOT_DASHBOARD).png)" \
		$(if $(RANGE),--time-range "$(RANGE)") $(if $(WAIT_ROWS),--wait-rows $(WAIT_ROWS)) $(if $(WIDTH),--width $(WIDTH))

sample-marts: up ## marts of GENERATED days (pipeline code, no Kafka): [START=2025-01-06] [DAYS=5] [DELETE=1]
	@$(PY) -m processing.sample_marts $(if $(START),--start $(START)) $(if $(DAYS),--days $(DAYS)) $(if $(DELETE),--delete)

# --- deployment (docker mode) ---
.PHONY: deploy-check docker-certs images push-images base-image docker-secrets preflight infra-check

images: ## build every project image (content-addressed: unchanged ones are skipped) [BASE_IMAGE= IMAGE_TAG= IMAGE_REGISTRY= EXTRA_CA_CERTS=]
	@$(PY) -m infrastructure.docker.images build

push-images: ## push every project image to IMAGE_REGISTRY
	@$(PY) -m infrastructure.docker.images push

base-image: ## Debian 12 + Python 3.11 base image from Debian packages, for engines without a registry (root, debootstrap)
	@bash infrastructure/local/setup.sh docker
	@bash infrastructure/docker/debian-base.sh

docker-secrets: ## a docker-mode env file from .env.docker.example with every secret generated: OUT=<file>
	@test -n "$(OUT)" || { echo "usage: make docker-secrets OUT=.env"; exit 2; }
	@$(PY) -m infrastructure.docker.secrets --template .env.docker.example --out "$(OUT)"

preflight: ## docker mode, from the Airflow host: settings check, then Docker APIs, images, network, data mounts, Kafka, S3, PostgreSQL
	@$(PY) -m infrastructure.docker.preflight

deploy-check: setup ## static checks of every compose file and Dockerfile (docker-compose config, hadolint, cross-checks)
	@bash infrastructure/local/setup.sh compose
	@$(PY) -m pytest -q tests/deployment

infra-check: setup ## Terraform and GitHub Actions checks: fmt, tflint, checkov, actionlint, zizmor, contract tests
	@bash infrastructure/local/setup.sh infra-tools
	@$(PY) -m pytest -q tests/infrastructure

docker-certs: ## CA + TLS certificates for the remote Docker APIs: OUT=<dir> HOSTS="webserver0=IP webserver1=IP spark=IP" [AIRFLOW_HOST=airflow LEAF_DAYS=365 CA_DAYS=3650]
	@test -n "$(OUT)" -a -n "$(HOSTS)" || { echo 'usage: make docker-certs OUT=<dir> HOSTS="webserver0=10.0.1.10 webserver1=10.0.1.11 spark=10.0.2.10"'; exit 2; }
	@bash infrastructure/deploy/make-docker-certs.sh "$(OUT)" $(HOSTS)

# --- monitoring ---
.PHONY: monitoring monitoring-down monitoring-config
monitoring: setup ## Prometheus, Alertmanager, Pushgateway, exporters and the alert inbox on 127.0.0.1 (part of `make up`)
	@$(PY) -m infrastructure.local.services up monitoring

monitoring-down: ## stop the monitoring processes
	@$(PY) -m infrastructure.local.services down monitoring

monitoring-config: ## docker mode: render Prometheus/Alertmanager configuration for monitoring/docker-compose.yaml: OUT=<dir>
	@test -n "$(OUT)" || { echo "usage: make monitoring-config OUT=monitoring/rendered"; exit 2; }
	@$(PY) -m monitoring.config render --out "$(OUT)" --config-dir /etc/tripclick-monitoring --secret-owner 10001

# --- orchestration ---
.PHONY: airflow airflow-down airflow-status demo backfill bench-backfill
airflow: up ## local Airflow (LocalExecutor, metadata in PostgreSQL): scheduler, triggerer, UI on 127.0.0.1:8080
	@$(PY) -m infrastructure.local.services up airflow

airflow-down: ## stop exactly the Airflow processes `make airflow` started
	@$(PY) -m infrastructure.local.services down airflow

airflow-status: ## Airflow processes and health
	@$(PY) -m infrastructure.local.services status airflow

demo: up ## one day end to end under Airflow at TIME_SCALE=60, then Gold summary + reconcile + URLs: [DATE=2026-01-01] [DAYS=1: the next DAYS-1 dates by backfill]
	@$(PY) -m orchestration.demo --date $(or $(DATE),2026-01-01) $(if $(DAYS),--days $(DAYS))

backfill: up ## prepared files of a range of dates -> PostgreSQL, no real-time replay, the Spark steps in one Spark app: START=YYYY-MM-DD END=YYYY-MM-DD
	@test -n "$(START)" -a -n "$(END)" || { echo "usage: make backfill START=2026-01-02 END=2026-02-01"; exit 2; }
	@$(PY) -m orchestration.backfill --start $(START) --end $(END)

bench-backfill: up ## 32 days x 162,500 generated events files -> PostgreSQL by backfill; 1/8/32-day cost per event
	@$(PY) -m orchestration.bench_backfill

.PHONY: docs
docs: ## regenerate the step tables of orchestration/README.md from orchestration/steps.py (a unit test keeps them equal)
	@$(PY) -m orchestration.doc_tables

# --- processing ---
.PHONY: bench-processing run-bronze run-etl run-check-lake run-validate run-load run-reconcile
bench-processing: up ## Spark jobs: one date of 160k, 1.3M and 5.2M events through Bronze/ETL/gate/load (us per event), stream latency, live marts freshness
	@$(PY) -m processing.bench
	@$(PY) -m processing.bench_live

run-bronze: ## Kafka -> Bronze for one date (a rerun reads the recorded offsets): DATE=YYYY-MM-DD [REBUILD=1]
	@$(PY) -m processing.spark.jobs.batch_to_bronze --date $(DATE) $(if $(REBUILD),--rebuild-from-kafka)

run-etl: ## exact Silver + Gold marts for one date: DATE=YYYY-MM-DD
	@$(PY) -m processing.spark.jobs.etl_to_gold --date $(DATE)

run-load: ## Gold -> PostgreSQL for one date (one transaction): DATE=YYYY-MM-DD
	@$(PY) -m processing.spark.jobs.load_to_postgres --date $(DATE)

run-check-lake: ## the gate before the load: count checks + data quality suites (the DAG's check_lake): DATE=YYYY-MM-DD
	@$(PY) -m processing.spark.jobs.reconcile --date $(DATE) --stage lake

run-validate: run-check-lake ## same gate as run-check-lake (counts + Great Expectations suites, dq_results, Data Docs)

run-reconcile: ## every check (lake gate + PostgreSQL = Gold) for one date: DATE=YYYY-MM-DD [STAGE=lake|postgres]
	@$(PY) -m processing.spark.jobs.reconcile --date $(DATE) --stage $(or $(STAGE),all)
