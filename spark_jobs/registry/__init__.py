"""The model registry: immutable versions, their manifest and champion, the leases that keep one
writer at a time, and the portable model (the fitted pipeline as JSON, scored without Spark).
"""
