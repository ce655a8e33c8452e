"""Job code shared by EMR training, Lambda spot predictions and Kubernetes batch scoring.

No Airflow imports here: this package runs on EMR, in Lambda and in pods.
"""

__version__ = "0.1.0"
