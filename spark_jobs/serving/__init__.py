"""Spot predictions: record checks and scoring without Spark, and the Lambda handler.

The Lambda package ships only what this subpackage imports (spark_jobs.shipping.package.imported_modules).
"""
