"""Fully convolutional networks for semantic segmentation: the flags, the network, its loss and training op, main.

A port of shekkizh/FCN.tensorflow (its FCN-8s, the default) to today's TensorFlow (tf.compat.v1 graphs and
sessions), with the paper's FCN-32s/16s/8s (paper_heads.py) and any dataset (datasets.py). The graphs the modes
run are assembled in graphs.py, each mode runs in modes.py, sessions and checkpoints are in session.py, several
GPUs and machines in distribute.py. `python FCN.py --help` lists every flag.
"""
import importlib.util
import os
import sys

from absl import app
from absl import flags
import numpy as np

if __name__ == "__main__":
    sys.modules.setdefault("FCN", sys.modules["__main__"])  # modes.py imports FCN: let it find this module

import augment
import checkpoints
import console
import datasets
import matconvnet
import read_MITSceneParsingData as scene_parsing


def _lazy_import(name):
    """The module `name`, loaded at its first use, so a wrong flag is answered before TensorFlow loads."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    spec.loader = importlib.util.LazyLoader(spec.loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


tf = _lazy_import("tensorflow")
utils = _lazy_import("TensorflowUtils")
paper_heads = _lazy_import("paper_heads")

MODE_HELP = {
    "train": "train, resuming from the newest checkpoint in --logs_dir",
    "visualize": "write input, ground truth and prediction pictures of a few validation images",
    "evaluate": "score the validation split, write logs_dir/metrics.json",
    "predict": "segment --input (an image or a folder)",
    "export": "write a SavedModel to --export_dir",
}

FLAGS = flags.FLAGS
flags.DEFINE_integer("batch_size", 2, "batch size for training, per replica (the step's global batch is "
                     "batch_size x replicas x workers), and the number of pictures visualize writes", lower_bound=1)
flags.DEFINE_string("logs_dir", "logs/", "path to logs directory (checkpoints, TensorBoard, pictures)")
flags.DEFINE_string("data_dir", "Data_zoo/MIT_SceneParsing/", "path to dataset")
flags.DEFINE_float("learning_rate", 1e-4, "Learning rate of --optimizer (> 0)")
flags.DEFINE_string("model_dir", "Model_zoo/", "Path to vgg model mat")
flags.DEFINE_bool("debug", False, "Debug mode: activation and gradient histograms in TensorBoard")
flags.DEFINE_enum("mode", "train", list(MODE_HELP), "Mode: " + "; ".join("%s: %s" % item for item in MODE_HELP.items()))
flags.DEFINE_integer("max_iteration", 100001, "number of training steps (the step count continues on resume)",
                     lower_bound=0)
flags.DEFINE_integer("image_size", 224, "images and annotations are resized to this square (multiple of 32)",
                     lower_bound=32)
flags.DEFINE_float("keep_prob", 0.85, "dropout keep probability of conv6 and conv7 while training, in (0, 1]")
flags.DEFINE_integer("log_every", 10, "print and log the training loss every N steps", lower_bound=1)
flags.DEFINE_integer("save_every", 500, "validate and write a checkpoint every N steps", lower_bound=1)
flags.DEFINE_string("model_url", matconvnet.MODEL_URL, "where to download the VGG19 MatConvNet file if model_dir lacks it")
flags.DEFINE_string("data_url", "", "where to download the dataset if data_dir lacks it. Default: the official archive "
                    "(ADE20K: %s; VOC: %s)" % (scene_parsing.DATA_URL, datasets.VOC_URL))
flags.DEFINE_float("download_timeout", 60.0, "seconds a download may wait to connect, or for its next data",
                   lower_bound=0.001)
flags.DEFINE_integer("fc_width", 4096, "number of channels of conv6 and conv7", lower_bound=1)
flags.DEFINE_string("init_checkpoint", "",
                    "train: when --logs_dir has no checkpoint yet, start from this one (or the newest in this folder): "
                    "network variables of the same name and shape are restored, the rest start fresh, at step 0. "
                    "evaluate: without a checkpoint in --logs_dir, score that starting point")
flags.DEFINE_bool("transpose_vgg_kernels", None,
                  "swap the kernel's first two axes as the original did (keeps its checkpoints valid). Default: "
                  "True for --head=original, False for the paper's heads (the file stores height, width, in, out)")
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
                  "convolutions and matmuls in 16 bits, loss, softmax and metrics in float32. On a CPU with "
                  "avx512_bf16 or amx_bf16: bfloat16 (float32 variables when training); on a GPU: float16 with "
                  "float32 master weights and dynamic loss scaling; other CPUs: float32, with a line saying so. "
                  "export: a bfloat16 SavedModel")
# Several devices and machines (tf.distribute, see distribute.py)
flags.DEFINE_integer("replicas", None,
                     "train: data-parallel replicas on this machine, one per GPU; on a machine without GPUs, N logical "
                     "CPU devices (for checking: slower, not faster). Default: the number of visible GPUs, or 1",
                     lower_bound=1)
flags.DEFINE_float("worker_timeout", 300.0,
                   "train with TF_CONFIG (several machines): seconds a worker waits for the others at start-up and in "
                   "any step before it stops with an error; must exceed the chief's longest pause (validation and "
                   "writing a checkpoint)", lower_bound=1.0)

flags.register_validator("learning_rate", lambda value: value > 0, "--learning_rate must be > 0")
flags.register_validator("keep_prob", lambda value: 0 < value <= 1, "--keep_prob must be in (0, 1]")
flags.register_validator("image_size", lambda value: value % 32 == 0, "--image_size must be a multiple of 32")
flags.register_validator("infer_size", lambda value: value is None or (value >= 0 and value % 32 == 0),
                         "--infer_size must be 0 or a positive multiple of 32")

# ---------------------------------------------------------------- flags: the paper's FCNs and how they train
PAPER_HEADS = ("fcn32s", "fcn16s", "fcn8s")
flags.DEFINE_enum("head", "original", ("original",) + PAPER_HEADS,
                  "original: the original's head (average pooling, skips in feature space); fcn32s, fcn16s, fcn8s: "
                  "the paper's (max pooling, conv6/conv7 from the .mat's fc6/fc7, skips summed as class scores, "
                  "bilinear upsampling)")
flags.DEFINE_bool("learn_upsampling", True, "paper heads: upscore2 and upscore_pool4 start bilinear and learn; "
                  "false keeps them bilinear (as the reference Caffe code)")
flags.DEFINE_enum("optimizer", "adam", ("adam", "momentum"), "adam (as the original) or SGD with --momentum")
flags.DEFINE_float("momentum", 0.9, "momentum of --optimizer=momentum, in [0, 1)")
flags.DEFINE_float("weight_decay", 0.0, "L2 penalty on every trainable convolution kernel (not the biases)",
                   lower_bound=0)
flags.DEFINE_bool("augment", False, "train: random mirror, scale (--scale_range) and crop to --image_size of each "
                  "training pair (evaluate, predict and visualize never augment)")
flags.DEFINE_list("scale_range", ["0.5", "2.0"], "--augment: smallest and largest random scale")
flags.DEFINE_integer("seed", None, "train: seed of the initial weights, dropout, epoch order and augmentation",
                     lower_bound=0)
flags.DEFINE_integer("val_images", 100, "train: pixel accuracy and mean IoU over the first N validation images at "
                     "each validation point (all of them if fewer; 0: none)", lower_bound=0)
flags.register_validator("momentum", lambda value: 0 <= value < 1, "--momentum must be in [0, 1)")
flags.register_validator("scale_range", lambda value: augment.scale_range(value) is not None,
                         "--scale_range must be two numbers 0 < smallest <= largest, e.g. 0.5,2.0")

# ---------------------------------------------------------------- flags: the dataset, its classes and ignore label
flags.DEFINE_enum("dataset", "ade20k", list(datasets.NAMES),
                  "ade20k: MIT Scene Parsing; voc: PASCAL VOC 2012 (data_dir holds VOCdevkit/), with --sbd_dir the "
                  "train_aug set; folder: images/ and annotations/ as ADE20K's, or --train_list/--val_list, classes in "
                  "classes.txt or classes.csv; arrays: {train,validation}_{images,labels}.npy")
flags.DEFINE_integer("num_classes", None, "number of classes. Default: the dataset's (ADE20K 151, VOC 21, folder: "
                     "the lines of classes.txt, arrays: the one-hot depth or the largest label + 1)",
                     lower_bound=2, upper_bound=256)
flags.DEFINE_integer("ignore_label", None, "pixels with this label count in neither the loss nor the scores. "
                     "Default: VOC 255, others none", lower_bound=0, upper_bound=255)
flags.DEFINE_string("sbd_dir", "", "voc: the SBD release (benchmark_RELEASE/dataset/): train on SBD train+val and VOC "
                    "train minus VOC val (10,582 images)")
flags.DEFINE_string("train_list", "", "folder: a text file of `image_path annotation_path` lines (relative to "
                    "--data_dir) listing the training pairs")
flags.DEFINE_string("val_list", "", "folder: the same for the validation pairs")

NUM_OF_CLASSESS = 151  # ADE20K's, the original's constant
# What logs_dir/model.json records of the flags: those that shape the network (another value could not restore
# its checkpoints), and those whose recorded value is the default of later runs.
MODEL_SHAPE_FLAGS = ("fc_width", "head", "num_classes")
MODEL_DEFAULT_FLAGS = ("image_size", "transpose_vgg_kernels", "learn_upsampling", "dataset", "ignore_label")
# The checkpoint variable whose length is the model's class count, per head.
CLASS_SCORE_BIAS = dict({"original": "inference/b8"}, **{head: "inference/score_fr/bias" for head in PAPER_HEADS})


# ---------------------------------------------------------------- the network

def vgg_net(weights, image, debug=False, max_pooling=False):
    """VGG19 up to relu5_4 with average pooling (the original's) or max pooling (the file's and the paper's);
    variables shaped like `weights`, filled in later."""
    net = {}
    current = image
    for name in matconvnet.CONV_LAYERS:
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
            current = utils.max_pool_2x2(current) if max_pooling else utils.avg_pool_2x2(current)
        net[name] = current
    return net


def fcn_head(pool5, keep_prob, num_classes, fc_width, debug=False, convs_as_matmul=True):
    """conv6-conv8: the fully connected layers as convolutions, giving class scores at stride 32."""
    relu_dropout7 = fully_connected_as_convs(pool5, keep_prob, fc_width, debug, convs_as_matmul)
    W8 = utils.weight_variable([1, 1, fc_width, num_classes], name="W8")
    b8 = utils.bias_variable([num_classes], name="b8")
    return _conv(relu_dropout7, W8, b8, convs_as_matmul)


def fully_connected_as_convs(pool5, keep_prob, fc_width, debug=False, convs_as_matmul=True, pretrained=False):
    """conv6 (7x7) and conv7 (1x1), each with ReLU and dropout; pretrained: filled from fc6 and fc7 later."""
    relu_dropout6 = _conv_relu_dropout(pool5, [7, 7, pool5.shape[-1], fc_width], "6", keep_prob, debug,
                                       convs_as_matmul, pretrained)
    return _conv_relu_dropout(relu_dropout6, [1, 1, fc_width, fc_width], "7", keep_prob, debug, convs_as_matmul,
                              pretrained)


def _conv_relu_dropout(x, kernel_shape, layer, keep_prob, debug, convs_as_matmul, pretrained=False):
    """W<layer>, b<layer>, relu<layer>, then dropout: conv6 and conv7."""
    W = (utils.pretrained_variable if pretrained else utils.weight_variable)(kernel_shape, name="W" + layer)
    b = utils.bias_variable([kernel_shape[-1]], name="b" + layer)  # zeros, as a pretrained variable starts
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
              convs_as_matmul=True, head="original", learn_upsampling=True):
    """The FCN of `head` on RGB images in 0..255. Returns (prediction [N, H, W, 1], class scores [N, H, W, classes]).

    The original's head (average pooling, skips fused in feature space) or the paper's (paper_heads.py: max
    pooling, conv6 and conv7 from fc6 and fc7 when `weights` holds them, skips summed as class scores).
    convs_as_matmul computes conv6-8 and the upsamplings as matmuls (same sums, faster on CPU);
    False builds the original tf.nn ops."""
    processed_image = utils.process_image(image, mean_pixel.astype(np.float32))
    with tf.compat.v1.variable_scope("inference"):
        image_net = vgg_net(weights, processed_image, debug, max_pooling=head in PAPER_HEADS)
        if head in PAPER_HEADS:
            pool5 = utils.max_pool_2x2(image_net["relu5_4"])  # after relu5_4, as the paper
            fc7 = fully_connected_as_convs(pool5, keep_prob, fc_width, debug, convs_as_matmul, "fc6" in weights)
            logits = paper_heads.score_and_upsample(fc7, image_net["pool4"], image_net["pool3"], tf.shape(image),
                                                    num_classes, head, learn_upsampling, convs_as_matmul)
        else:
            pool5 = utils.max_pool_2x2(image_net["conv5_3"])  # before relu5_3, as the original
            scores = fcn_head(pool5, keep_prob, num_classes, fc_width, debug, convs_as_matmul)
            logits = upsample_and_fuse(scores, image_net["pool4"], image_net["pool3"], tf.shape(image), num_classes,
                                       convs_as_matmul)
        annotation_pred = tf.argmax(logits, axis=3, name="prediction")
    return tf.expand_dims(annotation_pred, axis=3), logits


def inference_at_any_size(images, weights, mean_pixel, infer_size, num_classes=NUM_OF_CLASSESS, fc_width=4096,
                          convs_as_matmul=True, head="original"):
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
                          convs_as_matmul=convs_as_matmul, head=head)
    if infer_size:
        logits = tf.image.resize(logits, size, method="bilinear")
    else:
        logits = logits[:, :size[0], :size[1]]
    if logits.dtype != tf.float32:  # a bfloat16 network: scores, labels and softmax in float32
        logits = tf.cast(logits, tf.float32)
    labels = tf.argmax(logits, axis=3, output_type=tf.int32, name="labels")
    return labels, tf.nn.softmax(logits, name="probabilities")


def segmentation_loss(logits, annotation, ignore_label=None):
    """Mean pixel-wise softmax cross-entropy over all classes (label 0 included, as the original); with an
    ignore_label, the mean over the other pixels."""
    if ignore_label is None:
        return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
            logits=logits, labels=tf.squeeze(annotation, axis=[3])))
    labels = tf.squeeze(annotation, axis=[3])
    counted = tf.not_equal(labels, ignore_label)
    losses = tf.nn.sparse_softmax_cross_entropy_with_logits(  # ignored pixels get a valid label, then weight 0
        logits=logits, labels=tf.where(counted, labels, tf.zeros_like(labels)))
    weights = tf.cast(counted, losses.dtype)
    return tf.reduce_sum(losses * weights) / tf.maximum(tf.reduce_sum(weights), 1.0)


def train(loss_val, var_list, learning_rate, global_step, debug=False, mixed_precision=False, optimizer="adam",
          momentum=0.9):
    """The training step of `optimizer`: "adam" (the original's) or "momentum" (SGD with momentum, the paper's)."""
    optimizer = (tf.compat.v1.train.MomentumOptimizer(learning_rate, momentum) if optimizer == "momentum"
                 else tf.compat.v1.train.AdamOptimizer(learning_rate))
    if mixed_precision:
        optimizer = tf.compat.v1.mixed_precision.enable_mixed_precision_graph_rewrite(optimizer, "dynamic")
    grads = optimizer.compute_gradients(loss_val, var_list=var_list)
    if debug:
        for grad, var in grads:
            utils.add_gradient_summary(grad, var)
    return optimizer.apply_gradients(grads, global_step=global_step)


def kernels_l2():
    """Half the sum of squares of every trainable convolution kernel (4-D); the biases are not decayed."""
    return tf.add_n([tf.nn.l2_loss(var) for var in tf.compat.v1.trainable_variables() if var.shape.rank == 4])


# ---------------------------------------------------------------- the command line

class UsageError(Exception):
    """A command line that cannot work; the message says why."""


def apply_model_record(record, record_path):
    """Flags not given on the command line take the values model.json recorded; a given one that shapes the
    network differently than its checkpoints is an error."""
    for name in MODEL_SHAPE_FLAGS + MODEL_DEFAULT_FLAGS:
        if name not in record:
            continue
        if not FLAGS[name].present:
            FLAGS[name].value = record[name]
        elif name in MODEL_SHAPE_FLAGS and FLAGS[name].value != record[name]:
            raise UsageError("%s records --%s=%s but the command line says %s: drop the flag, or pass another "
                             "--logs_dir" % (record_path, name, record[name], FLAGS[name].value))


def check_flags(found_checkpoints):
    """Refuse, before TensorFlow is loaded, what cannot work with these flags."""
    datasets.check_options(FLAGS.dataset, {name: FLAGS[name].value for name in ("sbd_dir", "train_list", "val_list")})
    if FLAGS.init_checkpoint and not checkpoints.resolve_checkpoint(FLAGS.init_checkpoint):
        raise UsageError("--init_checkpoint=%s is neither a checkpoint (its .index file) nor a folder holding one"
                         % FLAGS.init_checkpoint)
    if FLAGS.mode == "predict" and not FLAGS.input:
        raise UsageError("--mode=predict needs --input=<image file or folder>")
    if FLAGS.mode == "predict" and not os.path.exists(FLAGS.input):
        raise UsageError("--input=%s does not exist" % FLAGS.input)
    if (FLAGS.mode == "predict" and os.path.isdir(FLAGS.input) and os.path.isdir(FLAGS.output_dir)
            and os.path.samefile(FLAGS.input, FLAGS.output_dir)):
        raise UsageError("--output_dir is the --input folder: the label maps would overwrite PNG inputs")
    if FLAGS.mode == "export" and os.path.exists(FLAGS.export_dir):
        raise UsageError("%s exists: --mode=export writes a new folder (pass --export_dir)" % FLAGS.export_dir)
    if FLAGS.mode in ("predict", "export") and not found_checkpoints:
        raise UsageError("no checkpoint in %s to %s: train first, or pass --logs_dir" % (FLAGS.logs_dir, FLAGS.mode))


def parse_flags(argv):
    """absl's parsing, with a bad flag answered in one line instead of the whole help."""
    try:
        return FLAGS(argv)
    except flags.Error as error:
        sys.exit("FCN.py: error: %s" % error)


def main(argv):
    """Check the flags and what they name, then load TensorFlow and run the mode. Returns the exit status."""
    del argv
    try:
        record = checkpoints.read_model_record(FLAGS.logs_dir)
        if record:
            apply_model_record(record, os.path.join(FLAGS.logs_dir, checkpoints.MODEL_RECORD))
        if FLAGS.transpose_vgg_kernels is None:  # the original's checkpoints need it; the file's order is H, W, in, out
            FLAGS.transpose_vgg_kernels = FLAGS.head == "original"
        FLAGS.output_dir = FLAGS.output_dir or os.path.join(FLAGS.logs_dir, "predictions")
        FLAGS.export_dir = FLAGS.export_dir or os.path.join(FLAGS.logs_dir, "saved_model")
        found_checkpoints = checkpoints.list_checkpoints(FLAGS.logs_dir)
        check_flags(found_checkpoints)
    except (UsageError, ValueError) as error:
        sys.exit("FCN.py: error: %s" % error)
    console.import_tensorflow_quietly()
    tf.compat.v1.disable_eager_execution()
    import modes  # imported here: it loads TensorFlow, which waits until the flags are known to be good
    try:
        with tf.Graph().as_default():
            return modes.MODES[FLAGS.mode](FLAGS, found_checkpoints)
    except modes.ERRORS as error:
        sys.exit("FCN.py: error: %s" % error)


if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags)
