"""FCN-8s semantic segmentation on MIT Scene Parsing (ADE20K): train, visualize, evaluate, predict, export.

A port of shekkizh/FCN.tensorflow to today's TensorFlow (tf.compat.v1 graphs and sessions).
Run `python FCN.py --helpfull` for every flag.
"""
import collections
import contextlib
import datetime
import glob
import json
import os
import re
import signal
import sys
import time

from absl import app
from absl import flags
import numpy as np

# Lets --xla auto-cluster on the CPU too (sessions without it are unaffected); read before the first session runs.
if "--tf_xla_cpu_global_jit" not in os.environ.get("TF_XLA_FLAGS", ""):
    os.environ["TF_XLA_FLAGS"] = (os.environ.get("TF_XLA_FLAGS", "") + " --tf_xla_cpu_global_jit").strip()
import tensorflow as tf  # noqa: E402

import BatchDatsetReader as dataset
import metrics
import read_MITSceneParsingData as scene_parsing
import TensorflowUtils as utils

tf.compat.v1.disable_eager_execution()

FLAGS = flags.FLAGS
flags.DEFINE_integer("batch_size", 2, "batch size for training (and the number of pictures visualize writes)",
                     lower_bound=1)
flags.DEFINE_string("logs_dir", "logs/", "path to logs directory (checkpoints, TensorBoard, pictures)")
flags.DEFINE_string("data_dir", "Data_zoo/MIT_SceneParsing/", "path to dataset")
flags.DEFINE_float("learning_rate", 1e-4, "Learning rate for Adam Optimizer")
flags.DEFINE_string("model_dir", "Model_zoo/", "Path to vgg model mat")
flags.DEFINE_bool("debug", False, "Debug mode: activation and gradient histograms in TensorBoard")
flags.DEFINE_enum("mode", "train", ["train", "visualize", "evaluate", "predict", "export"],
                  "Mode: train / visualize / evaluate (score the validation split, write logs_dir/metrics.json) / "
                  "predict (segment --input) / export (write a SavedModel to --export_dir)")
flags.DEFINE_integer("max_iteration", 100001, "number of training steps (the step count continues on resume)",
                     lower_bound=0)
flags.DEFINE_integer("image_size", 224, "images and annotations are resized to this square (multiple of 32)",
                     lower_bound=32)
flags.DEFINE_float("keep_prob", 0.85, "dropout keep probability of conv6 and conv7 while training",
                   lower_bound=0.01, upper_bound=1.0)
flags.DEFINE_integer("log_every", 10, "print and log the training loss every N steps", lower_bound=1)
flags.DEFINE_integer("save_every", 500, "validate and write a checkpoint every N steps", lower_bound=1)
flags.DEFINE_string("model_url", "http://www.vlfeat.org/matconvnet/models/beta16/imagenet-vgg-verydeep-19.mat",
                    "where to download the VGG19 MatConvNet file if model_dir lacks it")
flags.DEFINE_string("data_url", scene_parsing.DATA_URL, "where to download ADEChallengeData2016.zip if data_dir lacks it")
flags.DEFINE_integer("fc_width", 4096, "number of channels of conv6 and conv7", lower_bound=1)
flags.DEFINE_bool("transpose_vgg_kernels", True,
                  "swap the kernel's first two axes as the original did (keeps its checkpoints valid)")
flags.DEFINE_integer("infer_size", None,
                     "evaluate/predict/export: the net sees each image resized to this square (nearest, as in "
                     "training) and its class scores are resized back (bilinear); 0 = the native size, padded to "
                     "a multiple of 32. Default: --image_size")
flags.DEFINE_string("predictions_dir", "",
                    "evaluate: score the label PNGs <stem>.png in this folder instead of running the network")
flags.DEFINE_string("input", "", "predict: an image file (JPEG or PNG) or a folder of them")
flags.DEFINE_string("output_dir", "", "predict: where to write <stem>.png, <stem>_color.png and "
                    "<stem>_overlay.png. Default: logs_dir/predictions")
flags.DEFINE_string("export_dir", "", "export: a new folder for the SavedModel. Default: logs_dir/saved_model")
flags.DEFINE_bool("convs_as_matmul", True,
                  "compute conv6-8 and the 8x upsampling as matmuls (same sums, faster on CPU); false: original ops")
flags.DEFINE_bool("xla", False, "train and visualize: compile the graph with XLA auto-clustering (evaluate, "
                  "predict and export ignore it: each new image size would be compiled again)")
flags.DEFINE_bool("mixed_precision", False,
                  "GPU: float16 compute with float32 master weights and dynamic loss scaling (on a CPU only the "
                  "loss scaling runs; its variables are saved in the checkpoints)")

NUM_OF_CLASSESS = 151
IMAGENET_MEAN_PIXEL = (123.68, 116.779, 103.939)  # the mean of the beta16 file's averageImage
CHECKPOINT_NAME = "model.ckpt"
VGG_LAYERS = (
    "conv1_1", "relu1_1", "conv1_2", "relu1_2", "pool1",
    "conv2_1", "relu2_1", "conv2_2", "relu2_2", "pool2",
    "conv3_1", "relu3_1", "conv3_2", "relu3_2", "conv3_3", "relu3_3", "conv3_4", "relu3_4", "pool3",
    "conv4_1", "relu4_1", "conv4_2", "relu4_2", "conv4_3", "relu4_3", "conv4_4", "relu4_4", "pool4",
    "conv5_1", "relu5_1", "conv5_2", "relu5_2", "conv5_3", "relu5_3", "conv5_4", "relu5_4",
)


# ---------------------------------------------------------------- the network

def load_vgg(model_dir, model_url, transpose_kernels=True):
    """VGG19 conv weights {name: (kernel, bias)} and the RGB mean pixel from the MatConvNet file."""
    weights, mean_pixel = utils.vgg_weights_and_mean(utils.get_model_data(model_dir, model_url), VGG_LAYERS)
    if transpose_kernels:
        weights = {name: (np.transpose(kernel, (1, 0, 2, 3)), bias) for name, (kernel, bias) in weights.items()}
    return weights, mean_pixel


def vgg_shapes_from_checkpoint(checkpoint):
    """Zero-valued VGG19 conv weights shaped like those in `checkpoint`, whose restore brings the values."""
    saved = dict(tf.train.list_variables(checkpoint))
    return {name: tuple(np.zeros(saved["inference/%s_%s" % (name, kind)], np.float32) for kind in ("w", "b"))
            for name in VGG_LAYERS if name.startswith("conv")}


def vgg_net(weights, image, debug=False):
    """VGG19 up to relu5_4 with average pooling; variables shaped like `weights`, filled in later."""
    net = {}
    current = image
    for name in VGG_LAYERS:
        kind = name[:4]
        if kind == "conv":
            kernel, bias = weights[name]
            kernel_var = utils.pretrained_variable(kernel.shape, name=name + "_w")
            bias_var = utils.pretrained_variable(bias.shape, name=name + "_b")
            current = utils.conv2d_basic(current, kernel_var, bias_var)
        elif kind == "relu":
            current = tf.nn.relu(current, name=name)
            if debug:
                utils.add_activation_summary(current)
        else:
            current = utils.avg_pool_2x2(current)
        net[name] = current
    return net


def fcn_head(pool5, keep_prob, num_classes, fc_width, debug=False, convs_as_matmul=True):
    """conv6-conv8: the fully connected layers as convolutions, giving class scores at stride 32."""
    relu_dropout6 = _conv_relu_dropout(pool5, [7, 7, pool5.shape[-1], fc_width], "6", keep_prob, debug,
                                       convs_as_matmul)
    relu_dropout7 = _conv_relu_dropout(relu_dropout6, [1, 1, fc_width, fc_width], "7", keep_prob, debug,
                                       convs_as_matmul)
    W8 = utils.weight_variable([1, 1, fc_width, num_classes], name="W8")
    b8 = utils.bias_variable([num_classes], name="b8")
    return _conv(relu_dropout7, W8, b8, convs_as_matmul)


def _conv_relu_dropout(x, kernel_shape, layer, keep_prob, debug, convs_as_matmul):
    """W<layer>, b<layer>, relu<layer>, then dropout: conv6 and conv7."""
    W = utils.weight_variable(kernel_shape, name="W" + layer)
    b = utils.bias_variable([kernel_shape[-1]], name="b" + layer)
    relu = tf.nn.relu(_conv(x, W, b, convs_as_matmul), name="relu" + layer)
    if debug:
        utils.add_activation_summary(relu)
    return tf.nn.dropout(relu, rate=1 - keep_prob)


def _conv(x, W, b, as_matmul):
    """conv2d_basic, or the same sums as one matmul over image patches (faster on CPU for conv6-8)."""
    return tf.nn.bias_add(utils.conv2d_as_matmul(x, W), b) if as_matmul else utils.conv2d_basic(x, W, b)


def upsample_and_fuse(scores, pool4, pool3, image_shape, num_classes, convs_as_matmul=True):
    """FCN-8s skips as in the original: upsample 2x, add pool4; 2x, add pool3; 8x to the input size.

    The sums are taken in the pool layers' feature space (the paper sums class scores instead)."""
    W_t1 = utils.weight_variable([4, 4, pool4.shape[-1], num_classes], name="W_t1")
    b_t1 = utils.bias_variable([pool4.shape[-1]], name="b_t1")
    conv_t1 = utils.conv2d_transpose_strided(scores, W_t1, b_t1, output_shape=tf.shape(pool4))
    fuse_1 = tf.add(conv_t1, pool4, name="fuse_1")

    W_t2 = utils.weight_variable([4, 4, pool3.shape[-1], pool4.shape[-1]], name="W_t2")
    b_t2 = utils.bias_variable([pool3.shape[-1]], name="b_t2")
    conv_t2 = utils.conv2d_transpose_strided(fuse_1, W_t2, b_t2, output_shape=tf.shape(pool3))
    fuse_2 = tf.add(conv_t2, pool3, name="fuse_2")

    output_shape = tf.stack([image_shape[0], image_shape[1], image_shape[2], num_classes])
    W_t3 = utils.weight_variable([16, 16, num_classes, pool3.shape[-1]], name="W_t3")
    b_t3 = utils.bias_variable([num_classes], name="b_t3")
    return utils.conv2d_transpose_strided(fuse_2, W_t3, b_t3, output_shape=output_shape, stride=8,
                                          as_matmul=convs_as_matmul)


def inference(image, keep_prob, weights, mean_pixel, num_classes=NUM_OF_CLASSESS, fc_width=4096, debug=False,
              convs_as_matmul=True):
    """FCN-8s on RGB images in 0..255. Returns (prediction [N, H, W, 1], class scores [N, H, W, classes]).

    convs_as_matmul computes conv6-8 and the 8x upsampling as matmuls (same sums, faster on CPU);
    False builds the original tf.nn ops."""
    processed_image = utils.process_image(image, mean_pixel.astype(np.float32))
    with tf.compat.v1.variable_scope("inference"):
        image_net = vgg_net(weights, processed_image, debug)
        pool5 = utils.max_pool_2x2(image_net["conv5_3"])  # before relu5_3, as the original
        scores = fcn_head(pool5, keep_prob, num_classes, fc_width, debug, convs_as_matmul)
        logits = upsample_and_fuse(scores, image_net["pool4"], image_net["pool3"], tf.shape(image), num_classes,
                                   convs_as_matmul)
        annotation_pred = tf.argmax(logits, axis=3, name="prediction")
    return tf.expand_dims(annotation_pred, axis=3), logits


def inference_at_any_size(images, weights, mean_pixel, infer_size, num_classes=NUM_OF_CLASSESS, fc_width=4096,
                          convs_as_matmul=True):
    """uint8 images [N, H, W, 3] of any size -> (labels [N, H, W], probabilities [N, H, W, classes]).

    infer_size > 0: the net sees an infer_size square, resized like the training data (nearest), and
    its class scores are resized back to H x W (bilinear) before the argmax. 0: the net sees the image
    itself, padded to a multiple of 32 with the mean pixel (zero after centring) and cropped back."""
    image = tf.cast(images, tf.float32)
    size = tf.shape(image)[1:3]
    mean_pixel = mean_pixel.astype(np.float32)
    if infer_size:
        net_input = tf.image.resize(image, [infer_size, infer_size], method="nearest")
    else:
        pad = -size % 32
        net_input = tf.pad(image - mean_pixel, [[0, 0], [0, pad[0]], [0, pad[1]], [0, 0]]) + mean_pixel
    _, logits = inference(net_input, 1.0, weights, mean_pixel, num_classes, fc_width,
                          convs_as_matmul=convs_as_matmul)
    if infer_size:
        logits = tf.image.resize(logits, size, method="bilinear")
    else:
        logits = logits[:, :size[0], :size[1]]
    labels = tf.argmax(logits, axis=3, output_type=tf.int32, name="labels")
    return labels, tf.nn.softmax(logits, name="probabilities")


def segmentation_loss(logits, annotation):
    """Mean pixel-wise softmax cross-entropy over all classes (label 0 included, as the original)."""
    return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
        logits=logits, labels=tf.squeeze(annotation, axis=[3])))


def train(loss_val, var_list, learning_rate, global_step, debug=False, mixed_precision=False):
    optimizer = tf.compat.v1.train.AdamOptimizer(learning_rate)
    if mixed_precision:
        optimizer = tf.compat.v1.mixed_precision.enable_mixed_precision_graph_rewrite(optimizer, "dynamic")
    grads = optimizer.compute_gradients(loss_val, var_list=var_list)
    if debug:
        for grad, var in grads:
            utils.add_gradient_summary(grad, var)
    return optimizer.apply_gradients(grads, global_step=global_step)


Model = collections.namedtuple("Model", [
    "image", "annotation", "keep_probability", "pred_annotation", "logits", "loss", "train_op",
    "global_step", "train_summary", "validation_summary", "pretrained", "weights_finite"])


def build_model(weights, mean_pixel, learning_rate=1e-4, fc_width=4096, num_classes=NUM_OF_CLASSESS, debug=False,
                convs_as_matmul=True, mixed_precision=False):
    """Placeholders, FCN-8s, loss, Adam step and summaries in the default graph."""
    keep_probability = tf.compat.v1.placeholder(tf.float32, name="keep_probabilty")
    image = tf.compat.v1.placeholder(tf.float32, shape=[None, None, None, 3], name="input_image")
    annotation = tf.compat.v1.placeholder(tf.int32, shape=[None, None, None, 1], name="annotation")

    pred_annotation, logits = inference(image, keep_probability, weights, mean_pixel, num_classes, fc_width, debug,
                                        convs_as_matmul)
    loss = segmentation_loss(logits, annotation)
    global_step = tf.compat.v1.train.get_or_create_global_step()
    train_op = train(loss, tf.compat.v1.trainable_variables(), learning_rate, global_step, debug, mixed_precision)

    entropy = tf.compat.v1.summary.scalar("entropy", loss)
    train_summary = tf.compat.v1.summary.merge_all()
    palette = tf.constant(utils.ade20k_palette())
    pictures = [
        utils.image_summary("input_image", tf.cast(image, tf.uint8)),
        utils.image_summary("ground_truth", tf.gather(palette, tf.clip_by_value(annotation[..., 0], 0, num_classes - 1))),
        utils.image_summary("pred_annotation", tf.gather(palette, pred_annotation[..., 0])),
    ]
    validation_summary = tf.compat.v1.summary.merge([entropy] + pictures)
    weights_finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(var)) for var in tf.compat.v1.global_variables()
                                    if var.dtype.base_dtype.is_floating])
    return Model(image, annotation, keep_probability, pred_annotation, logits, loss, train_op,
                 global_step, train_summary, validation_summary, pretrained_loader(weights), weights_finite)


Predictor = collections.namedtuple("Predictor", ["images", "labels", "probabilities", "pretrained"])


def build_predictor(weights, mean_pixel, infer_size, fc_width=4096, num_classes=NUM_OF_CLASSESS, convs_as_matmul=True):
    """The inference path evaluate, predict and export share: uint8 `images` in, `labels` and `probabilities` out."""
    images = tf.compat.v1.placeholder(tf.uint8, shape=[None, None, None, 3], name="images")
    labels, probabilities = inference_at_any_size(images, weights, mean_pixel, infer_size, num_classes, fc_width,
                                                  convs_as_matmul)
    return Predictor(images, labels, probabilities, pretrained_loader(weights))


def pretrained_loader(weights):
    """Fills the VGG variables of the default graph with `weights` when no checkpoint is restored."""
    variables = {var.op.name: var for var in tf.compat.v1.global_variables()}
    return utils.PretrainedLoader(
        [(variables["inference/" + name + suffix], value)
         for name, pair in sorted(weights.items()) for suffix, value in zip(("_w", "_b"), pair)])


# ---------------------------------------------------------------- session, checkpoints

def restore_or_initialize(sess, pretrained, saver, logs_dir):
    """Restore the newest checkpoint in logs_dir that reads whole, or start from the VGG weights.

    A checkpoint from the original (no global_step) restores too; what it lacks starts fresh.
    `saver` takes over the list of earlier checkpoints, so it keeps rotating them."""
    sess.run(tf.compat.v1.global_variables_initializer())
    checkpoints = list_checkpoints(logs_dir)
    for newest in range(len(checkpoints) - 1, -1, -1):
        try:
            restore_checkpoint(sess, checkpoints[newest])
        except tf.errors.OpError as error:
            print("Skipping checkpoint %s: it cannot be read (%s)" % (checkpoints[newest], error.message))
            continue
        saver.recover_last_checkpoints(checkpoints[:newest + 1])
        pretrained.release()
        return checkpoints[newest]
    pretrained.load(sess)
    pretrained.release()
    print("No checkpoint in %s: starting from the VGG weights" % logs_dir)
    return None


def list_checkpoints(logs_dir):
    """Checkpoint paths, oldest first: those the `checkpoint` state file lists and any model.ckpt-<step> on disk.

    Looking on disk too finds checkpoints when the state file is missing or damaged."""
    state = tf.train.get_checkpoint_state(logs_dir)
    listed = list(state.all_model_checkpoint_paths) if state else []
    if state and state.model_checkpoint_path not in listed:
        listed.append(state.model_checkpoint_path)
    on_disk = [index[:-len(".index")] for index in glob.glob(os.path.join(logs_dir, CHECKPOINT_NAME + "-*.index"))]
    by_path = {os.path.normpath(path): path for path in on_disk + listed}

    def step(path):
        match = re.search(r"-(\d+)$", path)
        return int(match.group(1)) if match else -1
    return sorted(by_path.values(), key=step)


def restore_checkpoint(sess, checkpoint):
    saved = dict(tf.train.list_variables(checkpoint))
    variables = tf.compat.v1.global_variables()
    present = [var for var in variables if var.op.name in saved]
    fresh = [var.op.name for var in variables if var.op.name not in saved]
    for var in present:
        if list(saved[var.op.name]) != var.shape.as_list():
            raise ValueError("%s holds %s with shape %s, the graph wants %s: check --fc_width and the VGG file."
                             % (checkpoint, var.op.name, saved[var.op.name], var.shape.as_list()))
    tf.compat.v1.train.Saver(present).restore(sess, checkpoint)
    print("Model restored...", checkpoint)
    if fresh:
        print("Initialised fresh (not in the checkpoint): " + ", ".join(fresh))


def save_checkpoint(sess, model, saver, logs_dir, step):
    """Write model.ckpt-<step>; never with non-finite weights. A failed write is reported and training goes on:
    TF writes the state file last, so the earlier checkpoints stay the ones listed."""
    if not sess.run(model.weights_finite):
        raise FloatingPointError("Step %d: the weights are no longer finite; nothing was saved, the newest checkpoint "
                                 "in %s is the last good one. Lower --learning_rate and resume." % (step, logs_dir))
    try:
        return saver.save(sess, os.path.join(logs_dir, CHECKPOINT_NAME), global_step=step)
    except (tf.errors.OpError, OSError) as error:
        print("Could not save the checkpoint of step %d (%s); the earlier checkpoints in %s are kept."
              % (step, getattr(error, "message", error), logs_dir))
        return None


def remove_partial_saves(logs_dir):
    """Delete what a save cut short left behind (TF writes the data to <name>.tempstate<random> first)."""
    for path in glob.glob(os.path.join(logs_dir, CHECKPOINT_NAME + "-*.tempstate*")):
        os.remove(path)
        print("Removed %s, left by a save that was cut short" % path)


def make_session(xla=False):
    """A session running one op at a time on all cores: oneDNN's kernels use every core by themselves,
    so running two ops side by side only makes them fight over the caches."""
    config = tf.compat.v1.ConfigProto(inter_op_parallelism_threads=1)
    if xla:
        config.graph_options.optimizer_options.global_jit_level = tf.compat.v1.OptimizerOptions.ON_1
    return tf.compat.v1.Session(config=config)


def _feed(model, images, annotations=None, keep_prob=1.0):
    feed = {model.image: images, model.keep_probability: keep_prob}
    if annotations is not None:
        feed[model.annotation] = annotations
    return feed


# ---------------------------------------------------------------- modes

@contextlib.contextmanager
def stop_requests(signals=(signal.SIGINT, signal.SIGTERM)):
    """Within it, Ctrl-C or SIGTERM only appends the signal's name to the yielded list; a second one acts as usual."""
    received = []
    previous = {}

    def request_stop(signum, frame):
        received.append(signal.Signals(signum).name)
        for restored, handler in previous.items():
            signal.signal(restored, handler)
    for signum in signals:
        previous[signum] = signal.signal(signum, request_stop)
    try:
        yield received
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def train_step(sess, model, feed, with_summary=False):
    """One Adam step; returns the loss of this step's own forward pass (fetched with the update: the original
    ran the forward pass a second time for it) and, if asked, the training summary."""
    fetches = {"train": model.train_op, "loss": model.loss}
    if with_summary:
        fetches["summary"] = model.train_summary
    result = sess.run(fetches, feed_dict=feed)
    return result["loss"], result.get("summary")


def train_mode(sess, model, saver, train_reader, validation_reader, logs_dir, batch_size, max_iteration,
               keep_prob=0.85, log_every=10, save_every=500):
    """The original loop; the step count comes from global_step, so a resumed run continues it.

    Ctrl-C or SIGTERM ends it after the current step with a checkpoint; a non-finite loss ends it without one."""
    remove_partial_saves(logs_dir)
    start = sess.run(model.global_step)
    last_log, waited = (time.time(), start), 0.0
    itr = start - 1
    with tf.compat.v1.summary.FileWriter(os.path.join(logs_dir, "train"), sess.graph) as train_writer, \
            tf.compat.v1.summary.FileWriter(os.path.join(logs_dir, "validation")) as validation_writer, \
            stop_requests() as stop:
        for itr in range(start, max_iteration):
            asked = time.time()
            train_images, train_annotations = train_reader.next_batch(batch_size)
            waited += time.time() - asked
            train_loss, summary = train_step(sess, model, _feed(model, train_images, train_annotations, keep_prob),
                                             with_summary=itr % log_every == 0)
            if not np.isfinite(train_loss):
                raise FloatingPointError(
                    "Step %d: the training loss is %g. Stopped without saving; the newest checkpoint in %s is the "
                    "last good one. Lower --learning_rate or check the labels, then resume."
                    % (itr, train_loss, logs_dir))

            if itr % log_every == 0:
                seconds, steps = time.time() - last_log[0], itr + 1 - last_log[1]
                print("Step: %d, Train_loss:%g (%.2f images/s, %.1f%% waiting for data)"
                      % (itr, train_loss, steps * batch_size / seconds, 100 * waited / seconds))
                last_log, waited = (time.time(), itr + 1), 0.0
                train_writer.add_summary(summary, itr)

            if itr % save_every == 0:
                validate_and_save(sess, model, saver, validation_reader, validation_writer, logs_dir, batch_size, itr)
            if stop:
                print("%s: stopping after step %d" % (stop[0], itr))
                break
        if itr >= start and itr % save_every != 0:
            validate_and_save(sess, model, saver, validation_reader, validation_writer, logs_dir, batch_size, itr)
    if stop:
        print("Run the same command again to resume from the newest checkpoint in %s" % logs_dir)


def validate_and_save(sess, model, saver, validation_reader, writer, logs_dir, batch_size, step):
    valid_images, valid_annotations = validation_reader.next_batch(min(batch_size, len(validation_reader.files)))
    valid_loss, summary = sess.run([model.loss, model.validation_summary],
                                   feed_dict=_feed(model, valid_images, valid_annotations))
    print("%s ---> Validation_loss: %g" % (datetime.datetime.now(), valid_loss))
    writer.add_summary(summary, step)
    writer.flush()
    save_checkpoint(sess, model, saver, logs_dir, step)


def visualize_mode(sess, model, validation_reader, logs_dir, batch_size, class_names, palette):
    """inp_K / gt_K / pred_K.png as the original (K = 5 + index), plus a coloured side-by-side with legend."""
    valid_images, valid_annotations = validation_reader.get_random_batch(batch_size)
    pred = sess.run(model.pred_annotation, feed_dict=_feed(model, valid_images))
    valid_annotations = np.squeeze(valid_annotations, axis=3)
    pred = np.squeeze(pred, axis=3)
    for itr in range(batch_size):
        utils.save_image(valid_images[itr].astype(np.uint8), logs_dir, name="inp_" + str(5 + itr))
        utils.save_image(valid_annotations[itr].astype(np.uint8), logs_dir, name="gt_" + str(5 + itr))
        utils.save_image(pred[itr].astype(np.uint8), logs_dir, name="pred_" + str(5 + itr))
        picture = utils.side_by_side([valid_images[itr], valid_annotations[itr], pred[itr]], palette, class_names)
        utils.save_image(picture, logs_dir, name="compare_" + str(5 + itr))
        print("Saved image: %d" % itr)


def predict_labels(sess, predictor, image):
    """uint8 (H, W) label map of one RGB image of any size."""
    return sess.run(predictor.labels, feed_dict={predictor.images: image[np.newaxis]})[0].astype(np.uint8)


def network_predictions(sess, predictor, records):
    """(annotation, prediction) of each validation record, predicted at the annotation's own size."""
    for record in records:
        yield (dataset.read_annotation(record["annotation"]),
               predict_labels(sess, predictor, dataset.read_image(record["image"])))


def saved_predictions(predictions_dir, records, num_classes=NUM_OF_CLASSESS):
    """(annotation, prediction) of each record, the prediction read from predictions_dir/<stem>.png."""
    for record in records:
        annotation = dataset.read_annotation(record["annotation"])
        path = os.path.join(predictions_dir, record["filename"] + ".png")
        if not os.path.exists(path):
            raise IOError("Prediction %s is missing (for %s)" % (path, record["image"]))
        prediction = dataset.read_annotation(path)
        if prediction.max(initial=0) >= num_classes:
            raise ValueError("Prediction %s holds label %d; labels must lie in 0..%d"
                             % (path, prediction.max(), num_classes - 1))
        if prediction.shape != annotation.shape:
            raise ValueError("Prediction %s is %dx%d but its annotation %s is %dx%d (height x width)"
                             % ((path,) + prediction.shape + (record["annotation"],) + annotation.shape))
        yield annotation, prediction


def evaluate_mode(predictions, num_images, logs_dir, checkpoint, num_classes=NUM_OF_CLASSESS):
    """One confusion matrix over all (annotation, prediction) pairs: a table, and the metrics in logs_dir/metrics.json."""
    confusion = np.zeros((num_classes, num_classes), np.int64)
    for annotation, prediction in utils.progress(predictions, num_images, "Evaluating"):
        confusion += metrics.confusion_matrix(annotation, prediction, num_classes)
    scores = dict(metrics.summary(confusion), num_images=num_images, checkpoint=checkpoint)
    print(metrics.format_table(confusion, utils.ade20k_class_names()))
    for name in metrics.SCORES:
        print("%-24s %s" % (name, "n/a" if scores[name] is None else "%.4f" % scores[name]))
    print("Validation pixel accuracy: %.4f (most frequent class: %.4f) on %d images"
          % (metrics.pixel_accuracy(confusion), metrics.most_frequent_class_accuracy(confusion), num_images))
    os.makedirs(logs_dir, exist_ok=True)
    with open(os.path.join(logs_dir, "metrics.json"), "w") as metrics_file:
        json.dump(scores, metrics_file, indent=1)
    return scores


def image_files(path):
    """The image itself, or the JPEG and PNG files of a folder (sorted)."""
    if not os.path.isdir(path):
        return [path]
    files = sorted(os.path.join(path, name) for name in os.listdir(path)
                   if name.lower().endswith(scene_parsing.IMAGE_EXTENSIONS))
    if not files:
        raise IOError("No JPEG or PNG images in %s" % path)
    return files


def predict_mode(sess, predictor, input_path, output_dir, palette):
    """<stem>.png (label map at the input's size), <stem>_color.png and <stem>_overlay.png per image."""
    os.makedirs(output_dir, exist_ok=True)
    for path in image_files(input_path):
        image = dataset.read_image(path)
        labels = predict_labels(sess, predictor, image)
        stem = scene_parsing.image_stem(path)
        utils.save_image(labels, output_dir, stem)
        utils.save_image(utils.colorize(labels, palette), output_dir, stem + "_color")
        utils.save_image(utils.overlay(image, labels, palette), output_dir, stem + "_overlay")
        print("Saved %s" % os.path.join(output_dir, stem + ".png"))


def export_mode(sess, predictor, export_dir):
    """SavedModel whose serving_default maps uint8 `images` [N, H, W, 3] to `labels` and `probabilities`."""
    signature = tf.compat.v1.saved_model.predict_signature_def(
        inputs={"images": predictor.images},
        outputs={"labels": predictor.labels, "probabilities": predictor.probabilities})
    builder = tf.compat.v1.saved_model.Builder(export_dir)
    builder.add_meta_graph_and_variables(sess, [tf.compat.v1.saved_model.SERVING], strip_default_attrs=True,
                                         signature_def_map={"serving_default": signature})
    builder.save()
    print("Exported the SavedModel to %s" % export_dir)


def main(argv):
    del argv
    tf.compat.v1.logging.set_verbosity(tf.compat.v1.logging.ERROR)  # deprecation notes of the compat.v1 API
    output_dir = FLAGS.output_dir or os.path.join(FLAGS.logs_dir, "predictions")
    export_dir = FLAGS.export_dir or os.path.join(FLAGS.logs_dir, "saved_model")
    check_flags(output_dir, export_dir)
    try:
        with tf.Graph().as_default():
            if FLAGS.mode in ("train", "visualize"):
                run_mode(FLAGS.mode)
            elif FLAGS.mode == "evaluate" and FLAGS.predictions_dir:
                records = validation_records()
                evaluate_mode(saved_predictions(FLAGS.predictions_dir, records), len(records), FLAGS.logs_dir, None)
            else:
                run_inference_mode(FLAGS.mode, output_dir, export_dir)
    except (OSError, ValueError, dataset.DataError, FloatingPointError) as error:
        sys.exit("FCN.py: error: %s" % error)


def check_flags(output_dir, export_dir):
    """Refuse, before anything is loaded, what cannot work."""
    if FLAGS.image_size % 32:
        raise app.UsageError("--image_size must be a multiple of 32, got %d" % FLAGS.image_size)
    if FLAGS.infer_size is not None and (FLAGS.infer_size < 0 or FLAGS.infer_size % 32):
        raise app.UsageError("--infer_size must be 0 or a positive multiple of 32, got %d" % FLAGS.infer_size)
    if FLAGS.mode == "predict" and not FLAGS.input:
        raise app.UsageError("--mode=predict needs --input=<image file or folder>")
    if (FLAGS.mode == "predict" and os.path.isdir(FLAGS.input) and os.path.isdir(output_dir)
            and os.path.samefile(FLAGS.input, output_dir)):
        raise app.UsageError("--output_dir is the --input folder: the label maps would overwrite PNG inputs")
    if FLAGS.mode == "export" and os.path.exists(export_dir):
        raise app.UsageError("%s exists: --mode=export writes a new folder (pass --export_dir)" % export_dir)
    if FLAGS.mode == "export" and not list_checkpoints(FLAGS.logs_dir):
        raise app.UsageError("No checkpoint in %s to export: train first, or pass --logs_dir" % FLAGS.logs_dir)


def vgg_for_inference():
    """The VGG file's weights and mean pixel; without the file but with a checkpoint to restore, the shapes
    from that checkpoint and the ImageNet mean pixel of the beta16 file, so a trained model needs no 510 MB file."""
    vgg_file = utils.local_path(FLAGS.model_dir, FLAGS.model_url)
    checkpoints = list_checkpoints(FLAGS.logs_dir)
    if os.path.exists(vgg_file) or not checkpoints:
        return load_vgg(FLAGS.model_dir, FLAGS.model_url, FLAGS.transpose_vgg_kernels)
    print("No %s: VGG shapes from %s, ImageNet mean pixel %s" % (vgg_file, checkpoints[-1], IMAGENET_MEAN_PIXEL))
    return vgg_shapes_from_checkpoint(checkpoints[-1]), np.array(IMAGENET_MEAN_PIXEL)


def validation_records():
    """The validation split's records: evaluate needs no training images."""
    return scene_parsing.read_dataset(FLAGS.data_dir, FLAGS.data_url, required_splits=("validation",))[1]


def run_mode(mode):
    """List the data, build the training graph, restore, and train or visualize (all settings from FLAGS).

    The listing comes first: a problem with the data shows before the VGG file is read."""
    print("Setting up image reader...")
    train_records, valid_records = scene_parsing.read_dataset(FLAGS.data_dir, FLAGS.data_url)
    print(len(train_records))
    print(len(valid_records))
    weights, mean_pixel = load_vgg(FLAGS.model_dir, FLAGS.model_url, FLAGS.transpose_vgg_kernels)
    model = build_model(weights, mean_pixel, FLAGS.learning_rate, FLAGS.fc_width, debug=FLAGS.debug,
                        convs_as_matmul=FLAGS.convs_as_matmul, mixed_precision=FLAGS.mixed_precision)
    del weights  # the loader keeps them only until the session holds them
    image_options = {"resize": True, "resize_size": FLAGS.image_size, "num_classes": NUM_OF_CLASSESS}
    os.makedirs(FLAGS.logs_dir, exist_ok=True)
    saver = tf.compat.v1.train.Saver(max_to_keep=5)
    with make_session(FLAGS.xla) as sess, dataset.BatchDatset(valid_records, image_options) as validation_reader:
        restore_or_initialize(sess, model.pretrained, saver, FLAGS.logs_dir)
        if mode == "train":
            with dataset.BatchDatset(train_records, image_options) as train_reader:
                train_mode(sess, model, saver, train_reader, validation_reader, FLAGS.logs_dir, FLAGS.batch_size,
                           FLAGS.max_iteration, FLAGS.keep_prob, FLAGS.log_every, FLAGS.save_every)
        else:
            visualize_mode(sess, model, validation_reader, FLAGS.logs_dir, FLAGS.batch_size,
                           utils.ade20k_class_names(), utils.ade20k_palette())


def run_inference_mode(mode, output_dir, export_dir):
    """Build the any-size inference path, restore, and evaluate, predict or export (all settings from FLAGS)."""
    weights, mean_pixel = vgg_for_inference()
    infer_size = FLAGS.image_size if FLAGS.infer_size is None else FLAGS.infer_size
    predictor = build_predictor(weights, mean_pixel, infer_size, FLAGS.fc_width, convs_as_matmul=FLAGS.convs_as_matmul)
    del weights  # the loader keeps them only until the session holds them
    with make_session() as sess:
        checkpoint = restore_or_initialize(sess, predictor.pretrained, tf.compat.v1.train.Saver(), FLAGS.logs_dir)
        if mode == "evaluate":
            records = validation_records()
            evaluate_mode(network_predictions(sess, predictor, records), len(records), FLAGS.logs_dir, checkpoint)
        elif mode == "predict":
            predict_mode(sess, predictor, FLAGS.input, output_dir, utils.ade20k_palette())
        else:
            export_mode(sess, predictor, export_dir)


if __name__ == "__main__":
    app.run(main)
