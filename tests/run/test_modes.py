"""modes.py: each mode from the settings, what a model records for later modes, --init_checkpoint, and set-up faults
that end in one line."""
import glob
import json
import os
import re
import shutil

import imageio.v2 as imageio
import numpy as np
import pytest
import tensorflow as tf

from fcn_tensorflow.data import datasets
from fcn_tensorflow.data import demo
from fcn_tensorflow.data import matconvnet
from fcn_tensorflow.data import reader
from fcn_tensorflow.data import scene_parsing
from fcn_tensorflow.run import checkpoints
from fcn_tensorflow.run import model_record
from fcn_tensorflow.run import modes
from fcn_tensorflow.run.settings import Settings
from tests.helpers import (DATA_URL, MODEL_URL, NARROW_FC, UNREACHABLE, empty_validation_split, spoil_training_images,
                           write_mixed_images)


@pytest.mark.parametrize("fault, words", [
    ("missing weights", "VGG weights not found at .*no_model.* Download %s by hand and put it at that path" % MODEL_URL),
    ("missing data", "No data at .* or pass --data_dir"),
    ("empty split", "No image/annotation pairs in the validation split"),
    ("bad images", "3 of 4 image/annotation pairs are bad, more than 1%; the first is .*ADE_train_0000000[123].jpg"),
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
        demo.write_scene_dataset(flags["data_dir"], num_training=4, num_validation=2, min_size=32, max_size=32)
        (empty_validation_split if fault == "empty split" else spoil_training_images)(flags["data_dir"])
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
                      "backbone": "vgg19", "geometry": "same", "recipe": "none", "mean_pixel": pytest.approx(matconvnet.IMAGENET_MEAN_PIXEL, rel=1e-5), "ignore_label": None,
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
    settings = Settings(augment=True, seed=5, scale_range=["0.75", "1.5"], image_size=32, label_values=None,
                        reader_threads=1, num_classes=None)
    dataset = datasets.open_dataset("ade20k", fcn_flags["data_dir"])
    classes = datasets.Classes(151, scene_parsing.ade20k_class_names(), None, None)
    options = modes.reader_options(settings, dataset, classes)
    training = modes.training_reader_options(settings, dataset, options, np.array([1.0, 2.0, 3.0]), classes)
    assert "augment" not in options and "class_names" not in options  # only training warns of absent classes
    augmentation = training["augment"]
    assert (augmentation.crop_size, augmentation.scale_range, augmentation.seed) == (32, (0.75, 1.5), 5)
    assert "class_names" not in training  # ADE20K's classes are a fixed list: a subset of them is no mistake
    folder = modes.training_reader_options(settings, datasets.open_dataset("folder", "unused"), options,
                                           np.zeros(3), classes)
    assert folder["class_names"] == list(classes.class_names)


def spy_on_reader_threads(monkeypatch):
    """The number of threads of each BatchDatset made, in order."""
    made = []
    real_init = reader.BatchDatset.__init__

    def init(instance, *args, **kwargs):
        real_init(instance, *args, **kwargs)
        made.append(len(instance._threads))
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
    assert threads == [3, 2, 2]  # --reader_threads defaults to the usable cores; validation reads with 2 at most


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


# ---------------------------------------------------------------- own data: 0/255 masks, bad pairs, class weights

def write_mask_dataset(data_dir, high=255, num_training=6, num_validation=3):
    """The binary scenes of the folder layout (classes.txt: background, object) with the object saved as `high`:
    255 gives the 0/255 masks most binary datasets come as."""
    demo.write_folder_dataset(data_dir, num_training, num_validation, 32, 48, binary=True)
    for path in glob.glob(os.path.join(data_dir, "annotations", "*", "*.png")):
        imageio.imwrite(path, (imageio.imread(path) * high).astype(np.uint8))
    return {"dataset": "folder", "data_dir": data_dir}


def tiny_training(vgg_mat, logs_dir, **flags):
    return dict({"max_iteration": 2, "save_every": 50, "log_every": 1, "batch_size": 2, "image_size": 32,
                 "fc_width": NARROW_FC, "model_dir": vgg_mat, "model_url": MODEL_URL, "logs_dir": str(logs_dir) + "/"},
                **flags)


@pytest.mark.slow
def test_0_255_masks_train_with_label_values_and_evaluate_without_it(vgg_mat, tmp_path, run_fcn, capsys):
    data = write_mask_dataset(str(tmp_path / "masks"))
    flags = tiny_training(vgg_mat, tmp_path / "logs", **data)
    with pytest.raises(SystemExit) as exit_info:
        run_fcn("train", **flags)
    assert re.match(r"FCN.py: error: \d of 6 image/annotation pairs are bad.*: labels 255..255 outside 0..1 \(2 "
                    r"classes\); 0/255 masks\? pass --label_values=0,255", exit_info.value.code)
    capsys.readouterr()

    run_fcn("train", label_values="0,255", **dict(flags, max_iteration=7))  # as told, into the same logs_dir
    out = capsys.readouterr().out
    assert "Skipping" not in out and "no pixel" not in out  # both classes seen in the first epoch
    assert model_record.read(flags["logs_dir"])["label_values"] == [0, 255]
    run_fcn("evaluate", data_dir=data["data_dir"], logs_dir=flags["logs_dir"])  # model.json says how to read them
    scores = json.load(open(os.path.join(flags["logs_dir"], "metrics.json")))
    assert scores["num_images"] == 3 and None not in scores["class_iou"]


@pytest.mark.slow
def test_0_255_masks_with_ignore_label_255_warn_once_that_the_object_never_occurs(vgg_mat, tmp_path, run_fcn, capsys):
    data = write_mask_dataset(str(tmp_path / "masks"))
    run_fcn("train", ignore_label=255, **tiny_training(vgg_mat, tmp_path / "logs", max_iteration=8, **data))
    lines = [line for line in capsys.readouterr().out.splitlines() if "no pixel" in line]
    assert len(lines) == 1 and lines[0].startswith("Warning: class 1 (object) has no pixel in the first epoch's 6 "
                                                   "training pairs")


@pytest.mark.slow
def test_one_bad_pair_of_a_small_split_is_skipped_in_training_and_evaluate(vgg_mat, scene_data, tmp_path, run_fcn,
                                                                           capsys):
    data_dir = str(tmp_path / "data")
    shutil.copytree(scene_data, data_dir)
    bad_train = spoil_training_images(data_dir, count=1)[0]
    bad_val = sorted(glob.glob(os.path.join(data_dir, "ADEChallengeData2016", "annotations", "validation", "*")))[1]
    open(bad_val, "wb").close()
    flags = tiny_training(vgg_mat, tmp_path / "logs", data_dir=data_dir, data_url=DATA_URL)
    run_fcn("train", **dict(flags, max_iteration=5, save_every=4))
    out = capsys.readouterr().out
    for path in (bad_train, bad_val):
        assert re.search(r"^Skipping %s: " % re.escape(path), out, re.MULTILINE)
    run_fcn("evaluate", **flags)
    assert json.load(open(os.path.join(flags["logs_dir"], "metrics.json")))["num_images"] == 3


@pytest.mark.slow
def test_a_split_without_any_readable_pair_is_an_error_in_training_and_evaluate(vgg_mat, tmp_path, run_fcn):
    data = write_mask_dataset(str(tmp_path / "masks"), high=1, num_training=2, num_validation=2)
    for path in glob.glob(os.path.join(data["data_dir"], "images", "*", "*.png")):
        open(path, "wb").close()
    flags = tiny_training(vgg_mat, tmp_path / "logs", batch_size=1, **data)
    with pytest.raises(SystemExit) as exit_info:
        run_fcn("evaluate", **flags)
    assert exit_info.value.code.startswith("FCN.py: error: None of the 2 image/annotation pairs of the validation "
                                           "split can be read; the first is ")
    with pytest.raises(SystemExit) as exit_info:
        run_fcn("train", **flags)
    assert exit_info.value.code.startswith("FCN.py: error: Only 0 of 2 image/annotation pairs can be read")


@pytest.mark.slow
def test_median_frequency_weights_are_printed_recorded_and_kept_on_resume(vgg_mat, tmp_path, run_fcn, capsys):
    data = write_mask_dataset(str(tmp_path / "masks"), high=1)
    flags = tiny_training(vgg_mat, tmp_path / "logs", **data)
    run_fcn("train", class_weights="median_frequency", **flags)
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.startswith("Class weights")]
    assert len(lines) == 1 and re.match(r"Class weights \(median frequency over 6 training pairs\): background "
                                        r"[\d.]+, object [\d.]+$", lines[0])
    assert re.search(r"^Step: 0, Train_loss:\S+ \([\d.]+ images/s, [\d.]+% waiting for data\)$", out, re.MULTILINE)
    record = model_record.read(flags["logs_dir"])
    assert record["class_weights_from"] == "median_frequency"
    assert len(record["class_weights"]) == 2 and record["class_weights"][0] < 1 < record["class_weights"][1]

    run_fcn("train", **dict(flags, max_iteration=3))  # resumed without the flag: the recorded weights, not recounted
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("Class weights")]
    assert lines == ["Class weights (median_frequency, recorded in %smodel.json): background %.4g, object %.4g"
                     % ((flags["logs_dir"],) + tuple(record["class_weights"]))]


def test_a_class_weights_file_of_another_length_is_one_line(vgg_mat, tmp_path, run_fcn):
    data = write_mask_dataset(str(tmp_path / "masks"), high=1)
    (tmp_path / "weights.txt").write_text("1\n2\n3\n")
    with pytest.raises(SystemExit) as exit_info:
        run_fcn("train", class_weights=str(tmp_path / "weights.txt"), **tiny_training(vgg_mat, tmp_path / "logs", **data))
    assert exit_info.value.code == ("FCN.py: error: --class_weights=%s holds 3 weights but the model has 2 classes"
                                    % (tmp_path / "weights.txt"))
