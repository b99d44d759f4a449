"""voc.py: the devkit's colours, VOC's classes, and SBD found where its archive extracts."""
import numpy as np
import pytest

from fcn_tensorflow.data import voc
from fcn_tensorflow.data.reader import DataError


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
