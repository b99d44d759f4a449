"""The NumPy Caffe oracle (tests/caffe_reference.py) checked against Caffe's definitions written out as plain loops,
against the offsets the reference's prototxts hold, and on narrow nets of every released topology at odd sizes."""
import math
import re

import numpy as np
import pytest

from tests import caffe_reference as caffe

WIDTHS = (4, 8, 8, 16, 16)
FC_WIDTH = 24
CLASSES = {"semantic": 5, "geometric": 3}
VOC_MEAN_BGR = (104.00698793, 116.66876762, 122.67891434)


def random_blobs(net, widths=WIDTHS, fc_width=FC_WIDTH, classes=CLASSES, seed=0):
    """{Caffe layer name: [arrays in Caffe's layout]} for `net`, read off its name as net.py names its layers (not
    from caffe_reference's tables), He-scaled so that the scores stay finite."""
    rng = np.random.default_rng(seed)

    def conv(out, inp, kernel):
        weights = rng.normal(0, math.sqrt(2.0 / (inp * kernel * kernel)), (out, inp, kernel, kernel))
        return [weights.astype(np.float32), rng.normal(0, 0.1, out).astype(np.float32)]

    def deconv(channels, kernel):
        return [rng.normal(0, 1.0 / kernel, (channels, channels, kernel, kernel)).astype(np.float32)]

    blobs, inputs = {}, 3
    for block, (width, count) in enumerate(zip(widths, (2, 2, 3, 3, 3)), 1):
        for index in range(1, count + 1):
            blobs[f"conv{block}_{index}"], inputs = conv(width, inputs, 3), width
    blobs["fc6"], blobs["fc7"] = conv(fc_width, widths[4], 7), conv(fc_width, fc_width, 1)
    stride = int(re.search(r"fcn(\d+)s", net).group(1))
    outputs = {"_sem": classes["semantic"], "_geo": classes["geometric"]} if net.startswith("siftflow") else \
        {"": classes["semantic"]}
    for suffix, count in outputs.items():
        blobs["score_fr" + suffix] = conv(count, fc_width, 1)
        if stride == 32:
            blobs["upscore" + suffix] = deconv(count, 64)
            continue
        blobs["upscore2" + suffix], blobs["score_pool4" + suffix] = deconv(count, 4), conv(count, widths[3], 1)
        if stride == 16:
            blobs["upscore16" + suffix] = deconv(count, 32)
            continue
        blobs["upscore_pool4" + suffix], blobs["score_pool3" + suffix] = deconv(count, 4), conv(count, widths[2], 1)
        blobs["upscore8" + suffix] = deconv(count, 16)
    if net.endswith("atonce"):
        blobs["scale_pool4"] = [np.full(widths[3], 0.01, np.float32)]
        blobs["scale_pool3"] = [np.full(widths[2], 0.0001, np.float32)]
    return blobs


def random_image(height, width, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


# Each layer against its definition as loops.

def loop_convolution(image, weights, bias, pad, stride):
    channels, height, width = image.shape
    out_channels, _, kernel_h, kernel_w = weights.shape
    padded = np.zeros((channels, height + 2 * pad, width + 2 * pad))
    padded[:, pad:pad + height, pad:pad + width] = image
    out_h, out_w = (height + 2 * pad - kernel_h) // stride + 1, (width + 2 * pad - kernel_w) // stride + 1
    output = np.zeros((out_channels, out_h, out_w))
    for out in range(out_channels):
        for row in range(out_h):
            for column in range(out_w):
                window = padded[:, row * stride:row * stride + kernel_h, column * stride:column * stride + kernel_w]
                output[out, row, column] = np.sum(window * weights[out]) + bias[out]
    return output


@pytest.mark.parametrize("pad, stride, kernel", [(0, 1, 3), (1, 1, 3), (2, 2, 3), (1, 3, 2), (0, 2, 1), (3, 1, 7)])
def test_convolution_is_caffe_s_cross_correlation_with_zero_padding_and_floor_sizes(pad, stride, kernel):
    rng = np.random.default_rng(pad * 10 + stride)
    image = rng.normal(size=(3, 9, 8)).astype(np.float32)
    weights, bias = rng.normal(size=(4, 3, kernel, kernel)).astype(np.float32), rng.normal(size=4).astype(np.float32)
    output = caffe.convolution(image, weights, bias, pad, stride)
    assert output.dtype == np.float32
    np.testing.assert_allclose(output, loop_convolution(image, weights, bias, pad, stride), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("stride, kernel", [(2, 4), (8, 16), (3, 3), (2, 1), (1, 3)])
def test_deconvolution_scatters_each_input_pixel_s_kernel_at_stride(stride, kernel):
    rng = np.random.default_rng(stride * kernel)
    blob = rng.normal(size=(3, 4, 5)).astype(np.float32)
    weights = rng.normal(size=(3, 2, kernel, kernel)).astype(np.float32)  # (in, out, kh, kw)
    expected = np.zeros((2, stride * 3 + kernel, stride * 4 + kernel))
    for channel in range(3):
        for row in range(4):
            for column in range(5):
                expected[:, row * stride:row * stride + kernel, column * stride:column * stride + kernel] += \
                    blob[channel, row, column] * weights[channel]
    np.testing.assert_allclose(caffe.deconvolution(blob, weights, stride), expected, rtol=1e-4, atol=1e-4)


def loop_max_pool(blob, kernel, stride, pad):
    """pooling_layer.cpp's Reshape (float ceil, then the last window moved inside when padded) and MAX loop."""
    channels, height, width = blob.shape
    sizes = []
    for size in (height, width):
        pooled = math.ceil(float(size + 2 * pad - kernel) / stride) + 1
        if pad and (pooled - 1) * stride >= size + pad:
            pooled -= 1
        sizes.append(pooled)
    output = np.full([channels] + sizes, -np.finfo(np.float32).max)
    for row in range(sizes[0]):
        for column in range(sizes[1]):
            top, left = row * stride - pad, column * stride - pad
            bottom, right = min(top + kernel, height), min(left + kernel, width)
            window = blob[:, max(top, 0):bottom, max(left, 0):right]
            output[:, row, column] = window.reshape(channels, -1).max(axis=1)
    return output


@pytest.mark.parametrize("kernel, stride, pad", [(2, 2, 0), (3, 2, 0), (3, 2, 1), (2, 1, 0), (3, 3, 1), (2, 2, 1)])
def test_max_pooling_rounds_up_and_clips_the_last_window_as_caffe_does(kernel, stride, pad):
    rng = np.random.default_rng(kernel + stride + pad)
    for height, width in [(1, 1), (2, 3), (5, 4), (7, 9), (10, 11)]:
        if min(height, width) + 2 * pad < kernel:
            continue  # no window fits: Caffe's output would be empty
        blob = rng.normal(size=(2, height, width)).astype(np.float32)
        expected = loop_max_pool(blob, kernel, stride, pad)
        np.testing.assert_array_equal(caffe.max_pool(blob, kernel, stride, pad), expected)
        assert caffe.pooled_size(height, kernel, stride, pad) == expected.shape[1]


def test_the_2x2_pools_of_the_nets_round_odd_sizes_up():
    assert [caffe.pooled_size(size, 2, 2) for size in (1, 2, 3, 5, 37, 53, 299)] == [1, 1, 2, 3, 19, 27, 150]
    assert caffe.max_pool(np.arange(5, dtype=np.float32).reshape(1, 1, 5), 2, 2).tolist() == [[[1, 3, 4]]]
    assert caffe.pooled_size(5, 2, 2, pad=1) == 3  # ceil gives 4, but the 4th window would start in the padding


def test_crop_eltwise_scale_relu_and_the_input_preparation():
    blob = np.arange(2 * 6 * 7, dtype=np.float32).reshape(2, 6, 7)
    np.testing.assert_array_equal(caffe.crop(blob, (1, 3, 2), 2), blob[:, 2:5, 2:4])
    with pytest.raises(AssertionError):
        caffe.crop(blob, (1, 5, 2), 2)
    np.testing.assert_array_equal(caffe.scale(blob, np.array([2, -1], np.float32)), blob * [[[2]], [[-1]]])
    np.testing.assert_array_equal(caffe.eltwise_sum(blob, blob), 2 * blob)
    assert caffe.relu(np.array([-1.0, 0.0, 2.0])).tolist() == [0, 0, 2]
    image = random_image(3, 4)
    data = caffe.preprocess(image, VOC_MEAN_BGR)  # infer.py: BGR, minus the mean, CHW
    assert data.shape == (3, 3, 4) and data.dtype == np.float32
    for channel in range(3):
        expected = np.float32(image[:, :, 2 - channel]) - np.float32(VOC_MEAN_BGR[channel])
        np.testing.assert_allclose(data[channel], expected, atol=1e-5)


# The nets.

PROTOTXT_OFFSETS = {  # the crop_param offsets in the reference's val/test prototxts at 1305c73
    "voc-fcn32s": {"score": 19}, "voc-fcn16s": {"score_pool4c": 5, "score": 27},
    "voc-fcn8s": {"score_pool4c": 5, "score_pool3c": 9, "score": 31},
    "voc-fcn8s-atonce": {"score_pool4c": 5, "score_pool3c": 9, "score": 31},
    "pascalcontext-fcn32s": {"score": 19}, "pascalcontext-fcn16s": {"score_pool4c": 5, "score": 27},
    "pascalcontext-fcn8s": {"score_pool4c": 5, "score_pool3c": 9, "score": 31}, "nyud-fcn32s-color": {"score": 19},
    "siftflow-fcn32s": {"score_sem": 19, "score_geo": 19},
    "siftflow-fcn16s": {"score_pool4_semc": 5, "score_sem": 27, "score_pool4_geoc": 5, "score_geo": 27},
    "siftflow-fcn8s": {"score_pool4_semc": 5, "score_pool3_semc": 9, "score_sem": 31,
                       "score_pool4_geoc": 5, "score_pool3_geoc": 9, "score_geo": 31},
}


def test_coord_map_s_rules_give_the_prototxts_crop_offsets():
    assert {net: caffe.crop_offsets(net) for net in caffe.NETS} == PROTOTXT_OFFSETS


def test_the_offsets_follow_the_geometry_and_not_a_table():
    """With conv1_1's pad 100 changed to 99 every offset to the data moves by one pixel, as coord_map would say."""
    n = caffe.build("voc-fcn8s")
    conv1_1 = n.producer("conv1_1")
    conv1_1.params["pad"] = 99
    assert caffe.crop_offset(n, "upscore8", "data") == 31 - 1
    assert caffe.crop_offset(n, "score_pool4", "upscore2") == 5


OUTPUTS = [(net, "semantic") for net in caffe.NETS] + \
    [(net, "geometric") for net in caffe.NETS if net.startswith("siftflow")]


@pytest.mark.parametrize("net, output", OUTPUTS)
def test_every_net_scores_every_pixel_of_odd_sized_images(net, output):
    blobs = random_blobs(net)
    for height, width in [(37, 53), (101, 75)]:
        scores = caffe.forward(net, blobs, random_image(height, width), VOC_MEAN_BGR, output)
        assert scores.shape == (CLASSES[output], height, width) and scores.dtype == np.float32
        assert np.all(np.isfinite(scores)) and scores.std() > 0
    labels = caffe.labels(net, blobs, random_image(height, width), VOC_MEAN_BGR, output)
    np.testing.assert_array_equal(labels, scores.argmax(axis=0))


def test_a_sift_flow_output_needs_only_its_own_head_s_blobs():
    blobs = random_blobs("siftflow-fcn8s")
    semantic_only = {name: value for name, value in blobs.items() if not name.endswith(("_geo", "_geoc"))}
    image = random_image(37, 53)
    np.testing.assert_array_equal(caffe.forward("siftflow-fcn8s", semantic_only, image, VOC_MEAN_BGR),
                                  caffe.forward("siftflow-fcn8s", blobs, image, VOC_MEAN_BGR))


def test_at_once_is_fcn8s_with_its_skips_scaled_before_scoring():
    """Scales of one turn at-once into FCN-8s; its 0.01 and 0.0001 change the scores."""
    blobs = random_blobs("voc-fcn8s-atonce")
    image = random_image(37, 53)
    at_once = caffe.forward("voc-fcn8s-atonce", blobs, image, VOC_MEAN_BGR)
    unscaled = dict(blobs, scale_pool4=[np.ones(WIDTHS[3], np.float32)], scale_pool3=[np.ones(WIDTHS[2], np.float32)])
    np.testing.assert_array_equal(caffe.forward("voc-fcn8s-atonce", unscaled, image, VOC_MEAN_BGR),
                                  caffe.forward("voc-fcn8s", blobs, image, VOC_MEAN_BGR))
    assert not np.allclose(at_once, caffe.forward("voc-fcn8s", blobs, image, VOC_MEAN_BGR))


def test_fcn32s_is_the_cropped_upsampling_of_score_fr():
    """The whole 32s net against its layers composed by hand: the crop at 19 of the 64x64/32 deconvolution."""
    blobs = random_blobs("voc-fcn32s")
    image = random_image(37, 53)
    n = caffe.build("voc-fcn32s")
    tops = {"data": caffe.preprocess(image, VOC_MEAN_BGR)}
    for layer in n.layers[1:]:
        if layer.name == "upscore":
            break
        tops[layer.top] = caffe.run_layer(layer, [tops[bottom] for bottom in layer.bottoms], blobs.get(layer.name))
    upscore = caffe.deconvolution(tops["score_fr"], blobs["upscore"][0], 32)
    np.testing.assert_array_equal(caffe.forward("voc-fcn32s", blobs, image, VOC_MEAN_BGR),
                                  upscore[:, 19:19 + 37, 19:19 + 53])
