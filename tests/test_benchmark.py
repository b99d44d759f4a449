"""benchmark.py: the quick run goes through every measurement (bfloat16 ones where the CPU has it) and writes sane
numbers. No assertion on what is faster: the numbers are timings on a shared machine."""
import glob
import json
import os
import tempfile

import pytest

import benchmark
from fcn_tensorflow.data import reader
from fcn_tensorflow.run import precision

KEYS = ("peak_gflops", "model_gflops_per_image", "train_images_per_sec", "train_flop_utilization",
        "infer_ms_64", "infer_ms_96", "infer_flop_utilization", "naive_train_images_per_sec",
        "speedup_vs_naive", "data_wait_fraction", "peak_rss_mb", "native_images_per_sec_one_at_a_time",
        "native_images_per_sec_batched_float32", "native_evaluate_speedup", "replicas_1_train_images_per_sec",
        "replicas_2_train_images_per_sec", "reader_images_per_sec_1_thread", "reader_images_per_sec_all_threads")
CAFFE_KEYS = ("caffemodel_mb", "write_s", "tensorflow_start_s", "import_command_s", "import_command_peak_rss_mb",
              "import_command_reported_s", "import_in_process_s", "checkpoint_mb", "predict_build_and_restore_s",
              "predict_first_ms", "predict_ms", "predict_peak_rss_mb", "predict_command_s", "predict_command_peak_rss_mb")
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
    assert all(results["caffe_import"][key] > 0 for key in CAFFE_KEYS)
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


@pytest.mark.slow
def test_importing_a_released_caffe_fcn_is_timed_alone_and_its_files_removed(tmp_path, monkeypatch):
    """--caffe_only --quick: a narrow random voc-fcn8s file written, imported both ways and predicted from at
    500x375, every figure written; the file and the checkpoints are gone afterwards (its temporary folder is made
    under tmp_path here, so a benchmark run alongside cannot be mistaken for this one)."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    results = benchmark.main(["--quick", "--caffe_only", "--json", str(tmp_path / "caffe.json")])
    figures = results["caffe_import"]
    for key in CAFFE_KEYS:
        assert figures[key] > 0, key
    assert figures["net"] == "voc-fcn8s" and figures["widths"] == [4, 8, 8, 16, 16] and figures["fc_width"] == 16
    assert figures["predict_labels_shape"] == [375, 500] and figures["predict_restored"] == "model.ckpt-0"
    assert len(figures["load_average_start"]) == len(figures["load_average_end"]) == 3
    assert results["settings"]["cpu"] == precision.cpu_model() and "load_average" in results["settings"]
    assert json.loads((tmp_path / "caffe.json").read_text()) == results
    assert not glob.glob(os.path.join(str(tmp_path), "fcn_benchmark_caffe_*"))
