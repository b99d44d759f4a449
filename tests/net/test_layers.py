"""layers.py: the original's layers on a TF 2 graph (variables, convolutions, pooling, summaries), and the matmul
forms of the convolutions the network uses."""
import numpy as np
import pytest
import tensorflow as tf

from fcn_tensorflow.net import layers as utils


def run(build, feed=None):
    """Build in a new graph, initialise the variables, return the session's values of build()."""
    with tf.Graph().as_default():
        fetches = build()
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            return sess.run(fetches, feed)


def test_variables():
    weights = np.arange(6, dtype=np.float32).reshape(2, 3)
    got, w, b, size = run(lambda: (utils.get_variable(weights, "baked"), utils.weight_variable([4, 5], name="w"),
                                   utils.bias_variable([5], name="b"),
                                   tf.constant(utils.get_tensor_size(tf.zeros([2, 3, 4])))))
    np.testing.assert_array_equal(got, weights)
    assert w.shape == (4, 5) and np.all(np.abs(w) <= 2 * 0.02) and np.all(b == 0) and size == 24


def test_layers_on_a_graph():
    x = np.random.RandomState(0).standard_normal((2, 8, 8, 3)).astype(np.float32)

    def build():
        image = tf.constant(x)
        W = tf.ones([3, 3, 3, 4])
        b = tf.zeros([4])
        return {"basic": utils.conv2d_basic(image, W, b), "strided": utils.conv2d_strided(image, W, b),
                "transpose": utils.conv2d_transpose_strided(tf.zeros([2, 4, 4, 4]), tf.ones([4, 4, 3, 4]), tf.zeros([3])),
                "leaky": utils.leaky_relu(tf.constant([-1.0, 2.0]), 0.1), "max": utils.max_pool_2x2(image),
                "avg": utils.avg_pool_2x2(image), "lrn": utils.local_response_norm(image),
                "process": utils.unprocess_image(utils.process_image(image, 5.0), 5.0),
                "bn": utils.batch_norm(image, 3, tf.constant(True)),
                "bottleneck": utils.bottleneck_unit(image, 2, 6, down_stride=True, name="2a"),
                "up": utils.bottleneck_unit(image, 2, 3, up_stride=True, name="2b")}
    out = run(build)
    assert out["basic"].shape == (2, 8, 8, 4) and out["strided"].shape == (2, 4, 4, 4)
    assert out["transpose"].shape == (2, 8, 8, 3)
    np.testing.assert_allclose(out["leaky"], [-0.1, 2.0])
    assert out["max"].shape == out["avg"].shape == (2, 4, 4, 3) and out["lrn"].shape == x.shape
    np.testing.assert_allclose(out["process"], x, atol=1e-6)
    np.testing.assert_allclose(out["bn"].mean(axis=(0, 1, 2)), 0, atol=0.05)
    assert out["bottleneck"].shape == (2, 4, 4, 6) and out["up"].shape == (2, 16, 16, 3)
    assert np.all(out["bottleneck"] >= 0)


def test_summaries_and_the_regularization_collection():
    with tf.Graph().as_default():
        var = tf.Variable(tf.ones([3]), name="inference/W")
        utils.add_to_regularization_and_summary(var)
        with tf.name_scope("inference"):
            utils.add_activation_summary(tf.nn.relu(var, name="relu6"))
        utils.add_gradient_summary(tf.ones([3]), var)
        utils.add_gradient_summary(None, var)
        histograms = [op for op in tf.compat.v1.get_default_graph().get_operations() if op.type == "HistogramSummary"]
        assert len(tf.compat.v1.get_collection("reg_loss")) == 1
        assert len(histograms) == 3 and len(tf.compat.v1.get_collection(tf.compat.v1.GraphKeys.SUMMARIES)) == 4
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            assert sess.run(tf.compat.v1.get_collection("reg_loss")[0]) == 1.5
            assert sess.run(tf.compat.v1.summary.merge_all())


# ---------------------------------------------------------------- the matmul forms

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


@pytest.mark.parametrize("rows", [1, 98, 512, 513, 1100])
def test_bfloat16_matmul_in_row_blocks_is_the_matmul(rows):
    rng = np.random.RandomState(rows)
    a, b = rng.standard_normal((rows, 64)), rng.standard_normal((64, 24))
    with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
        a_, b_ = tf.constant(a, tf.bfloat16), tf.constant(b, tf.bfloat16)
        blocked, whole = sess.run([utils.matmul_in_row_blocks(a_, b_, most_rows=256), tf.matmul(a_, b_)])
        float32 = utils.matmul_in_row_blocks(tf.constant(a, tf.float32), tf.constant(b, tf.float32))
    assert blocked.shape == (rows, 24) and float32.op.type == "MatMul"
    np.testing.assert_allclose(blocked.astype(np.float32), whole.astype(np.float32), rtol=1e-2, atol=1e-2)
