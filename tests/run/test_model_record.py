"""model_record.py: what model.json records of a run, how a later run's settings take it, its classes; training into
a logs_dir of another model is refused, in one line naming the folder, what it holds and what this run has, before
anything is written, and a plain resume still works."""
import json
import os
import shutil

import numpy as np
import pytest

from fcn_tensorflow.data import datasets
from fcn_tensorflow.data import demo
from fcn_tensorflow.data import voc
from fcn_tensorflow.run import checkpoints
from fcn_tensorflow.run import model_record
from fcn_tensorflow.run.settings import Settings
from tests.helpers import MODEL_URL, NARROW_FC, run_main


def test_model_record_round_trip_and_a_broken_one_says_what_to_do(tmp_path):
    assert model_record.read(str(tmp_path)) is None
    model_record.write(str(tmp_path), {"fc_width": 64, "dataset": "ade20k"})
    assert os.listdir(str(tmp_path)) == [model_record.MODEL_RECORD]
    assert model_record.read(str(tmp_path)) is None  # no checkpoint beside it: it describes no model
    (tmp_path / "model.ckpt-0.index").write_bytes(b"")
    assert model_record.read(str(tmp_path)) == dict(model_record.RECORDED_BEFORE, fc_width=64, dataset="ade20k")
    (tmp_path / model_record.MODEL_RECORD).write_text("{broken")
    with pytest.raises(ValueError, match="model.json cannot be read .* delete it and pass the flags it held"):
        model_record.read(str(tmp_path))


def test_a_record_brings_back_the_classes_and_the_settings_not_given():
    voc_classes = datasets.Classes(21, voc.VOC_CLASSES, voc.voc_palette(21), 255)
    settings = Settings(fc_width=64, head="fcn8s", num_classes=None, image_size=224, transpose_vgg_kernels=False,
                        learn_upsampling=True, dataset="voc", ignore_label=None, backbone="vgg19", geometry="same",
                        recipe="none")
    record = json.loads(json.dumps(model_record.of_model(settings, np.array([1.0, 2.0, 3.0]), voc_classes)))
    assert record["num_classes"] == 21 and record["ignore_label"] == 255 and record["mean_pixel"] == [1.0, 2.0, 3.0]
    assert model_record.classes(record, 255).class_names == list(voc.VOC_CLASSES)
    assert model_record.classes({"fc_width": 64}, None) is None  # written before records held class names
    values = dict(settings.as_dict(), fc_width=4096, image_size=64, dataset="ade20k", mode="evaluate",
                  logs_dir="logs/")
    applied = model_record.apply(values, {"image_size"}, record)
    assert (applied["fc_width"], applied["image_size"], applied["dataset"]) == (64, 64, "voc")
    given = {"fc_width"}
    mismatched = Settings(**model_record.apply(values, given, record))
    with pytest.raises(ValueError, match="logs/model.json records --fc_width=64 but the command line says 4096"):
        model_record.check(record, mismatched, given, datasets.open_dataset("voc", "unused"))


# ---------------------------------------------------------------- a logs_dir of another model

ABC = ("a", "b", "c")


def write_class_names(data_dir, names):
    with open(os.path.join(data_dir, "classes.txt"), "w") as class_file:
        class_file.write("".join(name + "\n" for name in names))


@pytest.fixture(scope="module")
def abc_model(vgg_mat, tmp_path_factory):
    """(flags, logs_dir) of a 3-class folder model (a, b, c) trained one step on 2-class masks, made once."""
    root = tmp_path_factory.mktemp("abc_model")
    data_dir = str(root / "data")
    demo.write_folder_dataset(data_dir, 4, 2, 32, 32, binary=True)  # labels 0 and 1: they fit 3 classes
    write_class_names(data_dir, ABC)
    flags = {"dataset": "folder", "data_dir": data_dir, "model_dir": vgg_mat, "model_url": MODEL_URL,
             "fc_width": NARROW_FC, "image_size": 32, "batch_size": 2, "save_every": 1, "log_every": 1}
    logs_dir = str(root / "logs") + "/"
    run_main("train", max_iteration=1, logs_dir=logs_dir, **flags)
    return flags, logs_dir


def logs_copy(logs_dir, target):
    """A copy of logs_dir without the training.lock a finished training leaves, so a new one would show."""
    shutil.copytree(logs_dir, target)
    os.remove(os.path.join(target, checkpoints.LOCK_FILE))
    return str(target) + "/"


def contents(folder):
    """{relative path: bytes} of every file under folder."""
    found = {}
    for root, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(root, name)
            with open(path, "rb") as data:
                found[os.path.relpath(path, folder)] = data.read()
    return found


def refusal(logs_dir, held, this_run):
    return ("FCN.py: error: %s holds %s; this run has %s: use another --logs_dir, or --init_checkpoint=%s to start "
            "from it" % (logs_dir, held, this_run, logs_dir))


@pytest.mark.parametrize("data, count", [("binary", 2), ("five", 5)])
def test_training_other_data_into_a_logs_dir_of_another_class_count_is_refused(abc_model, run_fcn, tmp_path, data,
                                                                               count):
    """Old code: 2-class data trained on the 3-class model (exit 0, model.json kept a, b, c); 5-class data failed
    on its labels, blaming --data_dir."""
    flags, logs_dir = abc_model
    logs = logs_copy(logs_dir, tmp_path / "logs")
    data_dir = str(tmp_path / "data")
    demo.write_folder_dataset(data_dir, 4, 2, 32, 32, binary=data == "binary")
    before = contents(logs)
    with pytest.raises(SystemExit) as exit_info:
        run_fcn("train", max_iteration=3, **dict(flags, data_dir=data_dir, logs_dir=logs))
    assert exit_info.value.code == refusal(logs, "a 3-class folder model (a, b, c)", "%d classes" % count)
    assert contents(logs) == before  # checkpoints, the checkpoint state file and model.json; no training.lock


@pytest.mark.slow
def test_another_dataset_into_a_logs_dir_is_refused_naming_both(trained_logs, fcn_flags, run_fcn, tmp_path):
    """Old code: --dataset=arrays into a copy of ADE20K logs trained on with the 151 ADE20K classes, exit 0."""
    logs = logs_copy(trained_logs, tmp_path / "ade_logs")
    data_dir = str(tmp_path / "arrays")
    demo.write_arrays_dataset(data_dir, 4, 2, 32)
    before = contents(logs)
    with pytest.raises(SystemExit) as exit_info:
        run_fcn("train", max_iteration=4, **dict(fcn_flags, dataset="arrays", data_dir=data_dir, logs_dir=logs))
    assert exit_info.value.code == refusal(logs, "a 151-class ade20k model (other, wall, building, sky, floor, ...)",
                                           "arrays data")
    assert contents(logs) == before


def test_num_classes_other_than_the_model_s_is_refused_the_same_way(abc_model, run_fcn, tmp_path):
    """Old code: "model.json records --num_classes=3 but the command line says 4", which names neither way out."""
    flags, logs_dir = abc_model
    logs = logs_copy(logs_dir, tmp_path / "logs")
    data_dir = str(tmp_path / "data")
    demo.write_folder_dataset(data_dir, 4, 2, 32, 32, binary=True)
    os.remove(os.path.join(data_dir, "classes.txt"))
    with pytest.raises(SystemExit) as exit_info:
        run_fcn("train", max_iteration=3, num_classes=4, **dict(flags, data_dir=data_dir, logs_dir=logs))
    assert exit_info.value.code == refusal(logs, "a 3-class folder model (a, b, c)", "4 classes")


@pytest.mark.parametrize("given", ["same flags", pytest.param("no data flags", marks=pytest.mark.slow),
                                   pytest.param("no class file", marks=pytest.mark.slow)])
def test_resuming_the_same_model_still_works(abc_model, run_fcn, tmp_path, capsys, given):
    flags, logs_dir = abc_model
    logs = logs_copy(logs_dir, tmp_path / "logs")
    flags = dict(flags, logs_dir=logs)
    if given == "no data flags":  # model.json brings --dataset=folder
        del flags["dataset"]
    elif given == "no class file":  # the data says nothing of its classes: model.json does
        flags["data_dir"] = str(tmp_path / "data")
        demo.write_folder_dataset(flags["data_dir"], 4, 2, 32, 32, binary=True)
        os.remove(os.path.join(flags["data_dir"], "classes.txt"))
    capsys.readouterr()
    run_fcn("train", max_iteration=2, **flags)
    assert "Step: 1, Train_loss:" in capsys.readouterr().out
    assert model_record.read(logs)["class_names"] == list(ABC)


ABC_RECORD = {"dataset": "folder", "num_classes": 3, "class_names": list(ABC)}


@pytest.mark.parametrize("dataset, stated, labels, this_run", [
    ("folder", 2, None, "2 classes"),
    ("arrays", None, None, "arrays data"),
    ("folder", None, 4, "labels of 4 classes"),
])
def test_the_check_names_what_this_run_has(dataset, stated, labels, this_run):
    with pytest.raises(ValueError) as error:
        model_record.check_same_model(ABC_RECORD, "logs/", dataset, stated, labels)
    assert str(error.value) == ("logs/ holds a 3-class folder model (a, b, c); this run has %s: use another "
                                "--logs_dir, or --init_checkpoint=logs/ to start from it" % this_run)


@pytest.mark.parametrize("dataset, stated, labels", [
    ("folder", 3, None),  # the same classes
    ("folder", None, None),  # the data states nothing: model.json says
    ("folder", None, 2),  # arrays labels of fewer classes: a model trained with a larger --num_classes
])
def test_the_check_lets_the_same_model_resume(dataset, stated, labels):
    model_record.check_same_model(ABC_RECORD, "logs/", dataset, stated, labels)


def test_label_values_state_the_class_count_of_arrays_of_raw_values(tmp_path):
    """0/255 arrays: by their largest label 256 classes, by --label_values=0,255 (given, or recorded) 2."""
    data_dir = str(tmp_path / "arrays")
    demo.write_arrays_dataset(data_dir, 2, 1, 32)
    for prefix in ("train", "validation"):
        labels_path = datasets.array_paths(data_dir, prefix)[1]
        np.save(labels_path, (np.load(labels_path) > 0) * np.uint8(255))
    record = {"dataset": "arrays", "num_classes": 2, "class_names": ["class 0", "class 1"], "label_values": [0, 255]}
    values = {"dataset": "arrays", "data_dir": data_dir, "ignore_label": None, "num_classes": None,
              "label_values": None, "logs_dir": "logs/"}

    def check(record, **given):
        settings = Settings(**model_record.apply(dict(values, **given), set(given), record))
        dataset = datasets.open_dataset(settings.dataset, settings.data_dir, ignore_label=settings.ignore_label)
        model_record.check_against_data(record, settings, set(given), dataset)
    check(record)
    check(record, label_values=[0, 255])
    with pytest.raises(ValueError, match="this run has labels of 256 classes"):
        check(dict(record, label_values=None))
    with pytest.raises(ValueError, match="this run has 3 classes"):
        check(record, label_values=[0, 128, 255])


def test_a_record_without_dataset_or_names_is_described_by_what_it_has():
    assert model_record.described({"num_classes": 151}) == "a 151-class model"
    many = {"dataset": "ade20k", "num_classes": 151, "class_names": ["c%d" % index for index in range(151)]}
    assert model_record.described(many) == "a 151-class ade20k model (c0, c1, c2, c3, c4, ...)"


def test_a_record_from_before_backbones_and_geometries_describes_vgg19_in_the_same_geometry(tmp_path):
    logs_dir = str(tmp_path)
    for name in ("checkpoint", "model.ckpt-5.index"):
        open(os.path.join(logs_dir, name), "w").close()
    with open(os.path.join(logs_dir, "model.json"), "w") as record_file:
        json.dump({"fc_width": 64, "head": "fcn8s", "num_classes": 3}, record_file)
    record = model_record.read(logs_dir)
    assert (record["backbone"], record["geometry"]) == ("vgg19", "same")
    given = {"backbone"}
    settings = Settings(**dict(model_record.apply({"backbone": "vgg16", "mode": "evaluate", "logs_dir": logs_dir,
                                                   "fc_width": 4096, "head": "original", "num_classes": None,
                                                   "geometry": "same"}, given, record)))
    with pytest.raises(ValueError, match="records --backbone=vgg19 but the command line says vgg16"):
        model_record.check(record, settings, given, None)
