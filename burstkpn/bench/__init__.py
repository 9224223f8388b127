"""Benchmarks: model cost and speed (speed.py); quality tables and reports follow."""
