"""benchmark.py: the quick run goes through every measurement and writes sane numbers."""
import json

import benchmark

KEYS = ("peak_gflops", "model_gflops_per_image", "train_images_per_sec", "train_flop_utilization",
        "infer_ms_64", "infer_ms_96", "infer_flop_utilization", "naive_train_images_per_sec",
        "speedup_vs_naive", "data_wait_fraction", "peak_rss_mb", "replicas_1_train_images_per_sec",
        "replicas_2_train_images_per_sec")


def test_quick_run_writes_every_key(tmp_path):
    path = tmp_path / "benchmark.json"
    benchmark.main(["--quick", "--json", str(path)])
    results = json.loads(path.read_text())
    for key in KEYS:
        assert results[key] > 0 or key == "data_wait_fraction", key
    assert 0 <= results["data_wait_fraction"] < 1
    # the narrow net of --quick at 64x64: VGG convs + conv6-8 + the upsampling, counted by hand
    assert 0.04 < results["model_gflops_per_image"] < 0.06
    assert 2 * results["model_gflops_per_image"] < results["train_gflops_per_image"] < 3.5 * results[
        "model_gflops_per_image"]
