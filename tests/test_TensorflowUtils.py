"""TensorflowUtils: the matmul forms of the convolutions give the tf.nn ops' values and gradients."""
import numpy as np
import pytest
import tensorflow as tf

import TensorflowUtils as utils


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
