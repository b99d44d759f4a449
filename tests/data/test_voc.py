"""voc.py: the devkit's colours, VOC's classes, SBD found where its archive extracts, and --val_list: a file of ids
(or the shipped seg11valid) validated on instead of val.txt and left out of training."""
import json
import os
import shutil

import imageio.v2 as imageio
import numpy as np
import pytest

from fcn_tensorflow.data import datasets
from fcn_tensorflow.data import reference_files
from fcn_tensorflow.data import voc
from fcn_tensorflow.data.reader import DataError, read_annotation
from tests.helpers import NEW_SBD_IDS, source


def test_the_devkit_palette_and_the_classes():
    palette = voc.voc_palette()
    assert palette.shape == (256, 3) and palette.dtype == np.uint8
    assert [tuple(palette[index]) for index in (0, 1, 15, 255)] == [(0, 0, 0), (128, 0, 0), (192, 128, 128),
                                                                    (224, 224, 192)]
    names, colours = voc.voc_classes(None, None, 255)
    assert len(names) == 21 and names[15] == "person" and len(colours) == 21


def test_sbd_is_found_in_its_release_folder(tmp_path):
    (tmp_path / "benchmark_RELEASE" / "dataset" / "cls").mkdir(parents=True)
    assert voc._sbd_dataset_dir(str(tmp_path)) == str(tmp_path / "benchmark_RELEASE" / "dataset")
    with pytest.raises(DataError, match="extract benchmark.tgz"):
        voc._sbd_dataset_dir(str(tmp_path / "benchmark_RELEASE" / "dataset" / "cls"))


# ---------------------------------------------------------------- --val_list: the ids validated on

def write_ids(path, ids):
    path.write_text("".join(name + "\n" for name in ids))
    return str(path)


def filenames(records):
    return [record["filename"] for record in records]


def test_a_val_list_of_ids_replaces_val_txt_and_leaves_training(voc_dir, tmp_path, capsys):
    data_dir, sbd_dir, ids = voc_dir
    chosen = [ids["validation"][1], ids["training"][0], "2099_000001"]
    val_list = write_ids(tmp_path / "val.txt", chosen[:2] + ["", chosen[2]])
    training, validation = datasets.Dataset("voc", source(data_dir, val_list=val_list)).list_pairs()
    assert filenames(validation) == chosen[:2] and filenames(training) == ids["training"][1:]
    out = capsys.readouterr().out
    assert "Validation: the 3 ids of %s" % val_list in out
    assert "Left out, missing: %s" % os.path.join(data_dir, voc.VOC_ROOT, "JPEGImages", "2099_000001.jpg") in out
    assert "Left out of training: the 1 ids of %s" % os.path.join(data_dir, voc.VOC_ROOT, "ImageSets",
                                                                  "Segmentation", "train.txt") in out

    # SBD adds its ids that are neither VOC train nor listed: here VOC val's first, no longer validated on
    training, _ = datasets.Dataset("voc", source(data_dir, sbd_dir=sbd_dir, val_list=val_list)).list_pairs()
    assert sorted(filenames(training)) == sorted(ids["training"][1:] + NEW_SBD_IDS + ids["validation"][:1])
    assert not set(filenames(training)) & set(chosen)


def test_seg11valid_names_the_shipped_list(voc_dir, capsys):
    data_dir, _, ids = voc_dir
    root = os.path.join(data_dir, voc.VOC_ROOT)
    for scene, name in zip(ids["validation"], ("2007_000033", "2011_003271")):  # two of its ids, drawn
        for folder, extension in (("JPEGImages", ".jpg"), ("SegmentationClass", ".png")):
            shutil.copy(os.path.join(root, folder, scene + extension), os.path.join(root, folder, name + extension))
    dataset = datasets.Dataset("voc", source(data_dir, val_list="seg11valid"))
    dataset.check_paths()
    assert dataset.source.val_list == reference_files.VOC_VAL_LISTS["seg11valid"]
    _, validation = dataset.list_pairs(("validation",))
    assert filenames(validation) == ["2007_000033", "2011_003271"]
    out = capsys.readouterr().out
    assert "Validation: the 736 ids of %s" % dataset.source.val_list in out and out.count("Left out, missing") == 734


def test_a_val_list_that_is_not_one_of_ids_is_one_line(voc_dir, tmp_path):
    data_dir = voc_dir[0]
    pairs = tmp_path / "pairs.txt"
    pairs.write_text("# a folder's list\nimages/a.png annotations/a.png\n")
    with pytest.raises(DataError, match=r"pairs.txt line 1: expected one image id a line, found 4 fields"):
        datasets.Dataset("voc", source(data_dir, val_list=str(pairs))).list_pairs()
    unknown = write_ids(tmp_path / "unknown.txt", ["2099_000001"])
    with pytest.raises(DataError, match=r"No image/annotation pairs in the validation split: expected them in "
                                        r".*JPEGImages/<id>.jpg and SegmentationClass/<id>.png for the ids of "
                                        r".*unknown.txt"):
        datasets.Dataset("voc", source(data_dir, val_list=unknown)).list_pairs()


@pytest.mark.parametrize("dataset, options, words", [
    ("voc", {"val_list": "{folder}"}, "--val_list={folder} is a folder: it should be a text file of VOC image ids, "
                                      "one a line (as ImageSets/Segmentation/val.txt), or seg11valid"),
    ("voc", {"train_list": "{file}"}, "--train_list is for --dataset=folder, pascal_context, siftflow, "
                                      "siftflow_geometric or nyud, not voc"),
    ("ade20k", {"val_list": "{file}"}, "--val_list is for --dataset=voc, folder, pascal_context, siftflow, "
                                       "siftflow_geometric or nyud, not ade20k"),
    ("voc", {"val_list": "{missing}"}, "--val_list={missing} does not exist"),
])
def test_val_list_misuse_is_named(tmp_path, dataset, options, words):
    (tmp_path / "file").write_text("2007_000033\n")
    paths = {name: str(tmp_path / name) for name in ("file", "missing")}
    paths["folder"] = str(tmp_path)
    options = {key: value.format(**paths) for key, value in options.items()}
    with pytest.raises(ValueError) as error:
        datasets.Dataset(dataset, source(str(tmp_path), **options)).check_paths()
    assert str(error.value) == words.format(**paths)


def test_evaluate_scores_the_images_of_the_val_list(voc_dir, tmp_path, run_fcn):
    data_dir, _, ids = voc_dir
    chosen = [ids["training"][2], ids["validation"][0]]
    predictions = tmp_path / "predicted"
    predictions.mkdir()
    for name in chosen:  # a perfect model's label maps (background where the truth is ignored)
        labels = read_annotation(os.path.join(data_dir, voc.VOC_ROOT, "SegmentationClass", name + ".png"))
        imageio.imwrite(str(predictions / (name + ".png")), np.where(labels == 255, 0, labels).astype(np.uint8))
    logs_dir = str(tmp_path / "logs")
    run_fcn("evaluate", dataset="voc", data_dir=data_dir, val_list=write_ids(tmp_path / "ids.txt", chosen),
            predictions_dir=str(predictions), logs_dir=logs_dir)
    with open(os.path.join(logs_dir, "metrics.json")) as metrics:
        scores = json.load(metrics)
    assert scores["num_images"] == 2 and scores["pixel_accuracy"] == 1.0 and len(scores["class_iou"]) == 21
