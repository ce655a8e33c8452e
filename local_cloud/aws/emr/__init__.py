"""EMR: the rules EMR checks beyond a request's shape, the network a cluster needs, and the step
runner (spark-submit with local Spark).
"""
