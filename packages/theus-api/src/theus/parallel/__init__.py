"""Parallel execution of processes (spec/22-parallel.md)."""
