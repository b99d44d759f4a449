"""The graphs the modes run, built from the network (network.py): the training graph (placeholders, loss, training
step, summaries, the check for finite weights) and the any-size predictor of evaluate, predict and export; and the
loader that fills the VGG variables from the file. replicated.py builds the training graph for several replicas."""
import collections
import contextlib

import numpy as np
import tensorflow as tf

from fcn_tensorflow.data import matconvnet
from fcn_tensorflow.data import scene_parsing
from fcn_tensorflow.net import layers as utils
from fcn_tensorflow.net import network
from fcn_tensorflow.net import spec
from fcn_tensorflow.net.spec import Net, Training

Model = collections.namedtuple("Model", [
    "image", "annotation", "keep_probability", "pred_annotation", "logits", "loss", "train_op",
    "global_step", "train_summary", "validation_summary", "pretrained", "weights_finite", "validation_loss"])
Predictor = collections.namedtuple("Predictor", ["images", "labels", "probabilities", "pretrained", "mean_pixel",
                                                 "infer_size", "net_size"], defaults=(None, None))


def build_model(weights, mean_pixel, net=Net(), training=Training(), palette=None):
    """Placeholders, the FCN `net`, loss (without the pixels labelled training.ignore_label; weighted by
    training.class_weights when given), training step and summaries in the default graph (labels coloured with
    `palette`, by default ADE20K's). The step minimises the loss plus training.weight_decay times the kernels' L2."""
    keep_probability, image, annotation = training_inputs()
    pred_annotation, logits = network.inference(image, keep_probability, weights, mean_pixel, net)
    loss = network.segmentation_loss(logits, annotation, training.ignore_label, training.class_weights,
                                        training.loss_sum)
    global_step = tf.compat.v1.train.get_or_create_global_step()
    objective = loss + training.weight_decay * network.kernels_l2() if training.weight_decay else loss
    train_op = network.train(objective, tf.compat.v1.trainable_variables(), training, global_step, net.debug)
    train_summary, validation_summary = summaries(loss, image, annotation, pred_annotation, palette)
    weights_finite = all_weights_finite()
    return Model(image, annotation, keep_probability, pred_annotation, logits, loss, train_op,
                 global_step, train_summary, validation_summary, pretrained_loader(weights), weights_finite, loss)


def training_inputs():
    """The placeholders of the training graph: (keep probability, images, annotations)."""
    keep_probability = tf.compat.v1.placeholder(tf.float32, name="keep_probabilty")
    image = tf.compat.v1.placeholder(tf.float32, shape=[None, None, None, 3], name="input_image")
    annotation = tf.compat.v1.placeholder(tf.int32, shape=[None, None, None, 1], name="annotation")
    return keep_probability, image, annotation


def summaries(loss, image, annotation, pred_annotation, palette=None, validation_loss=None):
    """(training summary: every summary made so far and the loss's `entropy`; validation summary: `entropy` of
    validation_loss (default: loss) and the pictures)."""
    entropy = tf.compat.v1.summary.scalar("entropy", loss)
    train_summary = tf.compat.v1.summary.merge_all()
    if validation_loss is not None:  # a raw op: the tag stays "entropy" although that op name is taken
        entropy = tf.raw_ops.ScalarSummary(tags="entropy", values=validation_loss)
    palette = tf.constant(scene_parsing.ade20k_palette() if palette is None else palette)
    pictures = [  # in this order: the graph stays the original's, op for op
        utils.image_summary("input_image", tf.cast(image, tf.uint8)),
        utils.image_summary("ground_truth",
                            tf.gather(palette, tf.clip_by_value(annotation[..., 0], 0, palette.shape[0] - 1))),
        utils.image_summary("pred_annotation", tf.gather(palette, pred_annotation[..., 0])),
    ]
    return train_summary, tf.compat.v1.summary.merge([entropy] + pictures)


def all_weights_finite():
    """True when every floating-point variable of the default graph is finite (checked before each save)."""
    return tf.reduce_all([tf.reduce_all(tf.math.is_finite(var)) for var in tf.compat.v1.global_variables()
                          if var.dtype.base_dtype.is_floating])


def build_predictor(weights, mean_pixel, infer_size, net=Net(), precision="float32", sized=False):
    """The inference path evaluate, predict and export share: uint8 `images` in, `labels` and `probabilities` out.

    precision "bfloat16": the network's variables and arithmetic in bfloat16, its scores cast to float32. sized: the
    size the net sees is fed to the placeholder `net_size` (network.inference_at_net_size; tiles and test-time
    augmentation, run/tta.py), infer_size is only recorded."""
    images = tf.compat.v1.placeholder(tf.uint8, shape=[None, None, None, 3], name="images")
    net_size = tf.compat.v1.placeholder(tf.int32, shape=[2], name="net_size") if sized else None
    dtype = tf.as_dtype(precision)
    with tf.variable_creator_scope(utils.variables_of(dtype)) if dtype == tf.bfloat16 else contextlib.nullcontext():
        if sized:
            labels, probabilities = network.inference_at_net_size(images, net_size, weights, mean_pixel, net)
        else:
            labels, probabilities = network.inference_at_any_size(images, weights, mean_pixel, infer_size, net)
    return Predictor(images, labels, probabilities, pretrained_loader(weights), mean_pixel, infer_size, net_size)


def pretrained_loader(weights):
    """Fills the VGG variables of the default graph with `weights` when no checkpoint is restored."""
    variables = {var.op.name: var for var in tf.compat.v1.global_variables()}
    return utils.PretrainedLoader(
        [(variables[variable_name], value)
         for name, pair in sorted(weights.items()) for variable_name, value in zip(spec.checkpoint_names(name), pair)])


def vgg_shapes_from_checkpoint(saved, backbone="vgg19", checkpoint="the checkpoint"):
    """Zero-valued VGG conv weights shaped like those of a checkpoint ({name: shape}), whose restore brings the
    values; ValueError when it holds no such layer of `backbone` (a model of the other VGG)."""
    layers = [name for name in matconvnet.conv_layers(backbone) if name.startswith("conv")]
    missing = [variable for name in layers for variable in spec.checkpoint_names(name) if variable not in saved]
    if missing:
        raise ValueError("%s holds no %s: it is not a %s model; pass the --backbone it was trained with"
                         % (checkpoint, missing[0], backbone.upper()))
    return {name: tuple(np.zeros(saved[variable], np.float32) for variable in spec.checkpoint_names(name))
            for name in layers}
