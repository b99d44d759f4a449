"""read_MITSceneParsingData: listing pairs, the JSON cache (never a pickle), Windows paths, download and
extraction, ADE20K's names and colours."""
import json
import ntpath
import os
import pickle
import shutil

import numpy as np
import pytest

from fcn_tensorflow.data import demo
from fcn_tensorflow.data import reader as dataset
from fcn_tensorflow.data import scene_parsing
from tests.helpers import TENSORFLOW_LOADED, run_python, serve_directory


@pytest.fixture
def data_dir(tmp_path):
    demo.write_scene_dataset(str(tmp_path), num_training=5, num_validation=3, min_size=32, max_size=40)
    return str(tmp_path)


def test_layout_and_records(data_dir):
    training, validation = scene_parsing.read_dataset(data_dir)
    assert len(training) == 5 and len(validation) == 3
    for record in training + validation:
        assert set(record) == {"image", "annotation", "filename"}
        assert os.path.exists(record["image"]) and os.path.exists(record["annotation"])
        assert os.path.basename(record["image"]) == record["filename"] + ".jpg"
        assert os.path.basename(record["annotation"]) == record["filename"] + ".png"
    assert {r["filename"] for r in validation} == {"ADE_val_%08d" % i for i in (1, 2, 3)}


def test_the_cache_is_json_with_paths_relative_to_data_dir(data_dir, tmp_path, monkeypatch):
    scene_parsing.read_dataset(data_dir)
    with open(os.path.join(data_dir, scene_parsing.CACHE_NAME)) as cache:
        cached = json.load(cache)
    assert all(not os.path.isabs(r["image"]) and r["image"].startswith("ADEChallengeData2016")
               for r in cached["training"])
    moved = str(tmp_path.parent / (tmp_path.name + "_moved"))
    shutil.move(data_dir, moved)
    monkeypatch.chdir("/")
    training, _ = scene_parsing.read_dataset(moved)
    assert all(os.path.exists(r["image"]) for r in training)


def test_stems_with_windows_separators(monkeypatch):
    """On Windows os.path is ntpath: a backslash path must give the stem (the original split on '/')."""
    monkeypatch.setattr(scene_parsing.os, "path", ntpath)
    assert scene_parsing.image_stem(r"C:\Data_zoo\ADEChallengeData2016\images\training\ADE_train_00000001.jpg") \
        == "ADE_train_00000001"
    assert scene_parsing.image_stem("Data_zoo/ADEChallengeData2016/images/training/ADE_train_7.jpg") == "ADE_train_7"


def test_missing_annotation_is_skipped(data_dir, capsys):
    os.remove(os.path.join(data_dir, "ADEChallengeData2016", "annotations", "training", "ADE_train_00000002.png"))
    training, _ = scene_parsing.read_dataset(data_dir)
    assert len(training) == 4
    assert "Annotation file not found for ADE_train_00000002 - Skipping" in capsys.readouterr().out


@pytest.mark.parametrize("damage", ["empty", "missing_file", "garbage", "not_a_listing", "new_image"])
def test_stale_or_broken_cache_is_rebuilt(data_dir, damage, capsys):
    cache_path = os.path.join(data_dir, scene_parsing.CACHE_NAME)
    root = os.path.join(data_dir, "ADEChallengeData2016")
    scene_parsing.read_dataset(data_dir)
    if damage == "empty":  # what the original left behind on Windows
        with open(cache_path, "w") as cache:
            json.dump({"training": [], "validation": []}, cache)
    elif damage == "missing_file":
        os.remove(os.path.join(root, "images", "validation", "ADE_val_00000001.jpg"))
    elif damage == "garbage":
        with open(cache_path, "wb") as cache:
            cache.write(b"not json")
    elif damage == "not_a_listing":
        with open(cache_path, "w") as cache:
            json.dump({"training": [{"image": 3}], "validation": "x"}, cache)
    else:
        for kind, ext in (("images", ".jpg"), ("annotations", ".png")):
            shutil.copy(os.path.join(root, kind, "training", "ADE_train_00000001" + ext),
                        os.path.join(root, kind, "training", "ADE_train_00000099" + ext))
        os.utime(os.path.join(root, "images", "training"), (2e9, 2e9))
    capsys.readouterr()
    training, validation = scene_parsing.read_dataset(data_dir)
    assert "Rebuilding" in capsys.readouterr().out
    assert len(validation) == (2 if damage == "missing_file" else 3)
    assert len(training) == (6 if damage == "new_image" else 5)


class _Payload(object):
    """Unpickling this writes a file: what a planted pickle could do."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_an_old_pickle_is_never_loaded(data_dir, tmp_path, capsys):
    marker = str(tmp_path / "the_pickle_ran")
    with open(os.path.join(data_dir, scene_parsing.OLD_PICKLE_NAME), "wb") as planted:
        pickle.dump({"training": _Payload(marker), "validation": []}, planted)
    training, validation = scene_parsing.read_dataset(data_dir)
    assert (len(training), len(validation)) == (5, 3)
    assert not os.path.exists(marker)
    assert "Ignoring %s: a pickle can run code" % os.path.join(data_dir, scene_parsing.OLD_PICKLE_NAME) \
        in capsys.readouterr().out


def test_listing_does_not_load_tensorflow(data_dir):
    words, stderr = run_python("import sys, read_MITSceneParsingData as s; t, v = s.read_dataset(sys.argv[1]); "
                               "print(len(t))" + TENSORFLOW_LOADED, data_dir)
    assert words[-2:] == ["5", "False"], stderr


def test_ade20k_names_and_palette():
    names, palette = scene_parsing.ade20k_class_names(), scene_parsing.ade20k_palette()
    assert len(names) == 151 and names[0] == "other" and names[1] == "wall" and names[3] == "sky"
    assert palette.shape == (151, 3) and palette.dtype == np.uint8
    assert tuple(palette[0]) == (0, 0, 0) and tuple(palette[1]) == (120, 120, 120)


def test_zip_placed_by_hand_is_extracted(tmp_path):
    source = tmp_path / "source"
    root = demo.write_scene_dataset(str(source), num_training=2, num_validation=1, min_size=32, max_size=33)
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    demo.zip_folder(root, str(data_dir / "ADEChallengeData2016.zip"))
    training, validation = scene_parsing.read_dataset(str(data_dir), data_url="http://127.0.0.1:9/ADEChallengeData2016.zip")
    assert (len(training), len(validation)) == (2, 1)


def test_download_and_extract_from_loopback(tmp_path):
    source = tmp_path / "served"
    root = demo.write_scene_dataset(str(source / "tree"), num_training=2, num_validation=2, min_size=32, max_size=33)
    demo.zip_folder(root, str(source / "ADEChallengeData2016.zip"))
    with serve_directory(str(source)) as url:
        training, validation = scene_parsing.read_dataset(str(tmp_path / "data"), url + "/ADEChallengeData2016.zip")
    assert (len(training), len(validation)) == (2, 2)
    assert os.path.isdir(tmp_path / "data" / "ADEChallengeData2016")

UNREACHABLE_URL = "http://127.0.0.1:9/ADEChallengeData2016.zip"


def small_dataset(data_dir, num_training=3, num_validation=2):
    return demo.write_scene_dataset(str(data_dir), num_training, num_validation, min_size=32, max_size=32)


def test_lists_pairs_and_leaves_out_strays_and_images_without_annotation(tmp_path, capsys):
    root = small_dataset(tmp_path)
    training = os.path.join(root, "images", "training")
    for stray in ("Thumbs.db", ".DS_Store", "notes.txt"):
        open(os.path.join(training, stray), "w").close()
    os.mkdir(os.path.join(training, "subfolder"))
    os.remove(os.path.join(root, "annotations", "training", "ADE_train_00000002.png"))
    training_records, validation_records = scene_parsing.read_dataset(str(tmp_path), UNREACHABLE_URL)
    out = capsys.readouterr().out
    assert sorted(record["filename"] for record in training_records) == ["ADE_train_00000001", "ADE_train_00000003"]
    assert len(validation_records) == 2
    assert "Annotation file not found for ADE_train_00000002 - Skipping" in out
    assert "Not an image, ignored: %s" % os.path.join(training, "notes.txt") in out
    # .DS_Store is not even listed: glob leaves out hidden files
    assert "Left out of training: 1 images without annotation, 2 files that are not images" in out
    assert "Left out of validation" not in out


@pytest.mark.parametrize("emptied", ["images", "annotations"])
def test_empty_split_is_a_clear_error_and_is_not_cached(tmp_path, emptied):
    root = small_dataset(tmp_path)
    folder = os.path.join(root, emptied, "validation")
    for name in os.listdir(folder):
        os.remove(os.path.join(folder, name))
    with pytest.raises(dataset.DataError, match="No image/annotation pairs in the validation split: expected .*"
                                                "Check --data_dir"):
        scene_parsing.read_dataset(str(tmp_path), UNREACHABLE_URL)
    assert not os.path.exists(os.path.join(str(tmp_path), scene_parsing.CACHE_NAME))


def test_missing_data_that_cannot_be_downloaded_says_what_to_do(tmp_path):
    with pytest.raises(IOError, match="No data at .*could not download .* by hand .* or pass --data_dir"):
        scene_parsing.read_dataset(str(tmp_path / "nowhere"), UNREACHABLE_URL)


def test_a_validation_split_alone_is_enough_when_only_it_is_required(tmp_path):
    root = small_dataset(tmp_path, num_training=0, num_validation=2)
    training, validation = scene_parsing.read_dataset(str(tmp_path), UNREACHABLE_URL, required_splits=("validation",))
    assert (len(training), len(validation)) == (0, 2)
    with pytest.raises(dataset.DataError, match="No image/annotation pairs in the training split"):
        scene_parsing.read_dataset(str(tmp_path), UNREACHABLE_URL)
    assert os.path.isdir(root) and not os.path.exists(os.path.join(str(tmp_path), scene_parsing.CACHE_NAME))


def test_a_cut_extraction_does_not_look_complete(tmp_path, monkeypatch):
    import zipfile

    source = tmp_path / "source"
    root = demo.write_scene_dataset(str(source), num_training=2, num_validation=1, min_size=32, max_size=33)
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    demo.zip_folder(root, str(data_dir / "ADEChallengeData2016.zip"))
    extract_all = zipfile.ZipFile.extractall

    def cut_short(archive, path):
        archive.extract(archive.namelist()[0], path)
        raise OSError("No space left on device")
    monkeypatch.setattr(zipfile.ZipFile, "extractall", cut_short)
    with pytest.raises(OSError):
        scene_parsing.read_dataset(str(data_dir), UNREACHABLE_URL)
    assert sorted(os.listdir(str(data_dir))) == ["ADEChallengeData2016.zip"]
    monkeypatch.setattr(zipfile.ZipFile, "extractall", extract_all)
    training, validation = scene_parsing.read_dataset(str(data_dir), UNREACHABLE_URL)
    assert (len(training), len(validation)) == (2, 1)
