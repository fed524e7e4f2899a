"""The scoring stage: the weekly batch job that streams open leads, scores and explains them in
chunks, writes scores.parquet/scores.csv, the reports and the manifest, and logs an MLflow run."""
