# Airflow with this project baked in, for docker-compose.yaml: every Airflow component and the
# local cloud emulator run this image. Built from the repository (`docker compose build`), from the
# same lock file as `make` uses, instead of installing packages when a container starts.
FROM ghcr.io/astral-sh/uv:0.13.9 AS uv

FROM apache/airflow:3.3.2-python3.11

# The emulator runs Spark steps and scoring pods in its container: Spark needs a Java 17 runtime.
USER root
RUN apt-get update \
    && apt-get install -y --no-install-recommends openjdk-17-jre-headless procps \
    && rm -rf /var/lib/apt/lists/*
COPY --from=uv /uv /usr/local/bin/uv
RUN install -d -o airflow -g root /opt/ml-scaling /opt/ml-scaling/build
USER airflow

WORKDIR /opt/ml-scaling
# The project's locked dependencies and the airflow group (providers, moto, uv), hashes checked;
# the image's own Airflow is the same 3.3.2.
COPY pyproject.toml uv.lock ./
RUN uv python install 3.12.16
RUN uv export --frozen --no-emit-project --no-default-groups --group airflow --no-header --no-annotate \
        -o /tmp/requirements.txt \
    && pip install --no-cache-dir --require-hashes -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

COPY --chown=airflow:root README.md ./
COPY --chown=airflow:root spark_jobs/ spark_jobs/
# The job package installed as its wheel (pyproject's build backend; the dependencies came above).
RUN pip install --no-cache-dir --no-deps .
COPY --chown=airflow:root local_cloud/ local_cloud/
COPY --chown=airflow:root specs/ specs/
COPY --chown=airflow:root aws/ aws/
COPY --chown=airflow:root k8s/ k8s/
COPY --chown=airflow:root data/ data/
# The spot-predictions function runs on Lambda's python3.12: the emulator runs its handler on a
# Python 3.12 (uv's build, checksum-checked) with the runtime client from the lock.
RUN python -m local_cloud.aws.awslambda.runtimes
# The emulator knows the batch-scoring image by its Dockerfile.
COPY --chown=airflow:root docker/jobs.Dockerfile docker/jobs.Dockerfile

# The emulator (local_cloud) runs from the checkout, as with make: it is not part of the wheel.
ENV PYTHONPATH=/opt/ml-scaling
