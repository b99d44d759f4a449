"""modes.py: each mode from the settings, what a model records for later modes, --init_checkpoint, and set-up faults
that end in one line."""
import json
import os
import re

import numpy as np
import pytest
import tensorflow as tf

from fcn_tensorflow.data import datasets
from fcn_tensorflow.data import demo as demo_data
from fcn_tensorflow.data import matconvnet
from fcn_tensorflow.data import reader
from fcn_tensorflow.data import scene_parsing
from fcn_tensorflow.run import checkpoints
from fcn_tensorflow.run import model_record
from fcn_tensorflow.run import modes
from fcn_tensorflow.run.settings import Settings
from tests.helpers import (MODEL_URL, NARROW_FC, UNREACHABLE, write_mixed_images, spoil_first_training_image, empty_validation_split)


@pytest.mark.parametrize("fault, words", [
    ("missing weights", "VGG weights not found at .*no_model.* Download %s by hand and put it at that path" % MODEL_URL),
    ("missing data", "No data at .* or pass --data_dir"),
    ("empty split", "No image/annotation pairs in the validation split"),
    ("bad images", "1 of 4 image/annotation pairs are bad, more than 1%; the first is .*ADE_train_00000001.jpg"),
])
def test_setup_faults_exit_with_a_message_not_a_traceback(fcn_flags, run_fcn, tmp_path, fault, words):
    flags = dict(fcn_flags, model_url=MODEL_URL,
                 data_url=UNREACHABLE + "ADEChallengeData2016.zip")
    if fault == "missing weights":
        flags["model_dir"] = str(tmp_path / "no_model")
    elif fault == "missing data":
        flags["data_dir"] = str(tmp_path / "no_data")
    else:
        flags["data_dir"] = str(tmp_path / "data")
        demo_data.write_scene_dataset(flags["data_dir"], num_training=4, num_validation=2, min_size=32, max_size=32)
        (empty_validation_split if fault == "empty split" else spoil_first_training_image)(flags["data_dir"])
    with pytest.raises(SystemExit) as exit_info:
        run_fcn("train", max_iteration=3, **flags)
    assert str(exit_info.value.code).startswith("FCN.py: error: ")
    assert re.search(words, exit_info.value.code)
    if fault != "bad images":  # refused before training started: no logs_dir left behind (old code left one)
        assert not os.path.exists(flags["logs_dir"])


def test_evaluate_without_a_checkpoint_says_it_scores_the_untrained_network(fcn_flags, run_fcn, capsys):
    run_fcn("evaluate", **fcn_flags)
    out = capsys.readouterr().out
    assert "No checkpoint in %s: evaluating the untrained network (VGG weights and a random head)" \
        % fcn_flags["logs_dir"] in out
    assert json.load(open(os.path.join(fcn_flags["logs_dir"], "metrics.json")))["checkpoint"] is None


def test_training_records_the_model_and_later_modes_rebuild_it_from_that(trained_flags, run_fcn, tmp_path, capsys):
    record = json.load(open(os.path.join(trained_flags["logs_dir"], model_record.MODEL_RECORD)))
    assert record == {"dataset": "ade20k", "num_classes": 151, "fc_width": NARROW_FC, "image_size": 32,
                      "head": "original", "transpose_vgg_kernels": True, "learn_upsampling": True,
                      "mean_pixel": pytest.approx(matconvnet.IMAGENET_MEAN_PIXEL, rel=1e-5), "ignore_label": None,
                      "class_names": scene_parsing.ade20k_class_names(),
                      "palette": scene_parsing.ade20k_palette().tolist()}
    photos = str(tmp_path / "photos")
    write_mixed_images(photos)
    bare = {"logs_dir": trained_flags["logs_dir"], "model_dir": str(tmp_path / "no_model"), "model_url": MODEL_URL}
    assert run_fcn("predict", input=photos, **bare) == 0  # no --fc_width, --image_size nor VGG file
    with pytest.raises(SystemExit, match=r"FCN.py: error: .*model.json records --fc_width=16 but the command line "
                                         r"says 64: drop the flag, or pass another --logs_dir"):
        run_fcn("predict", input=photos, fc_width=64, **bare)


def test_init_checkpoint_starts_a_new_model_from_another_s_matching_variables(trained_flags, run_fcn, tmp_path, capsys):
    capsys.readouterr()
    wider = dict(trained_flags, logs_dir=str(tmp_path / "wider") + "/", fc_width=2 * NARROW_FC)
    run_fcn("train", max_iteration=1, save_every=1, learning_rate=1e-30, init_checkpoint=trained_flags["logs_dir"],
            **wider)
    out = capsys.readouterr().out
    source = checkpoints.list_checkpoints(trained_flags["logs_dir"])[-1]
    assert ("Initialised 39 of 44 network variables from %s; fresh (absent there, or of another shape): inference/W6, "
            "inference/b6, inference/W7, inference/b7, inference/W8" % source) in out
    assert "Step: 0, Train_loss:" in out
    new, old = (tf.train.load_checkpoint(path) for path in (wider["logs_dir"] + "model.ckpt-0", source))
    np.testing.assert_array_equal(new.get_tensor("inference/W_t3"), old.get_tensor("inference/W_t3"))
    assert new.get_tensor("global_step") == 1

    run_fcn("train", max_iteration=2, save_every=1, init_checkpoint=source, **wider)  # its own checkpoint wins
    out = capsys.readouterr().out
    assert "Using the checkpoints in %s: --init_checkpoint=%s is not used" % (wider["logs_dir"], source) in out
    assert "Step: 1, Train_loss:" in out
    with pytest.raises(SystemExit, match="--init_checkpoint=%s is neither a checkpoint" % (tmp_path / "nothing")):
        run_fcn("train", init_checkpoint=str(tmp_path / "nothing"), **wider)


# ---------------------------------------------------------------- validation curves, seeds, augmentation


def test_only_the_training_split_is_augmented(fcn_flags):
    settings = Settings(augment=True, seed=5, scale_range=["0.75", "1.5"], image_size=32, reader_threads=1)
    dataset = datasets.open_dataset("ade20k", fcn_flags["data_dir"])
    options = modes.reader_options(settings, dataset, datasets.Classes(151, None, None, None))
    training = modes.training_reader_options(settings, options, np.array([1.0, 2.0, 3.0]))
    assert "augment" not in options
    augmentation = training["augment"]
    assert (augmentation.crop_size, augmentation.scale_range, augmentation.seed) == (32, (0.75, 1.5), 5)


def spy_on_reader_threads(monkeypatch):
    """The number of threads of each BatchDatset made, in order."""
    made = []
    real_init = reader.BatchDatset.__init__

    def init(reader, *args, **kwargs):
        real_init(reader, *args, **kwargs)
        made.append(len(reader._threads))
    monkeypatch.setattr(reader.BatchDatset, "__init__", init)
    return made


def test_training_says_what_its_counts_are_and_only_its_own_epochs(fcn_flags, run_fcn, monkeypatch, capsys):
    """8 training pairs at batch 2 end an epoch every 4 steps; the 4 validation pairs read at every validation point
    end theirs too, silently."""
    monkeypatch.setattr(reader, "usable_cores", lambda: 3, raising=False)
    threads = spy_on_reader_threads(monkeypatch)
    run_fcn("train", max_iteration=9, save_every=2, **fcn_flags)
    lines = capsys.readouterr().out.splitlines()
    assert "8 training and 4 validation image/annotation pairs" in lines
    assert not [line for line in lines if re.fullmatch(r"\s*[\d.]+\s*", line)]  # no bare numbers
    assert [line for line in lines if "Epochs completed" in line] == ["Epochs completed: 1", "Epochs completed: 2"]
    assert lines.index("Epochs completed: 1") == lines.index(next(line for line in lines if "Step: 4," in line)) - 1
    assert threads == [3, 3, 3]  # --reader_threads defaults to the usable cores


def test_reader_threads_sets_the_threads_of_the_reader(trained_flags, run_fcn, monkeypatch):
    threads = spy_on_reader_threads(monkeypatch)
    run_fcn("visualize", reader_threads=1, **trained_flags)
    assert threads == [1]


def test_without_the_vgg_file_a_restoring_mode_says_it_is_not_needed(trained_flags, run_fcn, tmp_path, capsys):
    model_dir = str(tmp_path / "no_model")
    run_fcn("visualize", **dict(trained_flags, model_dir=model_dir))
    lines = capsys.readouterr().out.splitlines()
    newest = checkpoints.list_checkpoints(trained_flags["logs_dir"])[-1]
    assert [line for line in lines if "VGG" in line] == [
        "Restoring every weight from %s, so no VGG file is needed: VGG shapes from the checkpoint, mean pixel "
        "(123.68, 116.78, 103.94) from model.json" % newest]
    assert not os.path.exists(model_dir)
