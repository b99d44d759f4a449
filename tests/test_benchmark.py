"""benchmark.py: the quick run goes through every measurement (bfloat16 ones where the CPU has it) and writes sane
numbers. No assertion on what is faster: the numbers are timings on a shared machine."""
import json

import benchmark
from fcn_tensorflow.data import reader
from fcn_tensorflow.run import precision

KEYS = ("peak_gflops", "model_gflops_per_image", "train_images_per_sec", "train_flop_utilization",
        "infer_ms_64", "infer_ms_96", "infer_flop_utilization", "naive_train_images_per_sec",
        "speedup_vs_naive", "data_wait_fraction", "peak_rss_mb", "native_images_per_sec_one_at_a_time",
        "native_images_per_sec_batched_float32", "native_evaluate_speedup", "replicas_1_train_images_per_sec",
        "replicas_2_train_images_per_sec", "reader_images_per_sec_1_thread", "reader_images_per_sec_all_threads")
BFLOAT16_KEYS = ("bf16_train_speedup", "bf16_infer_speedup", "bf16_peak_gflops",
                 "native_images_per_sec_batched_bfloat16")


def test_quick_run_writes_every_key(tmp_path):
    path = tmp_path / "benchmark.json"
    benchmark.main(["--quick", "--json", str(path)])
    results = json.loads(path.read_text())
    for key in KEYS + (BFLOAT16_KEYS if results["bfloat16_cpu"] else ()):
        assert results[key] > 0 or key == "data_wait_fraction", key
    assert results["bfloat16_cpu"] == (precision.mixed_precision_type(False)[0] == "bfloat16")
    assert results["settings"]["cpu"] == precision.cpu_model() and results["infer_profile_ms"]
    assert 0 <= results["data_wait_fraction"] < 1
    # the narrow net of --quick at 64x64: VGG convs + conv6-8 + the upsampling, counted by hand
    assert 0.04 < results["model_gflops_per_image"] < 0.06
    assert 2 * results["model_gflops_per_image"] < results["train_gflops_per_image"] < 3.5 * results[
        "model_gflops_per_image"]


def test_the_reader_alone_is_timed_at_one_thread_and_at_all_usable_cores(tmp_path):
    results = benchmark.main(["--reader_only", "--quick", "--json", str(tmp_path / "reader.json")])
    assert results["reader_threads_all"] == reader.usable_cores()
    assert results["reader_images_per_sec_1_thread"] > 0 and results["reader_images_per_sec_all_threads"] > 0
    assert results["settings"]["cpu"] == precision.cpu_model() and "load_average" in results["settings"]
    assert json.loads((tmp_path / "reader.json").read_text()) == results
