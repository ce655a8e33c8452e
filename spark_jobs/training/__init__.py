"""Training: the MLlib pipeline the spec implies, its evaluation, the drift profile and the report."""
