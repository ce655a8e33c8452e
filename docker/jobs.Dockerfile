# The batch-scoring job image: `make job-image` (podman or docker; `make setup` builds it too). The pod runs the job package's CLI,
# `python -m spark_jobs <job> ...`, as a non-root user on a read-only root filesystem: everything
# written locally goes to the scratch volume the pod mounts at /scratch.
FROM python:3.11-slim-bookworm

# Spark needs a Java 17 runtime; procps gives Spark's launcher `ps`.
RUN apt-get update \
    && apt-get install -y --no-install-recommends openjdk-17-jre-headless procps \
    && rm -rf /var/lib/apt/lists/*

# The project's locked, hash-checked job dependencies (written by `make setup`): wheels only, except
# pyspark, which PyPI publishes only as a source distribution (hash-checked all the same).
COPY build/jobs-requirements.txt /tmp/requirements.txt
RUN pip install --no-cache-dir --no-deps --require-hashes --only-binary=:all: --no-binary=pyspark \
        -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# The S3A connector beside Spark's own jars, so `s3://` works as everywhere but EMR: hadoop-aws and
# its AWS SDK bundle, fetched from Maven Central and checksummed by `make setup`.
COPY build/s3a/ /tmp/s3a/
RUN cp /tmp/s3a/*.jar "$(python -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))')/jars/" \
    && rm -rf /tmp/s3a

WORKDIR /app
COPY spark_jobs/ /app/spark_jobs/
COPY specs/ /app/specs/

# A numeric UID, so the kubelet can check runAsNonRoot without reading /etc/passwd.
RUN useradd --uid 10001 --no-create-home --home-dir /scratch --shell /usr/sbin/nologin jobs
USER 10001

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/scratch \
    TMPDIR=/scratch \
    SPARK_LOCAL_DIRS=/scratch

ENTRYPOINT ["python", "-m", "spark_jobs"]
CMD ["--help"]
