"""reference_files.py: the class lists of the paper's other released FCNs (PASCAL-Context, SIFT Flow semantic and
geometric, NYUDv2) and VOC's seg11valid, shipped in the package; their datasets (--dataset=pascal_context, ...) list
a folder of pairs with the fixed list, and FCN.py scores one."""
import json
import os
import shutil

import numpy as np
import pytest

from fcn_tensorflow.data import datasets
from fcn_tensorflow.data import demo
from fcn_tensorflow.data import reference_files
from fcn_tensorflow.data import voc
from fcn_tensorflow.data.pairs import read_ids
from tests.helpers import source

PACKAGE_DIR = os.path.dirname(os.path.abspath(datasets.__file__))
# (dataset, class count, first name, last name)
CLASS_LISTS = [("pascal_context", 60, "background", "wood"), ("siftflow", 33, "awning", "window"),
               ("siftflow_geometric", 3, "sky", "vertical"), ("nyud", 40, "wall", "otherprop"),
               ("voc", 21, "background", "tvmonitor"), ("ade20k", 151, "other", "flag")]


@pytest.mark.parametrize("name, count, first, last", CLASS_LISTS, ids=[item[0] for item in CLASS_LISTS])
def test_each_fixed_class_list_is_read_without_data(name, count, first, last):
    names, palette = datasets.class_list(name)
    assert (len(names), names[0], names[-1]) == (count, first, last)
    assert palette.shape == (count, 3) and palette.dtype == np.uint8
    if name != "ade20k":  # ADE20K's official colours repeat one; the devkit's never do
        assert len({tuple(color) for color in palette}) == count
        np.testing.assert_array_equal(palette, voc.voc_palette(count))
    assert datasets.dataset_with_class_count(count) == name


def test_the_lists_keep_the_reference_s_names_and_order():
    assert datasets.class_list("pascal_context")[0][:21] == list(voc.VOC_CLASSES)  # VOC's, then the context classes
    assert datasets.class_list("pascal_context")[0][21:24] == ["bag", "bed", "bench"]
    siftflow = datasets.class_list("siftflow")[0]
    assert siftflow.index("sky") == 27 and siftflow.index("tree") == 31  # the file's 28 and 32, shifted by -1
    nyud = datasets.class_list("nyud")[0]
    assert nyud[19] == "floor mat" and nyud[23] == "refridgerator" and nyud[31] == "night stand"
    assert datasets.class_list("siftflow_geometric")[0] == ["sky", "horizontal", "vertical"]
    assert set(reference_files.CLASS_LISTS) < set(datasets.FIXED_LISTS)
    assert datasets.dataset_with_class_count(5) is None
    for name in ("folder", "arrays"):
        with pytest.raises(ValueError, match="--dataset=%s has no fixed class list" % name):
            datasets.class_list(name)


def test_the_shipped_files_name_their_source_and_licence():
    readme = open(os.path.join(reference_files.REFERENCE_DIR, "README.md")).read()
    assert "shelhamer/fcn.berkeleyvision.org" in readme and "1305c73" in readme and "BSD-2" in readme
    for path in ("data/pascal/seg11valid.txt", "data/pascal-context/classes-59.txt", "data/sift-flow/classes.txt",
                 "data/nyud/classes.txt"):
        assert path in readme
    assert "Redistribution and use in source and binary forms" in open(
        os.path.join(reference_files.REFERENCE_DIR, "LICENSE")).read()


def test_seg11valid_is_the_reference_s_736_ids_shipped_in_the_package():
    path = reference_files.voc_val_list("seg11valid")
    assert path.startswith(PACKAGE_DIR) and path.endswith(os.path.join("reference", "voc", "seg11valid.txt"))
    ids = read_ids(path)
    assert len(ids) == len(set(ids)) == 736 and ids[0] == "2007_000033" and ids[-1] == "2011_003271"
    assert all(len(name) == 11 and name[4] == "_" and name[:4] <= "2011" for name in ids)
    assert reference_files.voc_val_list("my_val.txt") == "my_val.txt"  # any other value is a file


@pytest.mark.parametrize("name", reference_files.CLASS_LISTS)
def test_each_paper_dataset_lists_a_folder_with_its_fixed_classes(name, tmp_path):
    data_dir = str(tmp_path / name)
    demo.write_folder_dataset(data_dir, 3, 2, 32, 40)  # its classes.txt (5 names) is not this dataset's
    dataset = datasets.Dataset(name, source(data_dir))
    training, validation = dataset.list_pairs()
    assert len(training) == 3 and len(validation) == 2
    classes = dataset.describe()
    assert classes.class_names == datasets.class_list(name)[0] and classes.ignore_label == 255
    assert not dataset.has_own_classes and dataset.stated_class_count() is None
    assert dataset.label_colors() is None and dataset.unscored_class(classes) is None

    pairs = "images/training/training_0001.png annotations/training/training_0001.png\n"
    (tmp_path / "train.txt").write_text(pairs)
    training, _ = datasets.Dataset(name, source(data_dir, train_list=str(tmp_path / "train.txt"))).list_pairs(
        ("training",))
    assert [record["filename"] for record in training] == ["training_0001"]


@pytest.mark.parametrize("options, words", [
    ({"sbd_dir": "{folder}"}, "--sbd_dir is for --dataset=voc, not nyud"),
    ({"val_list": "{folder}"}, "--val_list={folder} is a folder: it should be a text file of "
                               "`image_path annotation_path` lines"),
    ({"val_list": "seg11valid"}, "--val_list=seg11valid does not exist"),  # the name is VOC's alone
    ({}, "--data_dir={missing} does not exist: it should be the folder of your images/ and annotations/ "
         "(--dataset=nyud)"),
])
def test_a_paper_dataset_s_paths_are_checked_as_a_folder_s(tmp_path, options, words):
    paths = {"folder": str(tmp_path), "missing": str(tmp_path / "missing")}
    options = {key: value.format(**paths) for key, value in options.items()}
    with pytest.raises(ValueError) as error:
        datasets.Dataset("nyud", source(paths["missing"], **options)).check_paths()
    assert str(error.value) == words.format(**paths)


def test_fcn_scores_a_nyud_folder_with_its_40_classes(tmp_path, run_fcn):
    data_dir = str(tmp_path / "nyud")
    demo.write_folder_dataset(data_dir, 2, 2, 32, 40)
    predictions = str(tmp_path / "predicted")
    shutil.copytree(os.path.join(data_dir, "annotations", "validation"), predictions)  # a perfect model
    logs_dir = str(tmp_path / "logs")
    run_fcn("evaluate", dataset="nyud", data_dir=data_dir, predictions_dir=predictions, logs_dir=logs_dir)
    with open(os.path.join(logs_dir, "metrics.json")) as metrics:
        scores = json.load(metrics)
    assert scores["num_images"] == 2 and len(scores["class_iou"]) == 40 and scores["pixel_accuracy"] == 1.0
    assert scores["class_iou"][0] == 1.0 and scores["class_iou"][39] is None  # "wall" seen, "otherprop" never
