"""graphs.py: the graph the original's users know (its variables, any batch and size, the VGG file's weights), the
same training as the original's loop, the loss without the ignore label, weight decay, XLA."""
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from fcn_tensorflow.data import matconvnet
from fcn_tensorflow.net import graphs
from fcn_tensorflow.net import network
from fcn_tensorflow.net.spec import Net, Training
from fcn_tensorflow.run import session
from fcn_tensorflow.run import training
from tests.helpers import MODEL_URL, PROJECT_DIR


def full_width_weights():
    """Weights with the real VGG19 shapes (zeros are enough to build the graph)."""
    return {name: (np.zeros(shape, np.float32), np.zeros(shape[3], np.float32))
            for name, shape in matconvnet.conv_shapes().items() if name.startswith("conv")}


def test_variables_match_the_original_at_full_width():
    with tf.Graph().as_default():
        graphs.build_model(full_width_weights(), np.array(matconvnet.IMAGENET_MEAN_PIXEL))
        trainable = {var.op.name: var.shape.as_list() for var in tf.compat.v1.trainable_variables()}
        graph = tf.compat.v1.get_default_graph()
        for name in ("input_image", "annotation", "keep_probabilty", "inference/prediction"):
            graph.get_operation_by_name(name)
        graph_bytes = graph.as_graph_def().ByteSize()
    expected = {"inference/%s_%s" % (name, kind): list(shape if kind == "w" else shape[3:])
                for name, shape in matconvnet.conv_shapes().items() if name.startswith("conv") for kind in ("w", "b")}
    expected.update({
        "inference/W6": [7, 7, 512, 4096], "inference/b6": [4096],
        "inference/W7": [1, 1, 4096, 4096], "inference/b7": [4096],
        "inference/W8": [1, 1, 4096, 151], "inference/b8": [151],
        "inference/W_t1": [4, 4, 512, 151], "inference/b_t1": [512],
        "inference/W_t2": [4, 4, 256, 512], "inference/b_t2": [256],
        "inference/W_t3": [16, 16, 151, 256], "inference/b_t3": [151],
    })
    assert trainable == expected
    assert len([name for name in trainable if name.endswith("_w")]) == 16
    assert graph_bytes < 10 * 2 ** 20  # weights are fed, never baked into the GraphDef


def test_any_batch_and_size_divisible_by_32(vgg_mat):
    with tf.Graph().as_default():
        weights, mean_pixel = matconvnet.load_vgg(vgg_mat, MODEL_URL)
        model = graphs.build_model(weights, mean_pixel, Net(fc_width=8))
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            for shape in ((1, 32, 64, 3), (3, 96, 32, 3)):
                pred, logits = sess.run([model.pred_annotation, model.logits],
                                        {model.image: np.zeros(shape), model.keep_probability: 1.0})
                assert pred.shape == shape[:3] + (1,)
                assert logits.shape == shape[:3] + (151,)


def test_pretrained_weights_are_loaded_from_the_file(vgg_mat):
    with tf.Graph().as_default():
        weights, mean_pixel = matconvnet.load_vgg(vgg_mat, MODEL_URL, transpose_kernels=False)
        model = graphs.build_model(weights, mean_pixel, Net(fc_width=8))
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            model.pretrained.load(sess)
            conv = [v for v in tf.compat.v1.global_variables() if v.op.name == "inference/conv2_1_w"][0]
            np.testing.assert_array_equal(sess.run(conv), weights["conv2_1"][0])
    np.testing.assert_allclose(mean_pixel, matconvnet.IMAGENET_MEAN_PIXEL, rtol=1e-5)


def test_original_transposes_kernels(vgg_mat):
    plain, _ = matconvnet.load_vgg(vgg_mat, MODEL_URL, transpose_kernels=False)
    swapped, _ = matconvnet.load_vgg(vgg_mat, MODEL_URL)
    np.testing.assert_array_equal(swapped["conv1_1"][0], np.transpose(plain["conv1_1"][0], (1, 0, 2, 3)))


def train_then_loss(vgg_mat, steps, convs_as_matmul, optimised, initial=None):
    """Loss on a fixed batch after `steps` Adam steps from the same start (dropout off so runs compare).

    optimised: session.make_session and training.train_step (loss fetched with the update) as --mode=train does;
    otherwise a default session and the original loop (the loss run a second time every step)."""
    rng = np.random.RandomState(0)
    images = rng.randint(0, 256, (2, 32, 32, 3)).astype(np.uint8)
    annotations = rng.randint(0, 151, (2, 32, 32, 1)).astype(np.uint8)
    with tf.Graph().as_default():
        tf.compat.v1.set_random_seed(0)
        weights, mean_pixel = matconvnet.load_vgg(vgg_mat, MODEL_URL)
        model = graphs.build_model(weights, mean_pixel, Net(fc_width=16, convs_as_matmul=convs_as_matmul))
        with (session.make_session() if optimised else tf.compat.v1.Session()) as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            model.pretrained.load(sess)
            variables = tf.compat.v1.trainable_variables()
            if initial is None:
                initial = sess.run(variables)
            for variable, value in zip(variables, initial):
                variable.load(value, sess)
            feed = training.feed(model, images, annotations, keep_prob=1.0)
            for _ in range(steps):
                if optimised:
                    training.train_step(sess, model, feed, with_summary=True)
                else:
                    sess.run(model.train_op, feed_dict=feed)
                    sess.run([model.loss, model.train_summary], feed_dict=feed)
            return sess.run(model.loss, feed_dict=feed), initial


def test_default_training_matches_the_original_graph_and_loop(vgg_mat):
    original, initial = train_then_loss(vgg_mat, 5, convs_as_matmul=False, optimised=False)
    default, _ = train_then_loss(vgg_mat, 5, convs_as_matmul=True, optimised=True, initial=initial)
    first, _ = train_then_loss(vgg_mat, 0, convs_as_matmul=False, optimised=False, initial=initial)
    assert abs(first - original) > 1e-3  # the steps do change the loss
    np.testing.assert_allclose(default, original, rtol=1e-4)


def test_the_loss_leaves_the_ignore_label_out_and_never_sees_it_as_a_class():
    rng = np.random.RandomState(0)
    logits = rng.normal(size=(2, 4, 4, 3)).astype(np.float32)
    labels = rng.randint(0, 3, (2, 4, 4, 1))
    labels[0, :2] = 255
    with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
        annotation = tf.compat.v1.placeholder(tf.int32, [None, None, None, 1])
        losses = {ignore: network.segmentation_loss(tf.constant(logits), annotation, ignore) for ignore in (None, 255, 0)}
        with_255 = sess.run(losses[255], {annotation: labels})
        all_ignored = sess.run(losses[255], {annotation: np.full_like(labels, 255)})
        without_0 = sess.run(losses[0], {annotation: np.where(labels == 255, 1, labels)})
        everything = sess.run(losses[None], {annotation: np.where(labels == 255, 1, labels)})
    log_softmax = logits - np.log(np.exp(logits).sum(axis=3, keepdims=True))

    def mean_cross_entropy(labels, counted):
        picked = np.take_along_axis(log_softmax, np.minimum(labels, 2), axis=3)
        return -picked[counted].mean()
    np.testing.assert_allclose(with_255, mean_cross_entropy(labels, labels != 255), rtol=1e-5)
    assert all_ignored == 0.0
    relabelled = np.where(labels == 255, 1, labels)
    np.testing.assert_allclose(without_0, mean_cross_entropy(relabelled, relabelled != 0), rtol=1e-5)
    np.testing.assert_allclose(everything, mean_cross_entropy(relabelled, relabelled >= 0), rtol=1e-5)


def test_the_weighted_loss_is_the_mean_of_weight_times_cross_entropy_over_the_counted_pixels():
    rng = np.random.RandomState(0)
    logits = rng.normal(size=(2, 4, 4, 3)).astype(np.float32)
    labels = rng.randint(0, 3, size=(2, 4, 4, 1)).astype(np.int32)
    labels[0, 0, :2, 0] = 255
    weights = np.array([0.5, 2.0, 1.0], np.float32)
    with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
        logits_in, labels_in = tf.constant(logits), tf.constant(labels)
        unweighted, ones, weighted, no_ignore = sess.run([
            network.segmentation_loss(logits_in, labels_in, 255),
            network.segmentation_loss(logits_in, labels_in, 255, class_weights=(1.0, 1.0, 1.0)),
            network.segmentation_loss(logits_in, labels_in, 255, class_weights=weights),
            network.segmentation_loss(logits_in, tf.constant(np.minimum(labels, 2)), None, class_weights=weights)])
    log_softmax = logits - np.log(np.exp(logits).sum(axis=3, keepdims=True))
    counted = labels[..., 0] != 255
    classes = np.minimum(labels[..., 0], 2)
    cross_entropy = -np.take_along_axis(log_softmax, classes[..., None], axis=3)[..., 0]
    np.testing.assert_allclose(ones, unweighted, rtol=1e-6)
    np.testing.assert_allclose(weighted, (weights[classes] * cross_entropy)[counted].mean(), rtol=1e-5)
    np.testing.assert_allclose(no_ignore, (weights[classes] * cross_entropy).mean(), rtol=1e-5)


def test_without_class_weights_the_training_graph_is_the_unweighted_one(vgg_mat):
    """No --class_weights: the same GraphDef as before the option existed, and no op of the weighted loss."""
    def graph_def(training):
        with tf.Graph().as_default() as graph:
            weights, mean_pixel = matconvnet.load_vgg(vgg_mat, MODEL_URL)
            graphs.build_model(weights, mean_pixel, Net(num_classes=3, fc_width=16), training)
            return graph.as_graph_def()

    default = graph_def(Training(ignore_label=255))
    assert not [node.name for node in default.node if "class_weights" in node.name]
    weighted = graph_def(Training(ignore_label=255, class_weights=(1.0, 2.0, 3.0)))
    assert [node.name for node in weighted.node if node.name.endswith("class_weights")]


def one_sgd_step(vgg_mat, weight_decay, initial=None, head="original"):
    """Trainable values after one step of SGD (momentum 0, rate 0.1) from `initial` (or a fresh start)."""
    rng = np.random.RandomState(0)
    with tf.Graph().as_default():
        weights, mean_pixel = matconvnet.load_vgg(vgg_mat, MODEL_URL)
        model = graphs.build_model(weights, mean_pixel, Net(fc_width=16, head=head),
                                   Training(learning_rate=0.1, optimizer="momentum", momentum=0.0,
                                            weight_decay=weight_decay))
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            variables = tf.compat.v1.trainable_variables()
            for variable, value in zip(variables, initial or sess.run(variables)):
                variable.load(value, sess)
            before = sess.run(variables)
            sess.run(model.train_op, training.feed(model, rng.randint(0, 256, (2, 32, 32, 3)),
                                                rng.randint(0, 151, (2, 32, 32, 1)), keep_prob=1.0))
            slots = [var.op.name for var in tf.compat.v1.global_variables() if var.op.name.endswith("/Momentum")]
            return {var.op.name: (old, new) for var, old, new in zip(variables, before, sess.run(variables))}, slots


@pytest.mark.parametrize("head", ["original", "fcn8s"])
def test_weight_decay_pulls_every_trainable_kernel_and_no_bias(vgg_mat, head):
    plain, slots = one_sgd_step(vgg_mat, 0.0, head=head)
    decayed, _ = one_sgd_step(vgg_mat, 0.01, [old for old, _ in plain.values()], head)
    assert "inference/W6/Momentum" in slots
    kernels = [name for name, (old, _) in plain.items() if old.ndim == 4]
    assert "inference/conv1_1_w" in kernels and ("inference/score_fr/kernel" in kernels) == (head == "fcn8s")
    for name, (old, new) in plain.items():
        expected = new - 0.1 * 0.01 * old if name in kernels else new
        np.testing.assert_allclose(decayed[name][1], expected, rtol=1e-5, atol=1e-7, err_msg=name)


XLA_STEP = """
import sys
import numpy as np
import tensorflow as tf
sys.path.insert(0, sys.argv[1])
from fcn_tensorflow.data import matconvnet
from fcn_tensorflow.net import graphs
from fcn_tensorflow.net.spec import Net
from fcn_tensorflow.run import session, training
tf.compat.v1.disable_eager_execution()
weights, mean_pixel = matconvnet.load_vgg(sys.argv[2], sys.argv[3])
model = graphs.build_model(weights, mean_pixel, Net(fc_width=8))
with session.make_session(xla=True) as sess:
    sess.run(tf.compat.v1.global_variables_initializer())
    feed = training.feed(model, np.zeros((2, 32, 32, 3)), np.zeros((2, 32, 32, 1)), 0.85)
    metadata = tf.compat.v1.RunMetadata()
    loss, _ = training.train_step(sess, model, feed, with_summary=True)
    sess.run(model.train_op, feed, run_metadata=metadata,
             options=tf.compat.v1.RunOptions(trace_level=tf.compat.v1.RunOptions.FULL_TRACE))
kernels = set(node.timeline_label.split(" = ")[-1].split("(")[0]
              for device in metadata.step_stats.dev_stats for node in device.node_stats)
print("_XlaRun" in kernels, np.isfinite(loss))
"""


@pytest.mark.slow
def test_xla_compiles_the_training_step(vgg_mat):
    """In a new process: the XLA flags make_session sets are read once, by the first session of a process."""
    result = subprocess.run([sys.executable, "-c", XLA_STEP, PROJECT_DIR, vgg_mat, MODEL_URL], capture_output=True, text=True,
                            timeout=300)
    assert result.stdout.split() == ["True", "True"], result.stderr[-2000:]
