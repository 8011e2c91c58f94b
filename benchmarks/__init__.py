"""turnout benchmarks."""
