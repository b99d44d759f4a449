"""demo.py: the stand-ins are written in the real layouts, so the real loading code reads them."""
import os

import numpy as np
from PIL import Image

from fcn_tensorflow.data import datasets
from fcn_tensorflow.data import demo
from fcn_tensorflow.data import matconvnet
from fcn_tensorflow.data import scene_parsing


def test_the_vgg_file_reads_as_a_beta16_file_of_the_given_widths(tmp_path):
    path = str(tmp_path / matconvnet.MODEL_FILE)
    demo.write_vgg_mat(path, (2, 4, 4, 8, 8), fc_width=6, num_imagenet_classes=3)
    weights, mean_pixel = matconvnet.load_vgg(str(tmp_path), "http://127.0.0.1:9/" + matconvnet.MODEL_FILE,
                                              transpose_kernels=False, fc_width=6)
    assert weights["conv1_1"][0].shape == (3, 3, 3, 2) and weights["conv5_4"][0].shape == (3, 3, 8, 8)
    assert weights["fc6"][0].shape == (7, 7, 8, 6) and weights["fc7"][0].shape == (1, 1, 6, 6)
    np.testing.assert_allclose(mean_pixel, matconvnet.IMAGENET_MEAN_PIXEL, rtol=1e-5)


def test_the_scenes_list_as_ade20k_and_voc_masks_are_palette_pngs_with_255_borders(tmp_path):
    demo.write_scene_dataset(str(tmp_path / "ade"), num_training=3, num_validation=2, min_size=32, max_size=40)
    training, validation = scene_parsing.read_dataset(str(tmp_path / "ade"))
    assert (len(training), len(validation)) == (3, 2)
    demo.write_voc_dataset(str(tmp_path / "voc"), num_training=2, num_validation=1, min_size=32, max_size=40)
    voc = datasets.open_dataset("voc", str(tmp_path / "voc"))
    _, (record,) = voc.list_pairs()
    mask = Image.open(record["annotation"])
    assert mask.mode == "P" and 255 in np.array(mask) and os.path.basename(record["image"]).endswith(".jpg")
