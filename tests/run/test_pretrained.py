"""pretrained.py: where a run's starting weights come from. VGG16 from the Caffe ImageNet file when --model_dir holds
it and not the .mat (fc6/fc7 widths must agree with --fc_width); without any VGG file, a checkpoint's shapes (an
imported model's too) and the mean pixel of the model.json beside it."""
import json
import os

import numpy as np
import pytest
import scipy.io
import tensorflow as tf

from fcn_tensorflow.data import demo
from fcn_tensorflow.data import matconvnet
from fcn_tensorflow.data import synthetic_caffe
from fcn_tensorflow.run import caffe_import
from fcn_tensorflow.run import pretrained
from fcn_tensorflow.run.settings import Settings
from tests.helpers import UNREACHABLE, run_main

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


@pytest.mark.parametrize("kind", ["mat", "caffemodel"])
def test_the_paper_s_nets_train_from_either_vgg16_file_with_the_paper_s_recipe(tmp_path, scene_data, kind, capsys):
    model_dir = tmp_path / "Model_zoo"
    model_dir.mkdir()
    if kind == "mat":
        demo.write_vgg_mat(str(model_dir / "imagenet-vgg-verydeep-16.mat"), WIDTHS, FC_WIDTH, backbone="vgg16")
        conv2_1 = scipy.io.loadmat(str(model_dir / "imagenet-vgg-verydeep-16.mat"))["layers"][0][5][0][0][
            "weights"][0][0]
    else:
        blobs = synthetic_caffe.write_vgg16_caffemodel(str(model_dir / "VGG_ILSVRC_16_layers.caffemodel"), WIDTHS,
                                                       FC_WIDTH)
        conv2_1 = blobs["conv2_1"][0].transpose(2, 3, 1, 0)
    logs_dir = str(tmp_path / "logs")
    assert not run_main("train", model_dir=str(model_dir), data_dir=scene_data, logs_dir=logs_dir,
                        model_url=UNREACHABLE + "imagenet-vgg-verydeep-16.mat", backbone="vgg16", geometry="caffe",
                        head="fcn32s", recipe="paper", fc_width=FC_WIDTH, max_iteration=2, save_every=2, val_images=1)
    out = capsys.readouterr().out
    losses = [float(line.split("Train_loss:")[1].split()[0]) for line in out.splitlines() if "Train_loss:" in line]
    assert losses and min(losses) > 1000  # summed over the pixels of one image, not averaged
    with open(os.path.join(logs_dir, "model.json")) as record:
        assert json.load(record)["backbone"] == "vgg16"
    saved = tf.train.load_checkpoint(logs_dir)
    np.testing.assert_allclose(saved.get_tensor("inference/conv2_1_w"), conv2_1, atol=1e-6)  # lr 1e-10 barely moves
    assert "inference/conv5_4_w" not in saved.get_variable_to_shape_map()


def test_a_checkpoint_of_the_other_vgg_is_one_line_naming_the_flag(tmp_path):
    path = str(tmp_path / "fcn8s-heavy-pascal.caffemodel")
    synthetic_caffe.write_caffemodel(path, "voc-fcn8s", synthetic_caffe.random_blobs("voc-fcn8s", WIDTHS, FC_WIDTH))
    caffe_import.import_mode(path, str(tmp_path / "imported"))
    start = pretrained.start_checkpoint(settings(tmp_path / "nothing", init_checkpoint=str(tmp_path / "imported")))
    with pytest.raises(ValueError, match="model.ckpt-0 holds no inference/conv3_4_w: it is not a VGG19 model; pass "
                                         "the --backbone it was trained with"):
        pretrained.vgg_unless_restored(settings(tmp_path / "nothing", backbone="vgg19"), start)
