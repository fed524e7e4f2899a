"""The modeling stage: the model bundle, baselines, time-ordered splits, fitting, evaluation,
exact explanations, the drift reference, MLflow tracking, the registry and the promotion gate."""
