"""matconvnet.py: the beta16 VGG19 layout as scipy reads it, with its fc layers, and the errors for other files."""
import os
import shutil

import numpy as np
import pytest
import scipy.io

from fcn_tensorflow.data import matconvnet
from tests.helpers import MODEL_FILE, MODEL_URL, NARROW_FC, NARROW_WIDTHS, serve_directory


def test_reads_the_beta16_layout_with_fc_layers(vgg_mat):
    data = matconvnet.get_model_data(vgg_mat, MODEL_URL)
    assert data["layers"].shape == (1, len(matconvnet.VGG19_LAYERS)) == (1, 43)
    kernel, bias = np.squeeze(data["layers"])[0][0][0][0][0]
    assert kernel.shape == (3, 3, 3, 4) and bias.shape == (1, 4)
    weights, mean_pixel = matconvnet.vgg_weights_and_mean(data, matconvnet.VGG19_LAYERS)
    assert sorted(weights) == sorted(name for name in matconvnet.VGG19_LAYERS if name.startswith(("conv", "fc")))
    expected = matconvnet.conv_shapes(NARROW_WIDTHS, NARROW_FC, num_imagenet_classes=10)
    assert {name: pair[0].shape for name, pair in weights.items()} == expected
    assert weights["fc7"][1].shape == (NARROW_FC,)
    np.testing.assert_allclose(mean_pixel, matconvnet.IMAGENET_MEAN_PIXEL, rtol=1e-5)


def test_other_layout_names_keys_and_expected_file(tmp_path):
    """The newer vlfeat file has `meta` instead of `normalization`: say so instead of a KeyError."""
    path = tmp_path / MODEL_FILE
    scipy.io.savemat(str(path), {"layers": np.zeros((1, 2)), "meta": np.zeros(1)})
    with pytest.raises(ValueError) as error:
        matconvnet.get_model_data(str(tmp_path), MODEL_URL)
    message = str(error.value)
    assert "normalization" in message and "meta" in message and "beta16" in message and str(path) in message


def test_a_file_that_is_not_a_mat_says_what_to_do(tmp_path):
    (tmp_path / MODEL_FILE).write_bytes(b"<html>Not found</html>")
    with pytest.raises(ValueError, match="cannot be read as a .mat file .* Delete it and run again"):
        matconvnet.get_model_data(str(tmp_path), MODEL_URL)


def test_download_of_the_mat_then_parse(tmp_path, vgg_mat):
    with serve_directory(vgg_mat) as url:
        data = matconvnet.get_model_data(str(tmp_path), url + "/" + MODEL_FILE)
    assert data["layers"].shape == (1, 43)


def test_a_cut_download_of_the_mat_says_where_to_put_it(tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    (served / ("cut_" + MODEL_FILE)).write_bytes(b"x" * 2 ** 20)
    dest = tmp_path / "Model_zoo"
    with serve_directory(str(served)) as url:
        with pytest.raises(IOError, match="VGG weights not found at .*cut_" + MODEL_FILE + " .* by hand .*"
                                          "--model_dir"):
            matconvnet.get_model_data(str(dest), url + "/cut_" + MODEL_FILE)
    assert not dest.exists()


def test_model_dir_may_name_the_file_itself(vgg_mat, tmp_path):
    """Old code looked for <the file>/imagenet-vgg-verydeep-19.mat and tried to download it there."""
    weights, mean_pixel = matconvnet.load_vgg(vgg_mat, MODEL_URL)
    named = str(tmp_path / "my_vgg19.mat")
    shutil.copy(os.path.join(vgg_mat, MODEL_FILE), named)
    weights_of_file, mean_pixel_of_file = matconvnet.load_vgg(named, MODEL_URL)
    assert sorted(weights_of_file) == sorted(weights)
    np.testing.assert_array_equal(weights_of_file["conv1_1"][0], weights["conv1_1"][0])
    np.testing.assert_array_equal(mean_pixel_of_file, mean_pixel)
    assert matconvnet.vgg_file(named, MODEL_URL) == named
    assert matconvnet.vgg_file(vgg_mat, MODEL_URL) == os.path.join(vgg_mat, MODEL_FILE)
