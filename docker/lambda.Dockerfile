# The spot-predictions function as a Lambda container image: `make lambda-image` (needs Docker).
# The same locked, hash-checked requirements and the same modules as the zip (`make lambda-zip`),
# on AWS's own base; `python -m spark_jobs lambda_package --image-context build/lambda` writes both.
FROM public.ecr.aws/lambda/python:3.12

COPY build/lambda/requirements.txt /tmp/requirements.txt
RUN pip install --no-cache-dir --no-deps --require-hashes --only-binary=:all: \
        --target "${LAMBDA_TASK_ROOT}" -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

COPY build/lambda/spark_jobs/ ${LAMBDA_TASK_ROOT}/spark_jobs/

CMD ["spark_jobs.serving.lambda_handler.handler"]
