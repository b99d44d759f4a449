"""benchmarks.py: what benchmark.py's figures are made of (interleaved rounds, ratios, peaks, child processes, the
random caffemodel), on tiny work."""
import os
import sys

import numpy as np
import pytest

from fcn_tensorflow.data import released_fcns
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


def test_the_random_caffemodel_is_the_released_net_at_the_widths_asked_and_its_size_is_reported(tmp_path):
    path = str(tmp_path / "voc-fcn8s.caffemodel")
    figures = benchmarks.write_random_caffemodel(path, (2, 4, 4, 8, 8), 8)
    assert figures["caffemodel_mb"] == os.path.getsize(path) / 1e6 and figures["write_s"] >= 0
    imported = released_fcns.import_net(path)
    assert (imported.net, imported.head, imported.num_classes, imported.fc_width) == ("voc-fcn8s", "fcn8s", 21, 8)
    assert tuple(imported.widths) == (2, 4, 4, 8, 8)


def test_a_timed_process_reports_its_own_peak_memory_and_a_failure_its_output():
    seconds, peak_mb, output = benchmarks.timed_process(
        [sys.executable, "-c", "b = bytearray(300 * 2 ** 20); print('held', len(b))"])
    assert seconds > 0 and 300 < peak_mb < 1000 and output.strip() == "held %d" % (300 * 2 ** 20)
    with pytest.raises(RuntimeError, match="exited with 3:\n.*went wrong"):
        benchmarks.timed_process([sys.executable, "-c", "import sys; print('went wrong'); sys.exit(3)"])
