"""class_weights.py: median frequency balancing (Eigen & Fergus) over the training labels, and a file of weights."""
import os
import re

import numpy as np
from PIL import Image
import pytest

from fcn_tensorflow.data import class_weights


def labelled_pair(folder, name, labels):
    """A grey image and its label PNG holding `labels`; returns the record."""
    image_path, annotation_path = (os.path.join(str(folder), name + suffix) for suffix in (".png", "_label.png"))
    Image.new("RGB", labels.shape[::-1], (50, 50, 50)).save(image_path)
    Image.fromarray(np.asarray(labels, np.uint8)).save(annotation_path)
    return {"image": image_path, "annotation": annotation_path, "filename": name}


def test_median_frequency_weights_follow_eigen_and_fergus(tmp_path, capsys):
    # class 0 in both images, class 1 in the first only, class 2 nowhere; 255 ignored; the third pair is bad
    first = np.array([[0, 0, 1, 1], [0, 0, 1, 255]], np.uint8)
    second = np.array([[0, 0, 0, 0], [0, 0, 0, 255]], np.uint8)
    records = [labelled_pair(tmp_path, "first", first), labelled_pair(tmp_path, "second", second),
               labelled_pair(tmp_path, "bad", np.full((2, 4), 7, np.uint8))]
    counts = class_weights.pixel_counts(records, num_classes=3, ignore_label=255)
    np.testing.assert_array_equal(counts.pixels, [11, 3, 0])
    np.testing.assert_array_equal(counts.image_pixels, [14, 7, 0])  # counted pixels of the images holding the class
    assert counts.pairs == 2 and "Counting the pixels of each class 3/3" in capsys.readouterr().err
    frequency = np.array([11 / 14, 3 / 7])
    median = np.median(frequency)
    np.testing.assert_allclose(class_weights.median_frequency(counts), [median / frequency[0], median / frequency[1], 0])

    values = class_weights.pixel_counts(records[:2], num_classes=2, label_values=(0, 1), ignore_label=255)
    np.testing.assert_array_equal(values.pixels, [11, 3])


def test_a_class_weights_file_has_one_weight_a_line(tmp_path):
    path = tmp_path / "weights.txt"
    path.write_text("0.5\n# a comment\n2  # rare\n\n")
    assert class_weights.read_weights_file(str(path), 2) == [0.5, 2.0]
    with pytest.raises(ValueError, match=re.escape("--class_weights=%s holds 2 weights but the model has 3 classes"
                                                   % path)):
        class_weights.read_weights_file(str(path), 3)
    for bad in ("heavy", "-1", "nan"):
        path.write_text("0.5\n%s\n" % bad)
        with pytest.raises(ValueError, match=re.escape("--class_weights=%s line 2: expected a number >= 0, found %r"
                                                       % (path, bad))):
            class_weights.read_weights_file(str(path), 2)


def test_the_weights_line_names_each_class():
    assert (class_weights.describe([0.5, 8.33123], ["background", "object"], "median frequency over 6 training pairs")
            == "Class weights (median frequency over 6 training pairs): background 0.5, object 8.331")
