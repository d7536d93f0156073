"""Theus asv benchmarks (REQUIREMENTS §5): every engine benchmark is parametrized by backend."""
