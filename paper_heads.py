"""The paper's heads (FCN-32s, -16s, -8s): class scores, skips summed in score space, bilinear upsampling.

As in Long, Shelhamer and Darrell's reference code (fcn.berkeleyvision.org, voc-fcn*/net.py and
surgery.py): score layers start at zero, so a new skip adds nothing until it has learned; the 2x
upsamplings start as bilinear interpolation (and may learn); the last upsampling is fixed bilinear.
"""
import numpy as np
import tensorflow as tf

import TensorflowUtils as utils

FINAL_STRIDE = {"fcn32s": 32, "fcn16s": 16, "fcn8s": 8}  # each head's last upsampling, and its name upscore<N>


def bilinear_filter(size):
    """The size x size bilinear interpolation filter of surgery.upsample_filt."""
    factor = (size + 1) // 2
    center = factor - 1 if size % 2 == 1 else factor - 0.5
    taps = 1 - np.abs(np.arange(size) - center) / factor
    return np.outer(taps, taps).astype(np.float32)


def score_and_upsample(fc7, pool4, pool3, image_shape, num_classes, head, learn_upsampling=True,
                       convs_as_matmul=True):
    """score_fr on conv7; for fcn16s and fcn8s upscore2 + score_pool4 (fuse_pool4), for fcn8s upscore_pool4 +
    score_pool3 (fuse_pool3); then upscore<stride> to the input size. Returns the class scores [N, H, W, classes]."""
    scores = score_layer(fc7, num_classes, "score_fr", convs_as_matmul)
    if head != "fcn32s":
        upscore2 = learned_upsampling(scores, tf.shape(pool4), "upscore2", learn_upsampling, convs_as_matmul)
        scores = tf.add(upscore2, score_layer(pool4, num_classes, "score_pool4", convs_as_matmul), name="fuse_pool4")
    if head == "fcn8s":
        upscore_pool4 = learned_upsampling(scores, tf.shape(pool3), "upscore_pool4", learn_upsampling,
                                           convs_as_matmul)
        scores = tf.add(upscore_pool4, score_layer(pool3, num_classes, "score_pool3", convs_as_matmul),
                        name="fuse_pool3")
    stride = FINAL_STRIDE[head]
    return fixed_upsampling(scores, image_shape, stride, "upscore%d" % stride, convs_as_matmul)


def score_layer(features, num_classes, name, convs_as_matmul=True):
    """A 1x1 convolution to class scores, kernel and bias starting at zero; the op is named `name`."""
    with tf.compat.v1.variable_scope(name) as scope:
        kernel = _model_variable(tf.zeros([1, 1, features.shape[-1], num_classes]), True, "kernel")
        bias = _model_variable(tf.zeros([num_classes]), True, "bias")
        conv = (utils.conv2d_as_matmul(features, kernel) if convs_as_matmul
                else tf.nn.conv2d(features, kernel, strides=1, padding="SAME"))
        return tf.nn.bias_add(conv, bias, name=scope.original_name_scope)


def learned_upsampling(scores, output_shape, name, trainable=True, convs_as_matmul=True):
    """upscore2, upscore_pool4: a 4x4 stride-2 transposed convolution from all classes to all classes, no bias,
    starting as bilinear interpolation of each class on its own (its kernel is diagonal in the classes)."""
    num_classes = scores.shape[-1]
    with tf.compat.v1.variable_scope(name) as scope:
        initial = tf.constant(bilinear_filter(4))[:, :, None, None] * tf.eye(num_classes)
        kernel = _model_variable(initial, trainable, "kernel")
        output_shape = tf.stack([output_shape[0], output_shape[1], output_shape[2], num_classes])
        return tf.identity(utils.conv2d_transpose(scores, kernel, output_shape, 2, convs_as_matmul),
                           name=scope.original_name_scope)


def fixed_upsampling(scores, image_shape, stride, name, convs_as_matmul=True):
    """upscore8/16/32: every class upsampled by `stride` with one fixed bilinear filter (size 2 x stride).

    The classes are folded into the batch, so the kernel is [size, size, 1, 1] instead of a diagonal
    [size, size, classes, classes] (372 MB for upscore32 on 151 classes), with the same sums."""
    size = 2 * stride
    with tf.compat.v1.variable_scope(name) as scope:
        kernel = _model_variable(bilinear_filter(size)[:, :, None, None], False, "kernel")
        shape = tf.shape(scores)
        per_class = tf.reshape(tf.transpose(scores, [0, 3, 1, 2]), [-1, shape[1], shape[2], 1])
        upsampled = utils.conv2d_transpose(per_class, kernel, tf.stack([shape[0] * shape[3], image_shape[1],
                                                                        image_shape[2], 1]), stride, convs_as_matmul)
        upsampled = tf.reshape(upsampled, tf.stack([shape[0], shape[3], image_shape[1], image_shape[2]]))
        upsampled = tf.transpose(upsampled, [0, 2, 3, 1], name=scope.original_name_scope)
    upsampled.set_shape([None, None, None, scores.shape[-1]])
    return upsampled


def _model_variable(initial_value, trainable, name):
    """A variable of the network (in the current variable scope, which distribute.reusing looks up), registered
    even when not trained, so --init_checkpoint carries it to the next stage. tf.compat.v1.Variable with an explicit
    `trainable`: under a tf.distribute strategy a tf.Variable would add each replica's copy to the collections."""
    variable = tf.compat.v1.Variable(initial_value, trainable=trainable, name=name)
    if not trainable and variable not in tf.compat.v1.model_variables():  # each replica makes (or reuses) it again
        tf.compat.v1.add_to_collection(tf.compat.v1.GraphKeys.MODEL_VARIABLES, variable)
    return variable
