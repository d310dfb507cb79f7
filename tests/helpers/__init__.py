"""Helpers shared by tests and benchmarks: synthetic clips, reference implementations, soak harnesses."""
