"""FCN-8s semantic segmentation on MIT Scene Parsing (ADE20K): train, visualize, evaluate.

A port of shekkizh/FCN.tensorflow to today's TensorFlow (tf.compat.v1 graphs and sessions).
Run `python FCN.py --helpfull` for every flag.
"""
from __future__ import print_function

import collections
import datetime
import os
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
flags.DEFINE_integer("batch_size", 2, "batch size for training")
flags.DEFINE_string("logs_dir", "logs/", "path to logs directory (checkpoints, TensorBoard, pictures)")
flags.DEFINE_string("data_dir", "Data_zoo/MIT_SceneParsing/", "path to dataset")
flags.DEFINE_float("learning_rate", 1e-4, "Learning rate for Adam Optimizer")
flags.DEFINE_string("model_dir", "Model_zoo/", "Path to vgg model mat")
flags.DEFINE_bool("debug", False, "Debug mode: activation and gradient histograms in TensorBoard")
flags.DEFINE_enum("mode", "train", ["train", "visualize", "evaluate"],
                  "Mode: train / visualize / evaluate")
flags.DEFINE_integer("max_iteration", 100001, "number of training steps (the step count continues on resume)")
flags.DEFINE_integer("image_size", 224, "images and annotations are resized to this square (multiple of 32)")
flags.DEFINE_float("keep_prob", 0.85, "dropout keep probability of conv6 and conv7 while training")
flags.DEFINE_integer("log_every", 10, "print and log the training loss every N steps")
flags.DEFINE_integer("save_every", 500, "validate and write a checkpoint every N steps")
flags.DEFINE_string("model_url", "http://www.vlfeat.org/matconvnet/models/beta16/imagenet-vgg-verydeep-19.mat",
                    "where to download the VGG19 MatConvNet file if model_dir lacks it")
flags.DEFINE_string("data_url", scene_parsing.DATA_URL, "where to download ADEChallengeData2016.zip if data_dir lacks it")
flags.DEFINE_integer("fc_width", 4096, "number of channels of conv6 and conv7")
flags.DEFINE_bool("transpose_vgg_kernels", True,
                  "swap the kernel's first two axes as the original did (keeps its checkpoints valid)")
flags.DEFINE_bool("convs_as_matmul", True,
                  "compute conv6-8 and the 8x upsampling as matmuls (same sums, faster on CPU); false: original ops")
flags.DEFINE_bool("xla", False, "compile the graph with XLA auto-clustering")
flags.DEFINE_bool("mixed_precision", False,
                  "GPU: float16 compute with float32 master weights and dynamic loss scaling (no effect on CPU)")

NUM_OF_CLASSESS = 151
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


def fcn_head(pool5, keep_prob, num_classes, fc_width, debug=False, convs_as_matmul=False):
    """conv6-conv8: the fully connected layers as convolutions, giving class scores at stride 32."""
    def conv(x, W, b):
        return tf.nn.bias_add(utils.conv2d_as_matmul(x, W), b) if convs_as_matmul else utils.conv2d_basic(x, W, b)

    W6 = utils.weight_variable([7, 7, pool5.shape[-1], fc_width], name="W6")
    b6 = utils.bias_variable([fc_width], name="b6")
    relu6 = tf.nn.relu(conv(pool5, W6, b6), name="relu6")
    if debug:
        utils.add_activation_summary(relu6)
    relu_dropout6 = tf.nn.dropout(relu6, rate=1 - keep_prob)

    W7 = utils.weight_variable([1, 1, fc_width, fc_width], name="W7")
    b7 = utils.bias_variable([fc_width], name="b7")
    relu7 = tf.nn.relu(conv(relu_dropout6, W7, b7), name="relu7")
    if debug:
        utils.add_activation_summary(relu7)
    relu_dropout7 = tf.nn.dropout(relu7, rate=1 - keep_prob)

    W8 = utils.weight_variable([1, 1, fc_width, num_classes], name="W8")
    b8 = utils.bias_variable([num_classes], name="b8")
    return conv(relu_dropout7, W8, b8)


def upsample_and_fuse(scores, pool4, pool3, image_shape, num_classes, convs_as_matmul=False):
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


def segmentation_loss(logits, annotation):
    """Mean pixel-wise softmax cross-entropy over all classes (label 0 included, as the original)."""
    return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
        logits=logits, labels=tf.squeeze(annotation, axis=[3]), name="entropy"))


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
    "global_step", "train_summary", "validation_summary", "pretrained"])


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
        tf.compat.v1.summary.image("input_image", tf.cast(image, tf.uint8), max_outputs=2),
        tf.compat.v1.summary.image("ground_truth", tf.gather(palette, annotation[..., 0]), max_outputs=2),
        tf.compat.v1.summary.image("pred_annotation", tf.gather(palette, pred_annotation[..., 0]), max_outputs=2),
    ]
    validation_summary = tf.compat.v1.summary.merge([entropy] + pictures)

    variables = {var.op.name: var for var in tf.compat.v1.global_variables()}
    pretrained = utils.PretrainedLoader(
        [(variables["inference/" + name + suffix], value)
         for name, pair in sorted(weights.items()) for suffix, value in zip(("_w", "_b"), pair)])
    return Model(image, annotation, keep_probability, pred_annotation, logits, loss, train_op,
                 global_step, train_summary, validation_summary, pretrained)


# ---------------------------------------------------------------- session, checkpoints

def restore_or_initialize(sess, model, saver, logs_dir):
    """Restore the newest checkpoint in logs_dir, or start from the VGG weights.

    A checkpoint from the original (no global_step) restores too; what it lacks starts fresh.
    `saver` takes over the list of earlier checkpoints, so it keeps rotating them."""
    sess.run(tf.compat.v1.global_variables_initializer())
    state = tf.train.get_checkpoint_state(logs_dir)
    checkpoint = state and state.model_checkpoint_path
    if not checkpoint:
        model.pretrained.load(sess)
        print("No checkpoint in %s: starting from the VGG weights" % logs_dir)
        return None
    saved = dict(tf.train.list_variables(checkpoint))
    variables = tf.compat.v1.global_variables()
    present = [var for var in variables if var.op.name in saved]
    fresh = [var.op.name for var in variables if var.op.name not in saved]
    for var in present:
        if list(saved[var.op.name]) != var.shape.as_list():
            raise ValueError("%s holds %s with shape %s, the graph wants %s: check --fc_width and the VGG file."
                             % (checkpoint, var.op.name, saved[var.op.name], var.shape.as_list()))
    tf.compat.v1.train.Saver(present).restore(sess, checkpoint)
    saver.recover_last_checkpoints(list(state.all_model_checkpoint_paths))
    print("Model restored...", checkpoint)
    if fresh:
        print("Initialised fresh (not in the checkpoint): " + ", ".join(fresh))
    return checkpoint


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

def train_step(sess, model, feed, with_summary=False):
    """One Adam step; with_summary also returns the loss and summary of this step's forward pass
    (fetched with the update: the original ran the forward pass a second time for them)."""
    if with_summary:
        _, loss, summary = sess.run([model.train_op, model.loss, model.train_summary], feed_dict=feed)
        return loss, summary
    sess.run(model.train_op, feed_dict=feed)
    return None, None


def train_mode(sess, model, saver, train_reader, validation_reader, logs_dir, batch_size, max_iteration,
               keep_prob=0.85, log_every=10, save_every=500):
    """The original loop; the step count comes from global_step, so a resumed run continues it."""
    train_writer = tf.compat.v1.summary.FileWriter(os.path.join(logs_dir, "train"), sess.graph)
    validation_writer = tf.compat.v1.summary.FileWriter(os.path.join(logs_dir, "validation"))
    start = sess.run(model.global_step)
    last_log = (time.time(), start)
    itr = start
    for itr in range(start, max_iteration):
        train_images, train_annotations = train_reader.next_batch(batch_size)
        feed = _feed(model, train_images, train_annotations, keep_prob)
        train_loss, summary = train_step(sess, model, feed, with_summary=itr % log_every == 0)
        if itr % log_every == 0:
            seconds, steps = time.time() - last_log[0], itr + 1 - last_log[1]
            print("Step: %d, Train_loss:%g (%.2f images/s)" % (itr, train_loss, steps * batch_size / seconds))
            last_log = (time.time(), itr + 1)
            train_writer.add_summary(summary, itr)

        if itr % save_every == 0:
            validate_and_save(sess, model, saver, validation_reader, validation_writer, logs_dir, batch_size, itr)
    if itr + 1 > start and itr % save_every != 0:
        validate_and_save(sess, model, saver, validation_reader, validation_writer, logs_dir, batch_size, itr)
    train_writer.close()
    validation_writer.close()


def validate_and_save(sess, model, saver, validation_reader, writer, logs_dir, batch_size, step):
    valid_images, valid_annotations = validation_reader.next_batch(batch_size)
    valid_loss, summary = sess.run([model.loss, model.validation_summary],
                                   feed_dict=_feed(model, valid_images, valid_annotations))
    print("%s ---> Validation_loss: %g" % (datetime.datetime.now(), valid_loss))
    writer.add_summary(summary, step)
    writer.flush()
    saver.save(sess, os.path.join(logs_dir, CHECKPOINT_NAME), global_step=step)


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


def evaluate_mode(sess, model, validation_reader, batch_size, num_classes=NUM_OF_CLASSESS):
    """Pixel accuracy over the whole validation split, against always predicting the most frequent class."""
    images, annotations = validation_reader.get_records()
    confusion = np.zeros((num_classes, num_classes), np.int64)
    for start in range(0, len(images), batch_size):
        pred = sess.run(model.pred_annotation, feed_dict=_feed(model, images[start:start + batch_size]))
        confusion += metrics.confusion_matrix(annotations[start:start + batch_size], pred, num_classes)
    print("Validation pixel accuracy: %.4f (most frequent class: %.4f) on %d images"
          % (metrics.pixel_accuracy(confusion), metrics.most_frequent_class_accuracy(confusion), len(images)))
    return confusion


def main(argv):
    del argv
    if FLAGS.image_size % 32:
        raise app.UsageError("--image_size must be a multiple of 32, got %d" % FLAGS.image_size)
    with tf.Graph().as_default():
        run_mode(FLAGS.mode)


def run_mode(mode):
    """Build the graph, read the data, restore, and run one mode (all settings from FLAGS)."""
    weights, mean_pixel = load_vgg(FLAGS.model_dir, FLAGS.model_url, FLAGS.transpose_vgg_kernels)
    model = build_model(weights, mean_pixel, FLAGS.learning_rate, FLAGS.fc_width, debug=FLAGS.debug,
                        convs_as_matmul=FLAGS.convs_as_matmul, mixed_precision=FLAGS.mixed_precision)
    del weights

    print("Setting up image reader...")
    train_records, valid_records = scene_parsing.read_dataset(FLAGS.data_dir, FLAGS.data_url)
    print(len(train_records))
    print(len(valid_records))
    image_options = {"resize": True, "resize_size": FLAGS.image_size}
    validation_reader = dataset.BatchDatset(valid_records, image_options)

    os.makedirs(FLAGS.logs_dir, exist_ok=True)
    saver = tf.compat.v1.train.Saver(max_to_keep=5)
    with make_session(FLAGS.xla) as sess:
        restore_or_initialize(sess, model, saver, FLAGS.logs_dir)
        if mode == "train":
            train_reader = dataset.BatchDatset(train_records, image_options)
            train_mode(sess, model, saver, train_reader, validation_reader, FLAGS.logs_dir, FLAGS.batch_size,
                       FLAGS.max_iteration, FLAGS.keep_prob, FLAGS.log_every, FLAGS.save_every)
        elif mode == "visualize":
            visualize_mode(sess, model, validation_reader, FLAGS.logs_dir, FLAGS.batch_size,
                           utils.ade20k_class_names(), utils.ade20k_palette())
        elif mode == "evaluate":
            evaluate_mode(sess, model, validation_reader, FLAGS.batch_size)


if __name__ == "__main__":
    app.run(main)
