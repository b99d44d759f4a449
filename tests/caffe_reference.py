"""Caffe's forward pass of the paper's released FCNs in plain NumPy: the oracle the TensorFlow port is tested against.

It follows Caffe's own arithmetic (BVLC/caffe src/caffe/layers/*.cpp, util/im2col.cpp), not TensorFlow's, on (C, H, W)
float32 blobs (batch 1), and builds the nets as fcn.berkeleyvision.org's net.py at 1305c73 does, deriving every crop
offset with the rules of python/caffe/coord_map.py. It shares no code with fcn_tensorflow, so a mistake made there
is not made here too.

    forward(net, blobs, image_rgb_uint8, mean_bgr, output="semantic") -> scores (C, H, W) float32
    labels(...) -> the argmax over classes (H, W), as infer.py takes it

`blobs` maps a Caffe layer name to what Caffe stores for it: a convolution's weights (out, in, kh, kw) and bias
(out,), a deconvolution's weights (in, out, kh, kw), a scale's (C,). The widths follow the blobs' shapes.
"""
import numpy as np

FLT_MAX = np.finfo(np.float32).max


# Layers: each is its Caffe layer's Forward_cpu for one image.

def im2col(image, kernel_h, kernel_w, pad, stride):
    """Caffe's im2col: one row per (channel, kernel row, kernel column), one column per output pixel, zero
    padding; the output size rounds down. Returns (columns, (output height, output width))."""
    padded = np.pad(image, ((0, 0), (pad, pad), (pad, pad)))
    windows = np.lib.stride_tricks.sliding_window_view(padded, (kernel_h, kernel_w), axis=(1, 2))
    windows = windows[:, ::stride, ::stride]  # (C, out_h, out_w, kh, kw)
    out_h, out_w = windows.shape[1:3]
    return windows.transpose(0, 3, 4, 1, 2).reshape(-1, out_h * out_w), (out_h, out_w)


def convolution(image, weights, bias, pad=0, stride=1):
    """Cross-correlation as conv_layer.cpp computes it: weights (out, in, kh, kw) as a matrix times im2col."""
    out_channels, in_channels, kernel_h, kernel_w = weights.shape
    assert in_channels == image.shape[0], (weights.shape, image.shape)
    columns, (out_h, out_w) = im2col(image, kernel_h, kernel_w, pad, stride)
    scores = weights.reshape(out_channels, -1) @ columns + bias.reshape(out_channels, 1)
    return scores.reshape(out_channels, out_h, out_w)


def relu(blob):
    return np.maximum(blob, 0)


def pooled_size(size, kernel, stride, pad=0):
    """pooling_layer.cpp's output size: ceil((size + 2 pad - kernel) / stride) + 1, less one when padding would
    make the last window start outside the image and its padding."""
    pooled = -(-(size + 2 * pad - kernel) // stride) + 1
    if pad and (pooled - 1) * stride >= size + pad:
        pooled -= 1
    return pooled


def max_pool(blob, kernel=2, stride=2, pad=0):
    """MAX pooling with Caffe's ceil rounding: each window clipped to the image (as if padded with -FLT_MAX)."""
    channels, height, width = blob.shape
    out_h, out_w = pooled_size(height, kernel, stride, pad), pooled_size(width, kernel, stride, pad)
    span_h, span_w = (out_h - 1) * stride + kernel, (out_w - 1) * stride + kernel
    covered_h, covered_w = min(height, span_h - pad), min(width, span_w - pad)
    padded = np.full((channels, span_h, span_w), -FLT_MAX, blob.dtype)
    padded[:, pad:pad + covered_h, pad:pad + covered_w] = blob[:, :covered_h, :covered_w]
    windows = np.lib.stride_tricks.sliding_window_view(padded, (kernel, kernel), axis=(1, 2))
    return windows[:, ::stride, ::stride].max(axis=(3, 4))


def deconvolution(blob, weights, stride):
    """deconv_layer.cpp (no pad, no bias): columns = W^T x with W (in, out, kh, kw) seen as (in, out kh kw), then
    col2im adds each kernel position's plane at stride into an output of stride (H - 1) + k, in Caffe's order."""
    in_channels, out_channels, kernel_h, kernel_w = weights.shape
    assert in_channels == blob.shape[0], (weights.shape, blob.shape)
    _, height, width = blob.shape
    columns = weights.reshape(in_channels, -1).T @ blob.reshape(in_channels, -1)
    columns = columns.reshape(out_channels, kernel_h, kernel_w, height, width)
    out_h, out_w = stride * (height - 1) + kernel_h, stride * (width - 1) + kernel_w
    output = np.zeros((out_channels, out_h, out_w), np.float32)
    for row in range(kernel_h):
        for column in range(kernel_w):
            output[:, row:row + stride * (height - 1) + 1:stride,
                   column:column + stride * (width - 1) + 1:stride] += columns[:, row, column]
    return output


def crop(blob, reference_shape, offset):
    """crop_layer.cpp, axis 2 with one offset: height and width from `offset`, the reference blob's size."""
    height, width = reference_shape[-2:]
    assert blob.shape[1] - offset >= height and blob.shape[2] - offset >= width, (blob.shape, reference_shape, offset)
    return blob[:, offset:offset + height, offset:offset + width]


def eltwise_sum(first, second):
    return first + second


def scale(blob, factors):
    """scale_layer.cpp with one bottom: one factor per channel, no bias."""
    return blob * factors.reshape(-1, 1, 1)


# The nets, built as net.py builds them.

class Layer:
    def __init__(self, name, kind, bottoms, top, params):
        self.name, self.kind, self.bottoms, self.top, self.params = name, kind, tuple(bottoms), top, params


class NetSpec:
    """caffe.NetSpec in miniature: layers in order, each writing the top named after it, or its bottom in place."""

    def __init__(self):
        self.layers = [Layer("data", "Input", (), "data", {})]

    def add(self, kind, name, bottoms, top=None, **params):
        self.layers.append(Layer(name, kind, bottoms, top or name, params))
        return name

    def producer(self, top):
        """The layer that creates `top` (in-place layers come after it and map coordinates as the identity)."""
        return next(layer for layer in self.layers if layer.top == top)

    def conv_relu(self, name, bottom, ks=3, pad=1):
        self.add("Convolution", name, [bottom], kernel_size=ks, stride=1, pad=pad)
        self.add("ReLU", name.replace("conv", "relu").replace("fc", "relu"), [name], top=name)
        return name

    def max_pool(self, name, bottom):
        return self.add("Pooling", name, [bottom], kernel_size=2, stride=2, pad=0)

    def crop(self, name, bottom, reference):
        """coord_map.crop: the offset that aligns bottom's coordinates with reference's."""
        return self.add("Crop", name, [bottom, reference], offset=crop_offset(self, bottom, reference))


PASS_THROUGH = ("ReLU", "Dropout", "Eltwise", "Scale")


def coord_map(layer):
    """coord_map.py's (scale, shift) of a layer: output coordinate i * scale <- input coordinate i, shifted."""
    params = layer.params
    if layer.kind in ("Convolution", "Pooling"):
        stride, kernel, pad = params["stride"], params["kernel_size"], params.get("pad", 0)
        return 1 / stride, (pad - (kernel - 1) / 2) / stride
    if layer.kind == "Deconvolution":
        return params["stride"], (params["kernel_size"] - 1) / 2 - params.get("pad", 0)
    if layer.kind == "Crop":
        return 1, -params["offset"]
    assert layer.kind in PASS_THROUGH, layer.kind
    return 1, 0


def compose(base, further):
    return base[0] * further[0], base[0] * further[1] + base[1]


def walk_back(net, top):
    """{every ancestor top: the coordinate map from it to `top`}; a crop is followed through its first bottom only,
    the data layer ends the walk (coord_map_from_to's first walk)."""
    maps, frontier = {top: (1, 0)}, [top]
    while frontier:
        current = frontier.pop(0)
        layer = net.producer(current)
        for bottom in layer.bottoms[:1] if layer.kind == "Crop" else layer.bottoms:
            maps.setdefault(bottom, compose(maps[current], coord_map(layer)))
            frontier.append(bottom)
    return maps


def crop_offset(net, bottom, reference):
    """coord_map_from_to(bottom, reference) and crop()'s checks: the map must be a pure, integral, non-positive
    shift; the offset is minus that shift."""
    from_maps, to_maps = walk_back(net, bottom), walk_back(net, reference)
    common = next(top for top in to_maps if top in from_maps)
    (from_scale, from_shift), (to_scale, to_shift) = from_maps[common], to_maps[common]
    scale_ratio, shift = compose((to_scale, to_shift), (1 / from_scale, -from_shift / from_scale))
    assert scale_ratio == 1 and shift <= 0 and shift == round(shift), (bottom, reference, scale_ratio, shift)
    return int(-shift)


VGG16_BLOCKS = (("conv1_1", "conv1_2"), ("conv2_1", "conv2_2"), ("conv3_1", "conv3_2", "conv3_3"),
                ("conv4_1", "conv4_2", "conv4_3"), ("conv5_1", "conv5_2", "conv5_3"))


def base_net(n):
    """Every net.py's base net and fully conv layers: conv1_1 pad 100, other 3x3 convs pad 1, 2x2/2 pools, fc6 7x7
    pad 0, fc7 1x1, ReLU after each, dropout after fc6 and fc7."""
    bottom = "data"
    for block, convs in enumerate(VGG16_BLOCKS, 1):
        for conv in convs:
            bottom = n.conv_relu(conv, bottom, pad=100 if conv == "conv1_1" else 1)
        bottom = n.max_pool(f"pool{block}", bottom)
    n.conv_relu("fc6", bottom, ks=7, pad=0)
    n.add("Dropout", "drop6", ["fc6"], top="fc6")
    n.conv_relu("fc7", "fc6", ks=1, pad=0)
    n.add("Dropout", "drop7", ["fc7"], top="fc7")


def score_layer(n, name, bottom):
    return n.add("Convolution", name, [bottom], kernel_size=1, stride=1, pad=0)


def upsample(n, name, bottom, factor, kernel):
    return n.add("Deconvolution", name, [bottom], kernel_size=kernel, stride=factor)


def fuse(n, coarse, pool, suffix, scaled):
    """score_<pool> (of the pool scaled first in at-once), cropped to the upsampled coarse scores and added."""
    skip = n.add("Scale", "scale_" + pool, [pool]) if scaled else pool
    score = score_layer(n, f"score_{pool}{suffix}", skip)
    cropped = n.crop(score + "c", score, coarse)
    return n.add("Eltwise", f"fuse_{pool}{suffix}", [coarse, cropped])


def head(n, stride, suffix="", at_once=False):
    """The layers after fc7 for one output (suffix _sem or _geo in SIFT Flow's nets), ending in `score<suffix>`."""
    score_fr = score_layer(n, "score_fr" + suffix, "fc7")
    if stride == 32:
        upscore = upsample(n, "upscore" + suffix, score_fr, 32, 64)
        return n.crop("score" + suffix, upscore, "data")
    upscore2 = upsample(n, "upscore2" + suffix, score_fr, 2, 4)
    fuse_pool4 = fuse(n, upscore2, "pool4", suffix, at_once)
    if stride == 16:
        upscore16 = upsample(n, "upscore16" + suffix, fuse_pool4, 16, 32)
        return n.crop("score" + suffix, upscore16, "data")
    upscore_pool4 = upsample(n, "upscore_pool4" + suffix, fuse_pool4, 2, 4)
    fuse_pool3 = fuse(n, upscore_pool4, "pool3", suffix, at_once)
    upscore8 = upsample(n, "upscore8" + suffix, fuse_pool3, 8, 16)
    return n.crop("score" + suffix, upscore8, "data")


SINGLE = {"semantic": ""}
SIFT_FLOW = {"semantic": "_sem", "geometric": "_geo"}
NETS = {  # name: (output stride, {output: the suffix of its layers}, skips scaled as in at-once)
    "voc-fcn32s": (32, SINGLE, False), "voc-fcn16s": (16, SINGLE, False), "voc-fcn8s": (8, SINGLE, False),
    "voc-fcn8s-atonce": (8, SINGLE, True),
    "pascalcontext-fcn32s": (32, SINGLE, False), "pascalcontext-fcn16s": (16, SINGLE, False),
    "pascalcontext-fcn8s": (8, SINGLE, False), "nyud-fcn32s-color": (32, SINGLE, False),
    "siftflow-fcn32s": (32, SIFT_FLOW, False), "siftflow-fcn16s": (16, SIFT_FLOW, False),
    "siftflow-fcn8s": (8, SIFT_FLOW, False),
}


def build(net):
    """The NetSpec of a released net: the base net, then one head per output, in net.py's order."""
    stride, outputs, at_once = NETS[net]
    n = NetSpec()
    base_net(n)
    for suffix in outputs.values():
        head(n, stride, suffix, at_once)
    return n


def crop_offsets(net):
    """{crop layer name: offset} of a released net, as its prototxts hold them."""
    return {layer.name: layer.params["offset"] for layer in build(net).layers if layer.kind == "Crop"}


# The forward pass.

def preprocess(image_rgb_uint8, mean_bgr):
    """infer.py's input: float32, RGB -> BGR, minus the mean pixel, HWC -> CHW."""
    image = np.array(image_rgb_uint8, dtype=np.float32)[:, :, ::-1]
    image -= np.array(mean_bgr)
    return np.ascontiguousarray(image.transpose(2, 0, 1))


def run_layer(layer, bottoms, blobs):
    params = layer.params
    if layer.kind == "Convolution":
        bias = blobs[1].reshape(-1)
        weights = blobs[0].reshape(len(bias), -1, params["kernel_size"], params["kernel_size"])
        return convolution(bottoms[0], weights, bias, params["pad"], params["stride"])
    if layer.kind == "Deconvolution":
        assert blobs[0].shape[2:] == (params["kernel_size"],) * 2, (layer.name, blobs[0].shape)
        return deconvolution(bottoms[0], blobs[0], params["stride"])
    if layer.kind == "Pooling":
        return max_pool(bottoms[0], params["kernel_size"], params["stride"], params["pad"])
    if layer.kind == "Crop":
        return crop(bottoms[0], bottoms[1].shape, params["offset"])
    if layer.kind == "Scale":
        return scale(bottoms[0], blobs[0])
    if layer.kind == "Eltwise":
        return eltwise_sum(*bottoms)
    if layer.kind == "ReLU":
        return relu(bottoms[0])
    assert layer.kind == "Dropout", layer.kind  # identity at test time
    return bottoms[0]


def needed_layers(n, top):
    """The layers `top` depends on, in order (the other SIFT Flow head is not run)."""
    needed, layers = {top}, []
    for layer in reversed(n.layers[1:]):
        if layer.top in needed:
            needed.update(layer.bottoms)
            layers.append(layer)
    return layers[::-1]


def forward(net, blobs, image_rgb_uint8, mean_bgr, output="semantic"):
    """Caffe's Net::Forward of a released net on one image: the scores (C, H, W) float32 of `output` (SIFT Flow:
    "semantic" or "geometric"), at the image's size."""
    n = build(net)
    top = "score" + NETS[net][1][output]
    tops = {"data": preprocess(image_rgb_uint8, mean_bgr)}
    for layer in needed_layers(n, top):
        as_float32 = [np.asarray(blob, np.float32) for blob in blobs.get(layer.name, ())]
        tops[layer.top] = run_layer(layer, [tops[bottom] for bottom in layer.bottoms], as_float32)
    return tops[top].astype(np.float32)


def labels(net, blobs, image_rgb_uint8, mean_bgr, output="semantic"):
    """infer.py's prediction: the argmax over classes of forward's scores, (H, W)."""
    return forward(net, blobs, image_rgb_uint8, mean_bgr, output).argmax(axis=0)
