"""TensorFlow helpers: the original FCN.tensorflow's public functions (TensorflowUtils.py), with its signatures,
and the layers the network (network.py) is built from.

Code written against the original (`get_model_data`, `conv2d_basic`, `save_image`, ...) keeps working;
downloads, the VGG file and pictures live in modules without TensorFlow and are called from here.
"""
import functools
import operator

import tensorflow as tf

from fcn_tensorflow import pictures
from fcn_tensorflow.data import downloads
from fcn_tensorflow.data import matconvnet


# ---------------------------------------------------------------- files (re-exported, original signatures)

def maybe_download_and_extract(dir_path, url_name, is_tarfile=False, is_zipfile=False):
    return downloads.maybe_download_and_extract(dir_path, url_name, is_tarfile, is_zipfile)


def get_model_data(dir_path, model_url):
    return matconvnet.get_model_data(dir_path, model_url)


def save_image(image, save_dir, name, mean=None):
    return pictures.save_image(image, save_dir, name, mean)


# ---------------------------------------------------------------- variables
# tf.compat.v1.Variable(..., trainable=True), not tf.Variable: under a tf.distribute strategy, tf.Variable would
# also list every replica's copy as a variable of its own (and save it); one device builds the same graph.

def get_variable(weights, name):
    """A variable initialised to the numpy array `weights` (baked into the graph: the original's way)."""
    return tf.compat.v1.get_variable(name=name, initializer=tf.constant_initializer(weights), shape=weights.shape)


def weight_variable(shape, stddev=0.02, name=None):
    return tf.compat.v1.Variable(tf.random.truncated_normal(shape, stddev=stddev), name=name, trainable=True)


def bias_variable(shape, name=None):
    return tf.compat.v1.Variable(tf.zeros(shape), name=name, trainable=True)


def pretrained_variable(shape, name):
    """A variable whose value is fed in after the session starts (see PretrainedLoader)."""
    return tf.compat.v1.Variable(tf.zeros(shape), name=name, trainable=True)


def variables_of(dtype):
    """For tf.variable_creator_scope: every variable made inside is of `dtype` (its initial value cast), e.g. the
    bfloat16 weights of an inference graph. Checkpoints hold float32: session.restore_checkpoint casts."""
    def creator(next_creator, **kwargs):
        initial_value = kwargs["initial_value"]
        kwargs["initial_value"] = lambda: tf.cast(initial_value() if callable(initial_value) else initial_value,
                                                  dtype)
        kwargs["dtype"] = dtype
        return next_creator(**kwargs)
    return creator


class PretrainedLoader(object):
    """Assigns numpy values to variables through feeds, so weights never enter the GraphDef."""

    def __init__(self, variables_and_values):
        self._feeds = {}
        assigns = []
        with tf.name_scope("load_pretrained"):
            for variable, value in variables_and_values:
                placeholder = tf.compat.v1.placeholder(variable.dtype.base_dtype, value.shape)
                assigns.append(variable.assign(placeholder))
                self._feeds[placeholder] = value
        self.op = tf.group(*assigns)

    def load(self, sess):
        sess.run(self.op, feed_dict=self._feeds)

    def release(self):
        """Let go of the numpy values (hundreds of MB for VGG19) once the session holds the weights."""
        self._feeds = {}


def get_tensor_size(tensor):
    """Number of elements of a tensor of fully known static shape."""
    return functools.reduce(operator.mul, tensor.shape.as_list(), 1)


# ---------------------------------------------------------------- layers

def conv2d_basic(x, W, bias):
    """SAME convolution and bias; x is cast to W's type (a bfloat16 network's first layer takes float32 images)."""
    if x.dtype != W.dtype.base_dtype:
        x = tf.cast(x, W.dtype.base_dtype)
    conv = tf.nn.conv2d(x, W, strides=[1, 1, 1, 1], padding="SAME")
    return tf.nn.bias_add(conv, bias)


def conv2d_strided(x, W, b):
    conv = tf.nn.conv2d(x, W, strides=[1, 2, 2, 1], padding="SAME")
    return tf.nn.bias_add(conv, b)


def conv2d_transpose_strided(x, W, b, output_shape=None, stride=2, as_matmul=False):
    """Transposed convolution; without output_shape, stride times the input's static height and width."""
    if output_shape is None:
        output_shape = x.shape.as_list()
        output_shape[1] *= stride
        output_shape[2] *= stride
        output_shape[3] = W.shape.as_list()[2]
    return tf.nn.bias_add(conv2d_transpose(x, W, output_shape, stride, as_matmul), b)


def conv2d_transpose(x, W, output_shape, stride, as_matmul=False, padding="SAME"):
    """tf.nn.conv2d_transpose with SAME (or VALID: the whole output, Caffe's deconvolution) padding; as_matmul:
    conv2d_transpose_as_matmul where it applies (a kernel of twice the stride), which serves both."""
    if as_matmul and W.shape[0] == W.shape[1] == 2 * stride:
        return conv2d_transpose_as_matmul(x, W, output_shape, stride)
    return tf.nn.conv2d_transpose(x, W, output_shape, strides=[1, stride, stride, 1], padding=padding)


def conv2d_as_matmul(x, W, padding="SAME"):
    """tf.nn.conv2d with stride 1 as one matmul over image patches.

    For big kernels on small maps (conv6: 7x7x512x4096 on 7x7, conv7: 1x1x4096x4096) oneDNN's convolution
    spends most of its time reordering the weights into its blocked layout at every step; a matmul reads
    them as they are."""
    kh, kw, c_in, c_out = W.shape
    patches = x if kh == kw == 1 else tf.image.extract_patches(x, [1, kh, kw, 1], [1, 1, 1, 1], [1, 1, 1, 1], padding)
    shape = tf.shape(patches)
    out = matmul_in_row_blocks(tf.reshape(patches, [-1, kh * kw * c_in]), tf.reshape(W, [kh * kw * c_in, c_out]))
    return tf.reshape(out, tf.concat([shape[:3], [c_out]], axis=0))


def matmul_in_row_blocks(a, b, most_rows=512):
    """tf.matmul(a, b); in bfloat16 as a batch of blocks of at most most_rows rows (a padded by a few zero rows).

    oneDNN's bfloat16 matmul runs some large row counts at 2/3 of its speed (the 8x upsampling of a 448x480 image,
    3477 rows: 153 against 234 GFLOP/s in blocks); float32 runs fastest in one piece."""
    if a.dtype != tf.bfloat16:
        return tf.matmul(a, b)
    rows = tf.shape(a)[0]
    blocks = tf.maximum((rows + most_rows - 1) // most_rows, 1)
    block_rows = (rows + blocks - 1) // blocks
    padded = tf.pad(a, [[0, blocks * block_rows - rows], [0, 0]])
    out = tf.matmul(tf.reshape(padded, [blocks, block_rows, a.shape[1]]), b)
    return tf.reshape(out, [-1, b.shape[1]])[:rows]


def conv2d_transpose_as_matmul(x, W, output_shape, stride):
    """tf.nn.conv2d_transpose (kernel 2*stride, SAME or VALID: output_shape says) as a 2x2 convolution to
    stride*stride output phases.

    Output row stride*q + r - pad_top receives x[q] * W[r] + x[q-1] * W[r + stride]; so a 2x2
    convolution of x (padded by one) gives every phase as channels, depth_to_space interleaves them
    and a slice removes the padding. Same sums as tf.nn.conv2d_transpose, run as a plain matmul."""
    s = stride
    c_out, c_in = W.shape[2], W.shape[3]
    taps = tf.reverse(tf.reshape(W, [2, s, 2, s, c_out, c_in]), axis=[0, 2])  # tap 0 looks at x[q-1]
    kernel = tf.reshape(tf.transpose(taps, [0, 2, 5, 1, 3, 4]), [2, 2, c_in, s * s * c_out])
    phases = conv2d_as_matmul(tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]]), kernel, padding="VALID")
    full = tf.nn.depth_to_space(phases, s)
    x_shape = tf.shape(x)
    pad_top = ((x_shape[1] - 1) * s + 2 * s - output_shape[1]) // 2
    pad_left = ((x_shape[2] - 1) * s + 2 * s - output_shape[2]) // 2
    out = tf.slice(full, tf.stack([0, pad_top, pad_left, 0]), output_shape)
    out.set_shape([None, None, None, c_out])
    return out


def leaky_relu(x, alpha=0.0, name=""):
    return tf.maximum(alpha * x, x, name=name or None)


def avg_pool_2x2(x):
    return tf.nn.avg_pool2d(x, ksize=2, strides=2, padding="SAME")


def max_pool_2x2(x):
    return tf.nn.max_pool2d(x, ksize=2, strides=2, padding="SAME")


def local_response_norm(x):
    return tf.nn.local_response_normalization(x, depth_radius=5, bias=2, alpha=1e-4, beta=0.75)


def batch_norm(x, n_out, phase_train, scope="bn", decay=0.9, eps=1e-5):
    """Batch normalisation over N, H, W with moving averages; phase_train is a boolean tensor."""
    with tf.compat.v1.variable_scope(scope):
        beta = tf.compat.v1.get_variable("beta", [n_out], initializer=tf.compat.v1.constant_initializer(0.0))
        gamma = tf.compat.v1.get_variable("gamma", [n_out],
                                          initializer=tf.compat.v1.random_normal_initializer(1.0, 0.02))
        batch_mean, batch_var = tf.nn.moments(x, [0, 1, 2], name="moments")
        ema = tf.compat.v1.train.ExponentialMovingAverage(decay=decay)

        def mean_var_with_update():
            with tf.control_dependencies([ema.apply([batch_mean, batch_var])]):
                return tf.identity(batch_mean), tf.identity(batch_var)
        mean, var = tf.cond(phase_train, mean_var_with_update,
                            lambda: (ema.average(batch_mean), ema.average(batch_var)))
        return tf.nn.batch_normalization(x, mean, var, beta, gamma, eps)


def process_image(image, mean_pixel):
    return image - mean_pixel


def unprocess_image(image, mean_pixel):
    return image + mean_pixel


def bottleneck_unit(x, out_chan1, out_chan2, down_stride=False, up_stride=False, name=None):
    """A ResNet bottleneck (1x1, 3x3, 1x1 with local response normalisation) and its shortcut; the first
    1x1 halves (down_stride) or doubles (up_stride) the height and width. The original's version could not run."""
    first_stride = 2 if down_stride or up_stride else 1

    def conv(tensor, out_chans, size, stride, layer):
        if up_stride and stride > 1:
            kernel = weight_variable([size, size, out_chans, tensor.shape[-1]], name=layer)
            shape = tf.shape(tensor)
            return tf.nn.conv2d_transpose(tensor, kernel, tf.stack([shape[0], shape[1] * 2, shape[2] * 2, out_chans]),
                                          strides=[1, stride, stride, 1], padding="SAME")
        kernel = weight_variable([size, size, tensor.shape[-1], out_chans], name=layer)
        return tf.nn.conv2d(tensor, kernel, strides=[1, stride, stride, 1], padding="SAME")

    with tf.compat.v1.variable_scope("res%s" % name):
        shortcut = x
        if x.shape[-1] != out_chan2 or first_stride > 1:
            shortcut = local_response_norm(conv(x, out_chan2, 1, first_stride, "res%s_branch1" % name))
        branch = tf.nn.relu(local_response_norm(conv(x, out_chan1, 1, first_stride, "res%s_branch2a" % name)))
        branch = tf.nn.relu(local_response_norm(conv(branch, out_chan1, 3, 1, "res%s_branch2b" % name)))
        branch = local_response_norm(conv(branch, out_chan2, 1, 1, "res%s_branch2c" % name))
        return tf.nn.relu(shortcut + branch, name="relu")


# ---------------------------------------------------------------- summaries

def image_summary(tag, images, max_outputs=2):
    """An image summary tagged exactly `tag` (tf.summary.image renames it when an op has that name)."""
    return tf.raw_ops.ImageSummary(tag=tag, tensor=images, max_images=max_outputs)


def add_to_regularization_and_summary(var):
    """A histogram of var, and its L2 loss in the "reg_loss" collection."""
    if var is not None:
        tf.compat.v1.summary.histogram(var.op.name, var)
        tf.compat.v1.add_to_collection("reg_loss", tf.nn.l2_loss(var))


def add_activation_summary(var):
    """Called inside the variable's name scope, which TensorFlow adds to the tag itself."""
    name = var.op.name.rsplit("/", 1)[-1]
    tf.compat.v1.summary.histogram(name + "/activation", var)
    tf.compat.v1.summary.scalar(name + "/sparsity", tf.nn.zero_fraction(var))


def add_gradient_summary(grad, var):
    if grad is not None:
        tf.compat.v1.summary.histogram(var.op.name + "/gradient", grad)
