# The batch-scoring job image: `make job-image` (podman or docker; `make setup` builds it too). The pod
# runs the job package's CLI, `python -m spark_jobs score ... --engine arrow`, as a non-root user on a
# read-only root filesystem: everything written locally goes to the scratch volume the pod mounts at
# /scratch. No JVM and no Spark: the pod's engine streams Arrow batches through numpy
# (spark_jobs/scoring/score_arrow.py); days larger than a pod go to EMR's Spark (batch_scoring's engine=emr).
FROM python:3.11-slim-bookworm

# The locked, hash-checked dependencies of the pod's engine (pyproject's `pod` group, written by
# `make setup`): wheels only.
COPY build/jobs-requirements.txt /tmp/requirements.txt
RUN pip install --no-cache-dir --no-deps --require-hashes --only-binary=:all: -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

WORKDIR /app
COPY spark_jobs/ /app/spark_jobs/
COPY specs/ /app/specs/

# A numeric UID, so the kubelet can check runAsNonRoot without reading /etc/passwd.
RUN useradd --uid 10001 --no-create-home --home-dir /scratch --shell /usr/sbin/nologin jobs
USER 10001

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/scratch \
    TMPDIR=/scratch

ENTRYPOINT ["python", "-m", "spark_jobs"]
CMD ["--help"]
