"""read_MITSceneParsingData.py: listing pairs, leaving out what cannot be a pair, clear errors for no data."""
import os

import pytest

import BatchDatsetReader as dataset
import demo_data
import read_MITSceneParsingData as scene_parsing

UNREACHABLE_URL = "http://127.0.0.1:9/ADEChallengeData2016.zip"


def small_dataset(data_dir, num_training=3, num_validation=2):
    return demo_data.write_scene_dataset(str(data_dir), num_training, num_validation, min_size=32, max_size=32)


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
    assert not os.path.exists(os.path.join(str(tmp_path), scene_parsing.PICKLE_NAME))


def test_missing_data_that_cannot_be_downloaded_says_what_to_do(tmp_path):
    with pytest.raises(IOError, match="No data at .* download from .* failed .* or pass --data_dir"):
        scene_parsing.read_dataset(str(tmp_path / "nowhere"), UNREACHABLE_URL)
