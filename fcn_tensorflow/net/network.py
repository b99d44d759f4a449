"""The network, top to bottom as the paper tells it: VGG, the head (conv6-conv8 as convolutions), the skips, the
upsampling; then inference at any size, the loss and the training step.

Two heads share the VGG part. The original's (FCN.tensorflow): average pooling, skips fused in the pool layers'
feature space, learned upsampling with biases. The paper's FCN-32s/16s/8s, as Long, Shelhamer and Darrell's
reference code (fcn.berkeleyvision.org, voc-fcn*/net.py and surgery.py): max pooling, conv6 and conv7 from the
file's fc6 and fc7, score layers that start at zero (a new skip adds nothing until it has learned), skips summed
as class scores, 2x upsamplings that start bilinear (and may learn), a fixed bilinear last upsampling.
Its parameters, heads and checkpoint names are in spec.py.
"""
import numpy as np
import tensorflow as tf

from fcn_tensorflow.data import matconvnet
from fcn_tensorflow.net import layers as utils
from fcn_tensorflow.net.spec import (ATONCE_SKIP_SCALES, CAFFE_CONV1_PAD, CAFFE_SCORE_CROP, CAFFE_SKIP_CROPS,
                                      FINAL_STRIDE, PAPER_HEADS, SCOPE, Net, Training, variable_names)


# ---------------------------------------------------------------- VGG

def vgg_net(weights, image, debug=False, max_pooling=False, backbone="vgg19", geometry="same"):
    """VGG19 (or VGG16) up to its last ReLU with average pooling (the original's) or max pooling (the file's and the
    paper's); variables shaped like `weights`, filled in later. geometry "caffe": conv1_1 sees the image padded by
    100, as the reference's, so the crops of the head find their offsets at any image size."""
    net = {}
    current = image
    for name in matconvnet.conv_layers(backbone):
        kind = name[:4]
        if kind == "conv":
            kernel, bias = weights[name]
            kernel_name, bias_name = variable_names(name)
            kernel_var = utils.pretrained_variable(kernel.shape, name=kernel_name)
            bias_var = utils.pretrained_variable(bias.shape, name=bias_name)
            if name == "conv1_1" and geometry == "caffe":  # zeros (the mean, once centred); SAME adds the last 1
                pad = CAFFE_CONV1_PAD - 1
                current = tf.pad(current, [[0, 0], [pad, pad], [pad, pad], [0, 0]])
            current = utils.conv2d_basic(current, kernel_var, bias_var)
        elif kind == "relu":
            current = tf.nn.relu(current, name=name)
            if debug:
                utils.add_activation_summary(current)
        else:
            current = utils.max_pool_2x2(current) if max_pooling else utils.avg_pool_2x2(current)
        net[name] = current
    return net


# ---------------------------------------------------------------- the original's head and skips

def fcn_head(pool5, keep_prob, num_classes, fc_width, debug=False, convs_as_matmul=True):
    """conv6-conv8: the fully connected layers as convolutions, giving class scores at stride 32."""
    relu_dropout7 = fully_connected_as_convs(pool5, keep_prob, fc_width, debug, convs_as_matmul)
    W8 = utils.weight_variable([1, 1, fc_width, num_classes], name="W8")
    b8 = utils.bias_variable([num_classes], name="b8")
    return _conv(relu_dropout7, W8, b8, convs_as_matmul)


def fully_connected_as_convs(pool5, keep_prob, fc_width, debug=False, convs_as_matmul=True, pretrained=False,
                             padding="SAME"):
    """conv6 (7x7, SAME; the reference's VALID) and conv7 (1x1), each with ReLU and dropout; pretrained: filled
    from fc6 and fc7 later."""
    relu_dropout6 = _conv_relu_dropout(pool5, [7, 7, pool5.shape[-1], fc_width], "6", keep_prob, debug,
                                       convs_as_matmul, pretrained, padding)
    return _conv_relu_dropout(relu_dropout6, [1, 1, fc_width, fc_width], "7", keep_prob, debug, convs_as_matmul,
                              pretrained)


def _conv_relu_dropout(x, kernel_shape, layer, keep_prob, debug, convs_as_matmul, pretrained=False, padding="SAME"):
    """W<layer>, b<layer>, relu<layer>, then dropout: conv6 and conv7."""
    kernel_name, bias_name = variable_names("fc" + layer)
    W = (utils.pretrained_variable if pretrained else utils.weight_variable)(kernel_shape, name=kernel_name)
    b = utils.bias_variable([kernel_shape[-1]], name=bias_name)  # zeros, as a pretrained variable starts
    relu = tf.nn.relu(_conv(x, W, b, convs_as_matmul, padding), name="relu" + layer)
    if debug:
        utils.add_activation_summary(relu)
    return tf.nn.dropout(relu, rate=1 - keep_prob)


def _conv(x, W, b, as_matmul, padding="SAME"):
    """conv2d_basic, or the same sums as one matmul over image patches (faster on CPU for conv6-8)."""
    if as_matmul:
        return tf.nn.bias_add(utils.conv2d_as_matmul(x, W, padding), b)
    if padding == "SAME":
        return utils.conv2d_basic(x, W, b)
    return tf.nn.bias_add(tf.nn.conv2d(x, W, strides=1, padding=padding), b)


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


# ---------------------------------------------------------------- the paper's heads: scores, skips, upsampling

def bilinear_filter(size):
    """The size x size bilinear interpolation filter of the reference's surgery.upsample_filt."""
    factor = (size + 1) // 2
    center = factor - 1 if size % 2 == 1 else factor - 0.5
    taps = 1 - np.abs(np.arange(size) - center) / factor
    return np.outer(taps, taps).astype(np.float32)


def score_and_upsample(fc7, pool4, pool3, image_shape, num_classes, head, learn_upsampling=True,
                       convs_as_matmul=True, geometry="same"):
    """score_fr on conv7; for fcn16s and fcn8s upscore2 + score_pool4 (fuse_pool4), for fcn8s upscore_pool4 +
    score_pool3 (fuse_pool3); then upscore<stride> to the input size. Returns the class scores [N, H, W, classes]."""
    scores = score_layer(fc7, num_classes, "score_fr", convs_as_matmul)
    skips = (("upscore2", pool4, "pool4"), ("upscore_pool4", pool3, "pool3"))[:{32: 0, 16: 1, 8: 2}[FINAL_STRIDE[head]]]
    for upscore_name, pool, pool_name in skips:
        scores = fuse_skip(scores, pool, pool_name, upscore_name, head, learn_upsampling, convs_as_matmul, geometry)
    stride = FINAL_STRIDE[head]
    if geometry == "caffe":
        return caffe_final_upsampling(scores, image_shape, stride, CAFFE_SCORE_CROP[head], convs_as_matmul)
    return fixed_upsampling(scores, image_shape, stride, "upscore%d" % stride, convs_as_matmul)


def fuse_skip(scores, pool, pool_name, upscore_name, head, learn_upsampling=True, convs_as_matmul=True,
              geometry="same"):
    """fuse_pool4 = upscore2 (scores upsampled 2x) + score_pool4 (pool4 scored); fuse_pool3 likewise. At-once
    scales the pool first (scale_pool4); the caffe geometry crops the skip's scores (score_pool4c) to the
    upsampled ones, whose size the unpadded transposed convolution gives."""
    num_classes = scores.shape[-1]
    size = tf.shape(pool) if geometry == "same" else unpadded_upsampled_shape(scores, 2)
    upscore = learned_upsampling(scores, size, upscore_name, learn_upsampling, convs_as_matmul, geometry)
    if head == "fcn8s_atonce":
        pool = scale_layer(pool, "scale_" + pool_name)
    skip = score_layer(pool, num_classes, "score_" + pool_name, convs_as_matmul)
    if geometry == "caffe":
        skip = crop(skip, CAFFE_SKIP_CROPS["score_" + pool_name], tf.shape(upscore), "score_%sc" % pool_name)
    return tf.add(upscore, skip, name="fuse_" + pool_name)


def crop(scores, offset, shape, name):
    """Caffe's Crop (axis 2): the height x width of `shape` from `offset` down and right."""
    return tf.slice(scores, [0, offset, offset, 0], tf.stack([-1, shape[1], shape[2], -1]), name=name)


def scale_layer(features, name):
    """At-once's fixed per-channel scale of a skip's features (scale_pool4: 0.01, scale_pool3: 0.0001), so the
    skips start small without a stage of their own."""
    with tf.compat.v1.variable_scope(name) as scope:
        scale = _model_variable(tf.fill([features.shape[-1]], ATONCE_SKIP_SCALES[name]), False, "scale")
        return tf.multiply(features, scale, name=scope.original_name_scope)


def score_layer(features, num_classes, name, convs_as_matmul=True):
    """A 1x1 convolution to class scores, kernel and bias starting at zero; the op is named `name`."""
    with tf.compat.v1.variable_scope(name) as scope:
        kernel = _model_variable(tf.zeros([1, 1, features.shape[-1], num_classes]), True, "kernel")
        bias = _model_variable(tf.zeros([num_classes]), True, "bias")
        conv = (utils.conv2d_as_matmul(features, kernel) if convs_as_matmul
                else tf.nn.conv2d(features, kernel, strides=1, padding="SAME"))
        return tf.nn.bias_add(conv, bias, name=scope.original_name_scope)


def learned_upsampling(scores, output_shape, name, trainable=True, convs_as_matmul=True, geometry="same", stride=2):
    """upscore2, upscore_pool4: a 4x4 stride-2 transposed convolution (2 stride x 2 stride, stride) from all classes
    to all classes, no bias, starting as bilinear interpolation of each class on its own (its kernel is diagonal in
    the classes); SAME, or unpadded in the caffe geometry."""
    num_classes = scores.shape[-1]
    with tf.compat.v1.variable_scope(name) as scope:
        initial = tf.constant(bilinear_filter(2 * stride))[:, :, None, None] * tf.eye(num_classes)
        kernel = _model_variable(initial, trainable, "kernel")
        output_shape = tf.stack([output_shape[0], output_shape[1], output_shape[2], num_classes])
        padding = "SAME" if geometry == "same" else "VALID"
        return tf.identity(utils.conv2d_transpose(scores, kernel, output_shape, stride, convs_as_matmul, padding),
                           name=scope.original_name_scope)


def unpadded_upsampled_shape(scores, stride):
    """The shape an unpadded transposed convolution (kernel 2 stride) gives: stride (h - 1) + 2 stride = stride h +
    stride, the same for the width."""
    return tf.shape(scores) * [1, stride, stride, 1] + [0, stride, stride, 0]


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


def caffe_final_upsampling(scores, image_shape, stride, offset, convs_as_matmul=True):
    """upscore8/16/32 as the reference's: learned_upsampling unpadded with a kernel from all classes to all classes
    (the file's; fresh: bilinear per class), kept fixed, then `score`, the image's size cropped at `offset`."""
    upsampled = learned_upsampling(scores, unpadded_upsampled_shape(scores, stride), "upscore%d" % stride, False,
                                   convs_as_matmul, "caffe", stride)
    return crop(upsampled, offset, image_shape, "score")


def _model_variable(initial_value, trainable, name):
    """A variable of the network (in the current variable scope, which replicated.reusing looks up), registered
    even when not trained, so --init_checkpoint carries it to the next stage. tf.compat.v1.Variable with an explicit
    `trainable`: under a tf.distribute strategy a tf.Variable would add each replica's copy to the collections."""
    variable = tf.compat.v1.Variable(initial_value, trainable=trainable, name=name)
    if not trainable and variable not in tf.compat.v1.model_variables():  # each replica makes (or reuses) it again
        tf.compat.v1.add_to_collection(tf.compat.v1.GraphKeys.MODEL_VARIABLES, variable)
    return variable


# ---------------------------------------------------------------- the whole network, its loss and training step

def inference(image, keep_prob, weights, mean_pixel, net=Net()):
    """The FCN `net` on RGB images in 0..255. Returns (prediction [N, H, W, 1], class scores [N, H, W, classes]).

    The original's head (average pooling, skips fused in feature space) or the paper's (max pooling, conv6 and
    conv7 from fc6 and fc7 when `weights` holds them, skips summed as class scores). net.convs_as_matmul computes
    conv6-8 and the upsamplings as matmuls (same sums, faster on CPU); False builds the original tf.nn ops."""
    processed_image = utils.process_image(image, mean_pixel.astype(np.float32))
    with tf.compat.v1.variable_scope(SCOPE):
        image_net = vgg_net(weights, processed_image, net.debug, net.head in PAPER_HEADS, net.backbone, net.geometry)
        if net.head in PAPER_HEADS:
            pool5 = utils.max_pool_2x2(image_net[matconvnet.conv_layers(net.backbone)[-1]])  # after relu5_x (paper)
            fc7 = fully_connected_as_convs(pool5, keep_prob, net.fc_width, net.debug, net.convs_as_matmul,
                                           "fc6" in weights, "SAME" if net.geometry == "same" else "VALID")
            logits = score_and_upsample(fc7, image_net["pool4"], image_net["pool3"], tf.shape(image), net.num_classes,
                                        net.head, net.learn_upsampling, net.convs_as_matmul, net.geometry)
        else:
            pool5 = utils.max_pool_2x2(image_net["conv5_3"])  # before relu5_3, as the original
            scores = fcn_head(pool5, keep_prob, net.num_classes, net.fc_width, net.debug, net.convs_as_matmul)
            logits = upsample_and_fuse(scores, image_net["pool4"], image_net["pool3"], tf.shape(image),
                                       net.num_classes, net.convs_as_matmul)
        annotation_pred = tf.argmax(logits, axis=3, name="prediction")
    return tf.expand_dims(annotation_pred, axis=3), logits


def inference_at_any_size(images, weights, mean_pixel, infer_size, net=Net()):
    """uint8 images [N, H, W, 3] of any size -> (labels [N, H, W], probabilities [N, H, W, classes]).

    infer_size > 0: the net sees an infer_size square, resized like the training data (nearest), and
    its class scores are resized back to H x W (bilinear) before the argmax. 0: the net sees the image
    itself, padded to a multiple of 32 with the mean pixel (zero after centring) and cropped back; in the caffe
    geometry, as it is."""
    image = tf.cast(images, tf.float32)
    size = tf.shape(image)[1:3]
    mean_pixel = mean_pixel.astype(np.float32)
    if infer_size:
        net_input = tf.image.resize(image, [infer_size, infer_size], method="nearest")
    else:
        net_input = padded_to_32(image, size, mean_pixel, net.geometry)
    _, logits = inference(net_input, 1.0, weights, mean_pixel, net._replace(debug=False))
    if infer_size:
        logits = tf.image.resize(logits, size, method="bilinear")
    else:
        logits = logits[:, :size[0], :size[1]]
    return labels_and_probabilities(logits)


def inference_at_net_size(images, net_size, weights, mean_pixel, net=Net()):
    """inference_at_any_size where the size the net sees is an input: uint8 images [N, H, W, 3] resized to
    net_size [height, width] (int32 tensor; nearest, as the training data), padded to a multiple of 32 with the
    mean pixel (not in the caffe geometry); the class scores cropped back to net_size and resized to H x W
    (bilinear). Test-time augmentation and tiles (run/tta.py) feed each copy or window its own size."""
    image = tf.cast(images, tf.float32)
    mean_pixel = mean_pixel.astype(np.float32)
    net_input = padded_to_32(tf.image.resize(image, net_size, method="nearest"), net_size, mean_pixel, net.geometry)
    _, logits = inference(net_input, 1.0, weights, mean_pixel, net._replace(debug=False))
    logits = tf.image.resize(logits[:, :net_size[0], :net_size[1]], tf.shape(image)[1:3], method="bilinear")
    return labels_and_probabilities(logits)


def padded_to_32(image, size, mean_pixel, geometry="same"):
    """The image padded at the bottom and right to a multiple of 32 with the mean pixel (zero after centring), which
    the SAME geometry's skips need; the caffe geometry takes any size as it is."""
    if geometry == "caffe":
        return image
    pad = -size % 32
    return tf.pad(image - mean_pixel, [[0, 0], [0, pad[0]], [0, pad[1]], [0, 0]]) + mean_pixel


def labels_and_probabilities(logits):
    """(`labels`: the argmax, `probabilities`: the softmax) of class scores [N, H, W, classes], in float32 (a
    bfloat16 network's scores are cast)."""
    if logits.dtype != tf.float32:  # a bfloat16 network: scores, labels and softmax in float32
        logits = tf.cast(logits, tf.float32)
    labels = tf.argmax(logits, axis=3, output_type=tf.int32, name="labels")
    return labels, tf.nn.softmax(logits, name="probabilities")


def segmentation_loss(logits, annotation, ignore_label=None, class_weights=None, summed=False):
    """Mean pixel-wise softmax cross-entropy over all classes (label 0 included, as the original); with an
    ignore_label, the mean over the other pixels; with class_weights, weighted_segmentation_loss; summed: the sum
    over the counted pixels instead of their mean (the reference's Caffe loss, normalize: false)."""
    if class_weights is not None:
        return weighted_segmentation_loss(logits, annotation, class_weights, ignore_label, summed)
    if ignore_label is None and not summed:
        return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
            logits=logits, labels=tf.squeeze(annotation, axis=[3])))
    labels = tf.squeeze(annotation, axis=[3])
    counted = tf.ones_like(labels, tf.bool) if ignore_label is None else tf.not_equal(labels, ignore_label)
    losses = tf.nn.sparse_softmax_cross_entropy_with_logits(  # ignored pixels get a valid label, then weight 0
        logits=logits, labels=tf.where(counted, labels, tf.zeros_like(labels)))
    weights = tf.cast(counted, losses.dtype)
    total = tf.reduce_sum(losses * weights)
    return total if summed else total / tf.maximum(tf.reduce_sum(weights), 1.0)


def weighted_segmentation_loss(logits, annotation, class_weights, ignore_label=None, summed=False):
    """Eigen & Fergus's weighted loss: the mean (summed: the sum) over the counted pixels (all but ignore_label) of
    each pixel's cross-entropy times its class's weight, class_weights[label]."""
    labels = tf.squeeze(annotation, axis=[3])
    counted = tf.ones_like(labels, tf.bool) if ignore_label is None else tf.not_equal(labels, ignore_label)
    labels = tf.where(counted, labels, tf.zeros_like(labels))
    losses = tf.nn.sparse_softmax_cross_entropy_with_logits(logits=logits, labels=labels)
    weights = tf.gather(tf.constant(class_weights, losses.dtype, name="class_weights"), labels)
    counted = tf.cast(counted, losses.dtype)
    total = tf.reduce_sum(losses * weights * counted)
    return total if summed else total / tf.maximum(tf.reduce_sum(counted), 1.0)


def train(loss_val, var_list, training=Training(), global_step=None, debug=False):
    """The training step of training.optimizer: "adam" (the original's) or "momentum" (SGD with momentum, the
    paper's); in float16 the optimizer scales the loss."""
    optimizer = (tf.compat.v1.train.MomentumOptimizer(training.learning_rate, training.momentum)
                 if training.optimizer == "momentum" else tf.compat.v1.train.AdamOptimizer(training.learning_rate))
    if tf.as_dtype(training.precision) == tf.float16:
        optimizer = tf.compat.v1.mixed_precision.enable_mixed_precision_graph_rewrite(optimizer, "dynamic")
    grads = optimizer.compute_gradients(loss_val, var_list=var_list)
    if debug:
        for grad, var in grads:
            utils.add_gradient_summary(grad, var)
    return optimizer.apply_gradients(grads, global_step=global_step)


def kernels_l2():
    """Half the sum of squares of every trainable convolution kernel (4-D); the biases are not decayed."""
    return tf.add_n([tf.nn.l2_loss(var) for var in tf.compat.v1.trainable_variables() if var.shape.rank == 4])
