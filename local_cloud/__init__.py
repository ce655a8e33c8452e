"""Local cloud emulator: the EMR, S3, IAM, STS, Lambda and Kubernetes APIs on 127.0.0.1.

A development and test tool. It builds on moto for the AWS APIs and does the real work locally:
each EMR spark-submit step runs with local Spark and the shared job code, each Lambda invoke in
AWS's runtime interface client, each pod as a container of the project's Dockerfile (or a host
process). Production code (dags/, plugins/, spark_jobs/) never imports it.
"""
