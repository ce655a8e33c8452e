"""Job code shared by EMR training, Lambda spot predictions and Kubernetes batch scoring.

No Airflow imports here: this package runs on EMR, in Lambda and in pods.
"""

__version__ = "0.1.0"


def configure_logging() -> None:
    """INFO to stderr for the job CLIs: stdout carries their results."""
    import logging
    import sys

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
