"""labels.py: annotations read as class indices, raw values mapped to classes (--label_values), and the check that
names the labels that are not classes."""
import re

import numpy as np
import pytest

from fcn_tensorflow.data import labels
from fcn_tensorflow.data.errors import BadPairError


def half_and_half(left, right):
    values = np.full((4, 6), left, np.uint8)
    values[:, 3:] = right
    return values


def test_label_values_become_classes_in_order_and_any_other_value_is_bad():
    np.testing.assert_array_equal(labels.labels_from_values(half_and_half(0, 255), (0, 255), "m.png"),
                                  half_and_half(0, 1))
    np.testing.assert_array_equal(labels.labels_from_values(half_and_half(7, 3), (7, 5, 3), "m.png"),
                                  half_and_half(0, 2))
    spoilt = half_and_half(0, 255)
    spoilt[0, :2] = 128
    with pytest.raises(BadPairError, match=re.escape("m.png: labels 128..128 (2 pixels) not among "
                                                     "--label_values=0,255")):
        labels.labels_from_values(spoilt, (0, 255), "m.png")
    mapped = labels.labels_from_values(spoilt, (0, 255), "m.png", ignore_label=128)  # unlisted ignore label: kept
    assert np.all(mapped[0, :2] == 128) and np.all(mapped[:, 3:] == 1)


def test_0_255_masks_without_label_values_suggest_the_flag():
    with pytest.raises(BadPairError, match=re.escape("labels 255..255 outside 0..1 (2 classes); 0/255 masks? pass "
                                                     "--label_values=0,255")):
        labels.check_labels(half_and_half(0, 255), "m.png", 2)
    for other in (half_and_half(0, 7), half_and_half(255, 255), half_and_half(1, 255)):
        with pytest.raises(BadPairError) as excinfo:
            labels.check_labels(other, "m.png", 2)
        assert "--label_values" not in str(excinfo.value)


def test_colours_and_values_are_looked_up_alike():
    colors = np.array([[0, 0, 0], [255, 0, 0], [0, 0, 255]], np.uint8)
    classes = np.array([[0, 2], [1, 1]])
    np.testing.assert_array_equal(labels.labels_from_colors(colors[classes], colors, "c.png"), classes)
    with pytest.raises(BadPairError, match=re.escape(r"colour (1, 2, 3) at 1 pixels is not in classes.csv")):
        labels.labels_from_colors(np.where(classes[..., None] == 2, [1, 2, 3], colors[classes]), colors, "c.png")
