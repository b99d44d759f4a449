"""TensorflowUtils.py: each of the original's public functions, with its signature; the files through its names.
The layers themselves: tests/net/test_layers.py."""
import inspect
import os

import numpy as np

import TensorflowUtils as utils
from tests.helpers import MODEL_URL, serve_directory

ORIGINAL_SIGNATURES = {  # shekkizh/FCN.tensorflow's TensorflowUtils.py
    "get_model_data": "(dir_path, model_url)",
    "maybe_download_and_extract": "(dir_path, url_name, is_tarfile=False, is_zipfile=False)",
    "save_image": "(image, save_dir, name, mean=None)",
    "get_variable": "(weights, name)",
    "weight_variable": "(shape, stddev=0.02, name=None)",
    "bias_variable": "(shape, name=None)",
    "get_tensor_size": "(tensor)",
    "conv2d_basic": "(x, W, bias)",
    "conv2d_strided": "(x, W, b)",
    "leaky_relu": "(x, alpha=0.0, name='')",
    "max_pool_2x2": "(x)",
    "avg_pool_2x2": "(x)",
    "local_response_norm": "(x)",
    "batch_norm": "(x, n_out, phase_train, scope='bn', decay=0.9, eps=1e-05)",
    "process_image": "(image, mean_pixel)",
    "unprocess_image": "(image, mean_pixel)",
    "bottleneck_unit": "(x, out_chan1, out_chan2, down_stride=False, up_stride=False, name=None)",
    "add_to_regularization_and_summary": "(var)",
    "add_activation_summary": "(var)",
    "add_gradient_summary": "(grad, var)",
}


def test_the_original_public_functions_keep_their_signatures():
    for name, signature in ORIGINAL_SIGNATURES.items():
        assert str(inspect.signature(getattr(utils, name))) == signature, name
    # one keyword more than the original, at the end: as_matmul
    assert str(inspect.signature(utils.conv2d_transpose_strided)).startswith("(x, W, b, output_shape=None, stride=2")


def test_files_through_the_original_names(vgg_mat, tmp_path):
    assert utils.get_model_data(vgg_mat, MODEL_URL)["layers"].shape == (1, 43)
    path = utils.save_image(np.zeros((3, 4, 3)), str(tmp_path), "black", mean=[1, 2, 3])
    assert os.path.basename(path) == "black.png"
    served = tmp_path / "served"
    served.mkdir()
    (served / "file.bin").write_bytes(b"data")
    with serve_directory(str(served)) as url:
        utils.maybe_download_and_extract(str(tmp_path / "dest"), url + "/file.bin")
    assert (tmp_path / "dest" / "file.bin").read_bytes() == b"data"
