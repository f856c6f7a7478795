"""Speed and accuracy of decoding policies side by side: ``unmask bench`` and ``benchmarks/``."""

from unmask.bench.decode import BenchConfig, BenchRow, default_configs, run_bench

__all__ = ["BenchConfig", "BenchRow", "default_configs", "run_bench"]
