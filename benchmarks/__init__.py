"""Benchmarks: each module runs with one command and prints figures measured in the same run."""
