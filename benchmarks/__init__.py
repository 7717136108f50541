"""Benchmarks of nnlite against torch.nn, run with pytest-benchmark (see README.md)."""
