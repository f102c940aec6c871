"""Business objectives: per-product terms, the merchandiser weights YAML, evaluation metrics
and the cvxpy weight tuner."""
