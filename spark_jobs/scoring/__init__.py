"""Batch scoring of a day's partition: the Spark engine (EMR), the Arrow engine (pods) and the
shards a large day is split into.
"""
