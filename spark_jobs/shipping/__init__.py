"""Shipping the job: the code zip and packed environment for EMR, the Lambda package, the
spark-submit entry point. Runs where the project is checked out (make ship, the DAGs' ship tasks).
"""
