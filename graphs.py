"""The graphs the modes run, built from FCN.py's network: the training graph (placeholders, loss, training step,
summaries, the check for finite weights) and the any-size predictor of evaluate, predict and export; and the loader
that fills the VGG variables from the file."""
import collections
import contextlib

import tensorflow as tf

import FCN
import matconvnet
import read_MITSceneParsingData as scene_parsing
import TensorflowUtils as utils

Model = collections.namedtuple("Model", [
    "image", "annotation", "keep_probability", "pred_annotation", "logits", "loss", "train_op",
    "global_step", "train_summary", "validation_summary", "pretrained", "weights_finite", "validation_loss"])
Predictor = collections.namedtuple("Predictor", ["images", "labels", "probabilities", "pretrained", "mean_pixel"])


def build_model(weights, mean_pixel, learning_rate=1e-4, fc_width=4096, num_classes=FCN.NUM_OF_CLASSESS,
                debug=False, convs_as_matmul=True, mixed_precision=False, palette=None, ignore_label=None,
                head="original", learn_upsampling=True, optimizer="adam", momentum=0.9, weight_decay=0.0):
    """Placeholders, the FCN of `head`, loss (without the pixels labelled ignore_label), training step and
    summaries in the default graph (labels coloured with `palette`, by default ADE20K's). The step minimises
    the loss plus weight_decay times the kernels' L2. distribute.build_replicated_model builds the same for
    several replicas."""
    keep_probability, image, annotation = training_inputs()
    pred_annotation, logits = FCN.inference(image, keep_probability, weights, mean_pixel, num_classes, fc_width,
                                            debug, convs_as_matmul, head, learn_upsampling)
    loss = FCN.segmentation_loss(logits, annotation, ignore_label)
    global_step = tf.compat.v1.train.get_or_create_global_step()
    objective = loss + weight_decay * FCN.kernels_l2() if weight_decay else loss
    train_op = FCN.train(objective, tf.compat.v1.trainable_variables(), learning_rate, global_step, debug,
                         mixed_precision, optimizer, momentum)
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


def build_predictor(weights, mean_pixel, infer_size, fc_width=4096, num_classes=FCN.NUM_OF_CLASSESS,
                    convs_as_matmul=True, head="original", dtype=None):
    """The inference path evaluate, predict and export share: uint8 `images` in, `labels` and `probabilities` out.

    dtype tf.bfloat16: the network's variables and arithmetic in bfloat16, its scores cast to float32."""
    images = tf.compat.v1.placeholder(tf.uint8, shape=[None, None, None, 3], name="images")
    with tf.variable_creator_scope(utils.variables_of(dtype)) if dtype else contextlib.nullcontext():
        labels, probabilities = FCN.inference_at_any_size(images, weights, mean_pixel, infer_size, num_classes,
                                                          fc_width, convs_as_matmul, head)
    return Predictor(images, labels, probabilities, pretrained_loader(weights), mean_pixel)


def pretrained_loader(weights):
    """Fills the VGG variables of the default graph with `weights` when no checkpoint is restored."""
    variables = {var.op.name: var for var in tf.compat.v1.global_variables()}
    return utils.PretrainedLoader(
        [(variables[variable_name], value)
         for name, pair in sorted(weights.items()) for variable_name, value in zip(pretrained_names(name), pair)])


def pretrained_names(layer):
    """The kernel and bias variables a layer of the .mat fills: inference/<conv>_w and _b; fc6 fills W6 and b6."""
    if layer in matconvnet.FC_LAYERS:
        return "inference/W" + layer[2:], "inference/b" + layer[2:]
    return "inference/%s_w" % layer, "inference/%s_b" % layer
