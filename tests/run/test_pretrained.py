"""pretrained.py: where a run's starting weights come from. VGG16 from the Caffe ImageNet file when --model_dir holds
it and not the .mat (fc6/fc7 widths must agree with --fc_width); without any VGG file, a checkpoint's shapes (an
imported model's too) and the mean pixel of the model.json beside it."""
import json
import os

import numpy as np
import pytest

from fcn_tensorflow.data import matconvnet
from fcn_tensorflow.data import synthetic_caffe
from fcn_tensorflow.run import caffe_import
from fcn_tensorflow.run import pretrained
from fcn_tensorflow.run.settings import Settings

WIDTHS, FC_WIDTH = (4, 8, 8, 16, 16), 24


def settings(model_dir, **values):
    defaults = dict(backbone="vgg16", model_dir=str(model_dir), model_url=matconvnet.MODEL_URLS["vgg16"],
                    head="fcn8s", fc_width=FC_WIDTH, transpose_vgg_kernels=False, download_timeout=1.0,
                    init_checkpoint="")
    return Settings(**dict(defaults, **values))


def test_vgg16_comes_from_the_caffe_imagenet_file_in_model_dir(tmp_path):
    blobs = synthetic_caffe.write_vgg16_caffemodel(str(tmp_path / "VGG_ILSVRC_16_layers.caffemodel"), WIDTHS,
                                                   FC_WIDTH)
    weights, mean_pixel = pretrained.load_vgg(settings(tmp_path))
    assert sorted(weights) == sorted(name for name in matconvnet.conv_layers("vgg16") if name.startswith("conv")) + [
        "fc6", "fc7"]
    np.testing.assert_array_equal(weights["conv2_1"][0], blobs["conv2_1"][0].transpose(2, 3, 1, 0))
    np.testing.assert_allclose(mean_pixel, matconvnet.IMAGENET_MEAN_PIXEL)
    assert "fc6" not in pretrained.load_vgg(settings(tmp_path), with_fc=False)[0]
    with pytest.raises(ValueError, match="has fc6 and fc7 24 wide: pass --fc_width=24"):
        pretrained.load_vgg(settings(tmp_path, fc_width=4096))


def test_without_a_vgg_file_an_imported_model_s_checkpoint_brings_the_shapes_and_its_mean(tmp_path):
    path = str(tmp_path / "fcn8s-heavy-pascal.caffemodel")
    synthetic_caffe.write_caffemodel(path, "voc-fcn8s", synthetic_caffe.random_blobs("voc-fcn8s", WIDTHS, FC_WIDTH))
    imported = str(tmp_path / "imported")
    caffe_import.import_mode(path, imported)
    start = pretrained.start_checkpoint(settings(tmp_path / "nothing", init_checkpoint=imported))
    assert [os.path.basename(found) for found in start] == ["model.ckpt-0"]
    weights, mean_pixel = pretrained.vgg_unless_restored(settings(tmp_path / "nothing"), start, with_fc=True)
    assert weights["conv5_3"][0].shape == (3, 3, 16, 16) and "conv5_4" not in weights
    with open(os.path.join(imported, "model.json")) as record:
        np.testing.assert_allclose(mean_pixel, json.load(record)["mean_pixel"])
