"""precision.py, and what --mixed_precision does in each mode: bfloat16 on a CPU that has it (float32 variables and
checkpoints), float16 with loss scaling on a GPU, float32 with one line elsewhere."""
import json
import os
import subprocess
import sys

import imageio.v2 as imageio
import numpy as np
import pytest
import tensorflow as tf

from fcn_tensorflow.run import modes
from fcn_tensorflow.run import precision
from fcn_tensorflow.run import session
from tests.helpers import run_main

HAS_BFLOAT16 = precision.mixed_precision_type(False)[0] == precision.BFLOAT16
needs_bfloat16 = pytest.mark.skipif(not HAS_BFLOAT16, reason="this CPU has neither avx512_bf16 nor amx_bf16")


def write_cpuinfo(path, flags):
    path.write_text("processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: %s\n\nprocessor\t: 1\nflags\t\t: %s\n"
                    % (flags, flags))
    return str(path)


def test_the_cpu_flags_choose_the_precision(tmp_path):
    with_bf16 = write_cpuinfo(tmp_path / "zen4", "fpu avx2 avx512f avx512_bf16 avx512_vnni")
    with_amx = write_cpuinfo(tmp_path / "sapphire", "fpu avx512f amx_tile amx_bf16 amx_int8")
    without = write_cpuinfo(tmp_path / "older", "fpu avx2 avx512f avx512bw")
    assert precision.cpu_flags(with_bf16) == {"fpu", "avx2", "avx512f", "avx512_bf16", "avx512_vnni"}
    assert precision.mixed_precision_type(False, with_bf16)[0] == "bfloat16"
    assert precision.mixed_precision_type(False, with_amx)[0] == "bfloat16"
    assert precision.mixed_precision_type(True, without) == ("float16", None)
    assert precision.mixed_precision_type(False, without) == (
        "float32", "--mixed_precision: this CPU has neither avx512_bf16 nor amx_bf16, so it runs in float32")
    missing = str(tmp_path / "no_cpuinfo")
    assert precision.mixed_precision_type(False, missing) == (
        "float32", "--mixed_precision: cannot read the CPU's flags (no %s), so it runs in float32" % missing)


def test_a_cpu_with_bfloat16_says_in_one_line_that_bfloat16_is_on(tmp_path):
    with_bf16 = write_cpuinfo(tmp_path / "zen4", "fpu avx2 avx512f avx512_bf16 avx512_vnni")
    with_both = write_cpuinfo(tmp_path / "granite", "fpu avx512f avx512_bf16 amx_tile amx_bf16")
    assert precision.mixed_precision_type(False, with_bf16) == (
        "bfloat16", "--mixed_precision: this CPU has avx512_bf16, so convolutions and matmuls run in bfloat16 (the "
        "loss, softmax and scores in float32)")
    assert "has avx512_bf16 and amx_bf16, so" in precision.mixed_precision_type(False, with_both)[1]


@needs_bfloat16
def test_mixed_precision_on_a_bfloat16_cpu_prints_one_line_naming_bfloat16(trained_flags, run_fcn, tmp_path,
                                                                           monkeypatch, capsys):
    monkeypatch.setattr(precision, "CPUINFO", write_cpuinfo(tmp_path / "cpuinfo", "fpu avx512f avx512_bf16"))
    run_fcn("visualize", mixed_precision=True, **trained_flags)
    lines = [line for line in capsys.readouterr().out.splitlines() if "bfloat16" in line]
    assert lines == ["--mixed_precision: this CPU has avx512_bf16, so convolutions and matmuls run in bfloat16 (the "
                     "loss, softmax and scores in float32)"]


def spy_on_sessions(monkeypatch):
    """The precision of every session modes.py makes, in order."""
    made = []

    def make_session(xla=False, precision=precision.FLOAT32):
        made.append(precision)
        return real_make_session(xla, precision)
    real_make_session = session.make_session
    monkeypatch.setattr(session, "make_session", make_session)
    return made


def saved_types(logs_dir):
    return tf.train.load_checkpoint(tf.train.latest_checkpoint(logs_dir)).get_variable_to_dtype_map()


def test_a_cpu_without_bfloat16_says_so_in_one_line_and_runs_float32(fcn_flags, run_fcn, tmp_path, monkeypatch,
                                                                       capsys):
    monkeypatch.setattr(precision, "CPUINFO", write_cpuinfo(tmp_path / "cpuinfo", "fpu avx2 avx512f"))
    made = spy_on_sessions(monkeypatch)
    run_fcn("train", max_iteration=2, save_every=10, mixed_precision=True, **fcn_flags)
    out = capsys.readouterr().out
    assert out.count("--mixed_precision: this CPU has neither avx512_bf16 nor amx_bf16, so it runs in float32") == 1
    assert made == ["float32"]
    types = saved_types(fcn_flags["logs_dir"])
    assert "current_loss_scale" not in types and set(types.values()) == {tf.float32, tf.int64}


@pytest.mark.slow
def test_on_a_gpu_it_is_float16_with_loss_scaling(fcn_flags, run_fcn, monkeypatch, capsys):
    """The GPU path, run on this CPU: the optimizer scales the loss and its scale is saved with the weights."""
    monkeypatch.setattr(modes, "mixed_precision_type", lambda gpu_present: (precision.FLOAT16, None))
    made = spy_on_sessions(monkeypatch)
    run_fcn("train", max_iteration=3, save_every=10, mixed_precision=True, **fcn_flags)
    losses = [float(line.split("Train_loss:")[1].split()[0]) for line in capsys.readouterr().out.splitlines()
              if "Train_loss:" in line]
    assert len(losses) == 3 and np.all(np.isfinite(losses))
    assert made == ["float16"]
    saved = dict(tf.train.list_variables(tf.train.latest_checkpoint(fcn_flags["logs_dir"])))
    assert "current_loss_scale" in saved and saved["inference/W6"] == [7, 7, 16, 16]


@needs_bfloat16
@pytest.mark.slow
def test_bfloat16_training_writes_float32_checkpoints_that_float32_runs_resume(fcn_flags, run_fcn, monkeypatch,
                                                                               capsys):
    made = spy_on_sessions(monkeypatch)
    run_fcn("train", max_iteration=2, save_every=10, **fcn_flags)
    float32_types = saved_types(fcn_flags["logs_dir"])
    run_fcn("train", max_iteration=4, save_every=10, mixed_precision=True, **fcn_flags)
    assert saved_types(fcn_flags["logs_dir"]) == float32_types
    run_fcn("train", max_iteration=5, save_every=10, **fcn_flags)
    run_fcn("visualize", mixed_precision=True, **fcn_flags)
    out = capsys.readouterr().out
    assert out.count("Model restored...") == 3 and "Step: 4, Train_loss:" in out and "compare_6.png in" in out
    assert out.count("--mixed_precision: this CPU has") == 2
    assert made == ["float32", "bfloat16", "float32", "bfloat16"]


def predict_labels(flags, input_folder, output_dir, **more):
    run_main("predict", input=input_folder, output_dir=output_dir, **dict(flags, **more))
    return {name: imageio.imread(os.path.join(output_dir, name)) for name in sorted(os.listdir(output_dir))
            if not name.endswith(("_color.png", "_overlay.png"))}


@needs_bfloat16
@pytest.mark.slow
@pytest.mark.parametrize("infer_size", [64, 0])
def test_a_float32_model_predicts_the_same_labels_in_bfloat16(longer_trained_flags, tmp_path, infer_size):
    images = os.path.join(longer_trained_flags["data_dir"], "ADEChallengeData2016", "images", "validation")
    flags = dict(longer_trained_flags, infer_size=infer_size)
    float32 = predict_labels(flags, images, str(tmp_path / "float32"))
    bfloat16 = predict_labels(flags, images, str(tmp_path / "bfloat16"), mixed_precision=True)
    assert sorted(float32) == sorted(bfloat16) and len(float32) == 4
    agree = sum(np.sum(float32[name] == bfloat16[name]) for name in float32)
    assert agree >= 0.99 * sum(labels.size for labels in float32.values())


LOAD_AND_RUN = """
import sys
import numpy as np
import tensorflow as tf
model = tf.saved_model.load(sys.argv[1])
outputs = model.signatures["serving_default"](images=tf.constant(np.load(sys.argv[2])))
print(sorted(set(variable.dtype.name for variable in model.variables)), outputs["probabilities"].dtype.name)
np.save(sys.argv[3], outputs["labels"].numpy())
"""


def serve(export_dir, images, folder):
    """Run the SavedModel in a new process; returns (what it printed, the labels)."""
    np.save(os.path.join(folder, "images.npy"), images)
    result = subprocess.run([sys.executable, "-c", LOAD_AND_RUN, export_dir, os.path.join(folder, "images.npy"),
                             os.path.join(folder, "labels.npy")], capture_output=True, text=True, check=True)
    return result.stdout.strip(), np.load(os.path.join(folder, "labels.npy"))


@pytest.mark.slow
def test_export_with_mixed_precision_writes_a_bfloat16_saved_model(longer_trained_flags, run_fcn, tmp_path):
    run_fcn("export", export_dir=str(tmp_path / "float32"), **longer_trained_flags)
    run_fcn("export", export_dir=str(tmp_path / "bfloat16"), mixed_precision=True, **longer_trained_flags)
    images = np.random.RandomState(0).randint(0, 256, (2, 45, 70, 3)).astype(np.uint8)
    printed32, labels32 = serve(str(tmp_path / "float32"), images, str(tmp_path))
    printed16, labels16 = serve(str(tmp_path / "bfloat16"), images, str(tmp_path))
    assert printed32 == "['float32'] float32" and printed16 == "['bfloat16'] float32"
    assert labels16.shape == (2, 45, 70) and np.mean(labels16 == labels32) >= 0.99

    def size(folder):
        return sum(os.path.getsize(os.path.join(folder, "variables", name))
                   for name in os.listdir(os.path.join(folder, "variables")))
    assert size(str(tmp_path / "bfloat16")) < 0.6 * size(str(tmp_path / "float32"))


@needs_bfloat16
def test_bfloat16_evaluate_takes_a_float32_init_checkpoint_cast_as_from_its_own_logs(trained_logs, fcn_flags,
                                                                                       run_fcn, capsys):
    run_fcn("evaluate", mixed_precision=True, **dict(fcn_flags, logs_dir=trained_logs))
    restored = json.load(open(os.path.join(trained_logs, "metrics.json")))
    capsys.readouterr()
    run_fcn("evaluate", mixed_precision=True, init_checkpoint=trained_logs, **fcn_flags)  # an empty logs_dir
    out = capsys.readouterr().out
    initialised = [line for line in out.splitlines() if line.startswith("Initialised ")]
    assert len(initialised) == 1 and "fresh" not in initialised[0], out
    counts = initialised[0].split(" network variables")[0].split()
    assert counts[1] == counts[3]  # "Initialised N of N"
    started = json.load(open(os.path.join(fcn_flags["logs_dir"], "metrics.json")))
    assert dict(started, checkpoint=None) == dict(restored, checkpoint=None)
