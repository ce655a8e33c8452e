"""The AWS side of the emulator: moto behind botocore's request validation (validation.py) and IAM's
policy checks (iam.py), its state kept on disk (state.py, s3.py), and what moto only records done
for real: EMR steps (emr/) and Lambda invocations (awslambda/).
"""
