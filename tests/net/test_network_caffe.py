"""network.py in the reference's Caffe geometry (--geometry=caffe) and with VGG16 (--backbone=vgg16): any image size
comes out at its own size, both ways of computing agree, the variables are the paper's, the loss can be summed.
Agreement with Caffe's own arithmetic is tests/run/test_caffe_import.py's (against tests/caffe_reference.py)."""
import numpy as np
import pytest
import tensorflow as tf

from fcn_tensorflow.data import matconvnet
from fcn_tensorflow.net import graphs
from fcn_tensorflow.net import network
from fcn_tensorflow.net.spec import PAPER_HEADS, Net

WIDTHS, FC_WIDTH, CLASSES = (4, 4, 8, 8, 8), 16, 5
SIZES = ((37, 53), (101, 75))


def vgg16_weights(seed=0):
    """Narrow random VGG16 weights with fc6 and fc7, as load_vgg returns them."""
    rng = np.random.RandomState(seed)
    shapes = matconvnet.conv_shapes(WIDTHS, FC_WIDTH, backbone="vgg16")
    return {name: ((rng.standard_normal(shape) * np.sqrt(2.0 / np.prod(shape[:3]))).astype(np.float32),
                   rng.standard_normal(shape[-1]).astype(np.float32) * 0.1)
            for name, shape in shapes.items() if name != "fc8"}


def caffe_net(head, convs_as_matmul=True):
    return Net(CLASSES, FC_WIDTH, head, False, convs_as_matmul, False, "vgg16", "caffe")


def predictions(head, convs_as_matmul, images):
    """The probabilities of the caffe-geometry predictor for each image, its score layers random."""
    with tf.Graph().as_default():
        tf.compat.v1.set_random_seed(0)
        predictor = graphs.build_predictor(vgg16_weights(), np.array([120.0, 110.0, 100.0]), 0,
                                           caffe_net(head, convs_as_matmul))
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            predictor.pretrained.load(sess)
            for var in tf.compat.v1.global_variables():  # score layers start at zero: give them values
                if "score" in var.op.name:
                    var.load(np.random.RandomState(1).standard_normal(var.shape.as_list()).astype(np.float32), sess)
            return [sess.run(predictor.probabilities, {predictor.images: image[None]})[0] for image in images]


@pytest.mark.parametrize("head", PAPER_HEADS)
def test_any_image_size_comes_out_at_its_size_and_both_ways_of_computing_agree(head):
    rng = np.random.RandomState(2)
    images = [rng.randint(0, 256, size + (3,)).astype(np.uint8) for size in SIZES]
    with_matmuls, plain = predictions(head, True, images), predictions(head, False, images)
    for image, fast, slow in zip(images, with_matmuls, plain):
        assert fast.shape == image.shape[:2] + (CLASSES,)
        np.testing.assert_allclose(fast, slow, atol=1e-4)
        assert len(np.unique(fast.argmax(-1))) > 1  # a picture of several classes: the comparison means something


def test_the_variables_are_the_paper_s_and_the_fixed_ones_start_as_the_reference_s():
    with tf.Graph().as_default():
        image = tf.compat.v1.placeholder(tf.float32, [None, None, None, 3])
        network.inference(image, 1.0, vgg16_weights(), np.zeros(3), caffe_net("fcn8s_atonce"))
        variables = {var.op.name: var for var in tf.compat.v1.global_variables()}
        trainable = {var.op.name for var in tf.compat.v1.trainable_variables()}
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            scale4, scale3, upscore8 = sess.run([variables["inference/%s" % name] for name in (
                "scale_pool4/scale", "scale_pool3/scale", "upscore8/kernel")])
    assert len([name for name in variables if name.endswith("_w")]) == 13  # VGG16's convs
    assert variables["inference/W6"].shape == (7, 7, WIDTHS[-1], FC_WIDTH)
    assert variables["inference/upscore8/kernel"].shape == (16, 16, CLASSES, CLASSES)
    assert variables["inference/upscore2/kernel"].shape == (4, 4, CLASSES, CLASSES)
    np.testing.assert_allclose(scale4, np.full(WIDTHS[3], 0.01))
    np.testing.assert_allclose(scale3, np.full(WIDTHS[2], 1e-4))
    np.testing.assert_allclose(upscore8[:, :, 1, 1], network.bilinear_filter(16))
    assert not upscore8[:, :, 0, 1].any()
    assert not {"inference/scale_pool4/scale", "inference/upscore8/kernel"} & trainable


def test_the_summed_loss_is_the_mean_times_the_counted_pixels():
    rng = np.random.RandomState(0)
    labels = rng.randint(0, 4, (2, 5, 7, 1))
    ignored = labels.copy()
    ignored[0, 0, :3] = 255
    with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
        logits = tf.constant(rng.standard_normal((2, 5, 7, 4)).astype(np.float32))
        for ignore_label, weights in ((None, None), (255, None), (255, (1.0, 2.0, 0.5, 1.0))):
            annotation = tf.constant(labels if ignore_label is None else ignored)
            mean, total = sess.run([network.segmentation_loss(logits, annotation, ignore_label, weights, summed)
                                    for summed in (False, True)])
            counted = labels.size - (3 if ignore_label else 0)
            assert total == pytest.approx(mean * counted, rel=1e-5)
