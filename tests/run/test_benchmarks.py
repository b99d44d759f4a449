"""benchmarks.py: what benchmark.py's figures are made of (interleaved rounds, ratios, peaks), on tiny work."""
import numpy as np

from fcn_tensorflow.run import benchmarks
from fcn_tensorflow.run.precision import FLOAT32


def test_rounds_run_every_function_once_each_and_ratios_are_medians():
    calls = []
    times = benchmarks.interleaved({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, repeats=3,
                                   warmup=1)
    assert calls == ["a", "b"] * 4 and sorted(times) == ["a", "b"] and all(len(t) == 3 for t in times.values())
    assert benchmarks.median_ratio([2.0, 4.0, 9.0], [1.0, 1.0, 1.0]) == 4.0


def test_peak_gflops_is_the_best_of_matmul_and_convolution_per_round():
    peaks = benchmarks.peak_runs(8, (1, 4, 2), [FLOAT32])
    assert sorted(peaks) == ["conv_float32", "matmul_float32"]
    assert np.isfinite(peaks["matmul_float32"][0]())
    times = {"matmul_float32": [1.0, 2.0], "conv_float32": [0.5, 4.0]}
    flop = {name: flop for name, (_, flop) in peaks.items()}
    expected = [max(flop["matmul_float32"] / 1.0, flop["conv_float32"] / 0.5) / 1e9,
                max(flop["matmul_float32"] / 2.0, flop["conv_float32"] / 4.0) / 1e9]
    np.testing.assert_allclose(benchmarks.peak_gflops(times, peaks), expected)
