"""Evaluation: what a model runs with and how its run is judged (benchmarks, predictions, environments,
model directories, run conditions, weight files)."""
