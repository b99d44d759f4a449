"""TensorflowUtils: downloads (served on 127.0.0.1), the beta16 .mat layout, colours, the matmul forms of convolutions."""
import contextlib
import functools
import http.server
import os
import threading

import numpy as np
import pytest
import scipy.io
import tensorflow as tf

import TensorflowUtils as utils
import demo_data


class _TruncatingHandler(http.server.SimpleHTTPRequestHandler):
    """Serves files; for names starting with 'cut_' it announces the full size but sends half."""

    def log_message(self, *args):
        pass

    def copyfile(self, source, outputfile):
        if os.path.basename(self.path).startswith("cut_"):
            data = source.read()
            outputfile.write(data[:len(data) // 2])
        else:
            super().copyfile(source, outputfile)


@contextlib.contextmanager
def serve_directory(directory):
    """An HTTP server on 127.0.0.1 (a free port) serving `directory`; yields its base URL."""
    handler = functools.partial(_TruncatingHandler, directory=directory)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield "http://127.0.0.1:%d" % server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def test_get_model_data_reads_beta16_layout(vgg_mat):
    data = utils.get_model_data(vgg_mat, "http://127.0.0.1:9/imagenet-vgg-verydeep-19.mat")
    assert data["layers"].shape == (1, 43)
    layers = np.squeeze(data["layers"])
    kernel, bias = layers[0][0][0][0][0]
    assert kernel.shape == (3, 3, 3, 4) and bias.shape == (1, 4)
    weights, mean_pixel = utils.vgg_weights_and_mean(data, demo_data.vgg19_layer_names()[:36])
    assert sorted(weights) == sorted(n for n in demo_data.vgg19_layer_names()[:36] if n.startswith("conv"))
    assert weights["conv5_4"][0].shape == (3, 3, 16, 16) and weights["conv5_4"][1].shape == (16,)
    np.testing.assert_allclose(mean_pixel, [123.68, 116.779, 103.939], rtol=1e-5)


def test_other_layout_names_keys_and_expected_file(tmp_path):
    """The newer vlfeat file has `meta` instead of `normalization`: say so instead of a KeyError."""
    path = tmp_path / "imagenet-vgg-verydeep-19.mat"
    scipy.io.savemat(str(path), {"layers": np.zeros((1, 2)), "meta": np.zeros(1)})
    with pytest.raises(ValueError) as error:
        utils.get_model_data(str(tmp_path), "http://127.0.0.1:9/imagenet-vgg-verydeep-19.mat")
    message = str(error.value)
    assert "normalization" in message and "meta" in message and "beta16" in message and str(path) in message


def test_download_shows_progress_and_completes(tmp_path, capsys):
    served = tmp_path / "served"
    served.mkdir()
    (served / "weights.bin").write_bytes(os.urandom(3 * 2 ** 20 + 17))
    with serve_directory(str(served)) as url:
        path = utils.maybe_download_and_extract(str(tmp_path / "dest"), url + "/weights.bin")
    assert open(path, "rb").read() == (served / "weights.bin").read_bytes()
    assert not os.path.exists(path + ".part")
    assert "Downloading weights.bin" in capsys.readouterr().out


def test_interrupted_download_leaves_no_whole_looking_file(tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    (served / "cut_imagenet-vgg-verydeep-19.mat").write_bytes(os.urandom(2 ** 20))
    dest = tmp_path / "Model_zoo"
    with serve_directory(str(served)) as url:
        with pytest.raises(IOError) as error:
            utils.get_model_data(str(dest), url + "/cut_imagenet-vgg-verydeep-19.mat")
    assert not os.path.exists(dest / "cut_imagenet-vgg-verydeep-19.mat")
    assert "--model_dir" in str(error.value)


def test_download_of_the_mat_then_parse(tmp_path, vgg_mat):
    with serve_directory(vgg_mat) as url:
        data = utils.get_model_data(str(tmp_path), url + "/imagenet-vgg-verydeep-19.mat")
    assert data["layers"].shape == (1, 43)


def test_palette_and_class_names():
    names, palette = utils.ade20k_class_names(), utils.ade20k_palette()
    assert len(names) == 151 and names[0] == "other" and names[1] == "wall" and names[3] == "sky"
    assert palette.shape == (151, 3) and palette.dtype == np.uint8
    assert tuple(palette[0]) == (0, 0, 0) and tuple(palette[1]) == (120, 120, 120)
    assert utils.colorize(np.array([[0, 1], [3, 3]]), palette).shape == (2, 2, 3)


def test_side_by_side_has_the_three_panels(tmp_path):
    palette, names = utils.ade20k_palette(), utils.ade20k_class_names()
    photo = np.full((32, 40, 3), 7, np.uint8)
    truth = np.full((32, 40), 3, np.uint8)
    picture = utils.side_by_side([photo, truth, truth], palette, names)
    assert picture.shape[1] == 3 * 40 * 6 and picture.shape[0] > 32 * 6  # enlarged 6x to 192 rows
    np.testing.assert_array_equal(picture[5, 6 * 45], palette[3])
    np.testing.assert_array_equal(picture[5, 5], photo[0, 0])


def values_and_gradients(build, x, w):
    """build(x, w) -> y; returns y and the gradients of sum(y * r) for a fixed random r."""
    with tf.Graph().as_default():
        x_var, w_var = tf.constant(x), tf.constant(w)
        y = build(x_var, w_var)
        weights = tf.constant(np.random.RandomState(1).standard_normal([int(d) for d in y.shape]), tf.float32)
        grads = tf.gradients(tf.reduce_sum(y * weights), [x_var, w_var])
        with tf.compat.v1.Session() as sess:
            return sess.run([y] + grads)


@pytest.mark.parametrize("side,kernel", [(7, 7), (5, 3), (16, 7), (4, 1)])
def test_conv2d_as_matmul(side, kernel):
    rng = np.random.RandomState(0)
    x = rng.standard_normal((2, side, side + 1, 6)).astype(np.float32)
    w = rng.standard_normal((kernel, kernel, 6, 5)).astype(np.float32)
    expected = values_and_gradients(lambda a, b: tf.nn.conv2d(a, b, 1, "SAME"), x, w)
    got = values_and_gradients(utils.conv2d_as_matmul, x, w)
    for e, g in zip(expected, got):
        np.testing.assert_allclose(g, e, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("out_h,out_w,stride", [(64, 64, 8), (61, 50, 8), (20, 19, 2), (500 // 25, 7, 2)])
def test_conv2d_transpose_as_matmul(out_h, out_w, stride):
    rng = np.random.RandomState(0)
    in_h, in_w = -(-out_h // stride), -(-out_w // stride)
    x = rng.standard_normal((2, in_h, in_w, 6)).astype(np.float32)
    w = rng.standard_normal((2 * stride, 2 * stride, 5, 6)).astype(np.float32)
    shape = [2, out_h, out_w, 5]

    def original(a, b):
        return tf.nn.conv2d_transpose(a, b, shape, [1, stride, stride, 1], "SAME")

    def as_matmul(a, b):
        y = utils.conv2d_transpose_as_matmul(a, b, tf.constant(shape), stride)
        y.set_shape(shape)
        return y
    expected = values_and_gradients(original, x, w)
    got = values_and_gradients(as_matmul, x, w)
    for e, g in zip(expected, got):
        np.testing.assert_allclose(g, e, rtol=1e-4, atol=1e-4)
