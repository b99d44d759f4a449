"""released_fcns.py: each released net in each encoding imports with the contract's variable names and layouts
(checked by value), SIFT Flow's two heads, the ImageNet VGG16 file, and one-line errors for files that do not fit."""
import numpy as np
import pytest

from fcn_tensorflow.data import matconvnet, released_fcns, synthetic_caffe
from fcn_tensorflow.data.caffemodel import CaffeFileError, Layer

WIDTHS = (4, 6, 8, 10, 12)  # all different, so a layer reading the wrong block's width shows
FC = 14
VOC_RGB_MEAN = (122.67891434, 116.66876762, 104.00698793)


def contract_shapes(head, classes):
    """{variable: shape} as the issue 17 contract lays them out, for WIDTHS and FC."""
    shapes, in_channels = {}, 3
    for block, convs in enumerate((2, 2, 3, 3, 3), start=1):
        for conv in range(1, convs + 1):
            shapes[f"inference/conv{block}_{conv}_w"] = (3, 3, in_channels, WIDTHS[block - 1])
            shapes[f"inference/conv{block}_{conv}_b"] = (WIDTHS[block - 1],)
            in_channels = WIDTHS[block - 1]
    shapes.update({"inference/W6": (7, 7, WIDTHS[4], FC), "inference/b6": (FC,), "inference/W7": (1, 1, FC, FC),
                   "inference/b7": (FC,), "inference/score_fr/kernel": (1, 1, FC, classes),
                   "inference/score_fr/bias": (classes,)})
    last, size = {"fcn32s": ("upscore32", 64), "fcn16s": ("upscore16", 32)}.get(head, ("upscore8", 16))
    shapes[f"inference/{last}/kernel"] = (size, size, classes, classes)
    if head != "fcn32s":
        shapes.update({"inference/upscore2/kernel": (4, 4, classes, classes),
                       "inference/score_pool4/kernel": (1, 1, WIDTHS[3], classes),
                       "inference/score_pool4/bias": (classes,)})
    if head.startswith("fcn8s"):
        shapes.update({"inference/upscore_pool4/kernel": (4, 4, classes, classes),
                       "inference/score_pool3/kernel": (1, 1, WIDTHS[2], classes),
                       "inference/score_pool3/bias": (classes,)})
    if head == "fcn8s_atonce":
        shapes.update({"inference/scale_pool4/scale": (WIDTHS[3],), "inference/scale_pool3/scale": (WIDTHS[2],)})
    return shapes


def write(tmp_path, net, encoding="layer", name=None, **changes):
    """A narrow file of `net` with random_blobs, some replaced (changes: {layer: [arrays]}, None drops the layer's
    blobs); returns (path, blobs)."""
    blobs = synthetic_caffe.random_blobs(net, WIDTHS, FC, seed=7)
    blobs.update(changes)
    blobs = {layer: arrays for layer, arrays in blobs.items() if arrays is not None}
    path = tmp_path / (name or released_fcns.KNOWN[net].file)
    synthetic_caffe.write_caffemodel(str(path), net, blobs, encoding)
    return str(path), blobs


def one_line_error(error_type, path, function=released_fcns.import_net, **kwargs):
    with pytest.raises(error_type) as error:
        function(path, **kwargs)
    message = str(error.value)
    assert "\n" not in message and message.startswith(path), message
    return message


@pytest.mark.parametrize("encoding", synthetic_caffe.ENCODINGS)
@pytest.mark.parametrize("net", list(released_fcns.KNOWN))
def test_every_released_net_imports_in_every_encoding(tmp_path, net, encoding):
    known = released_fcns.KNOWN[net]
    path, _ = write(tmp_path, net, encoding)
    imported = released_fcns.import_net(path)
    assert (imported.net, imported.head, imported.dataset, imported.num_classes) == \
           (net, known.head, known.dataset, known.num_classes)
    assert (imported.widths, imported.fc_width) == (WIDTHS, FC)
    assert imported.output == ("semantic" if known.dataset == "siftflow" else None)
    np.testing.assert_allclose(imported.mean_pixel, known.bgr_mean[::-1])
    shapes = {name: value.shape for name, value in imported.variables.items()}
    assert shapes == contract_shapes(known.head, known.num_classes)
    assert all(value.dtype == np.float32 and value.flags.c_contiguous for value in imported.variables.values())


def test_layouts_by_value(tmp_path):
    """Conv (out, in, kh, kw) -> (kh, kw, in, out), conv1_1's input BGR -> RGB, deconv (in, out, kh, kw) ->
    (kh, kw, out, in), fc6 and fc7 as kernels, at-once's scales: element by element."""
    path, blobs = write(tmp_path, "voc-fcn8s-atonce", "legacy_dims")
    variables = released_fcns.import_net(path).variables
    conv, conv1, fc6 = blobs["conv2_1"][0], blobs["conv1_1"][0], blobs["fc6"][0]
    deconv, score = blobs["upscore_pool4"][0], blobs["score_pool3"][0]
    for h, w in ((0, 0), (1, 2), (2, 1)):
        for c in range(3):
            assert variables["inference/conv1_1_w"][h, w, c, 3] == conv1[3, 2 - c, h, w]
        assert variables["inference/conv2_1_w"][h, w, 3, 5] == conv[5, 3, h, w]
        assert variables["inference/W6"][h + 4, w, 11, 13] == fc6[13, 11, h + 4, w]
        assert variables["inference/upscore_pool4/kernel"][h, w, 20, 7] == deconv[7, 20, h, w]
    assert variables["inference/score_pool3/kernel"][0, 0, 7, 20] == score[20, 7, 0, 0]
    assert variables["inference/W7"][0, 0, 3, 9] == blobs["fc7"][0][9, 3, 0, 0]
    np.testing.assert_array_equal(variables["inference/upscore8/kernel"], blobs["upscore8"][0].transpose(2, 3, 1, 0))
    np.testing.assert_array_equal(variables["inference/score_pool3/bias"], blobs["score_pool3"][1])
    np.testing.assert_array_equal(variables["inference/scale_pool4/scale"], np.full(10, 0.01, np.float32))
    np.testing.assert_array_equal(variables["inference/scale_pool3/scale"], np.full(8, 0.0001, np.float32))


def test_scale_layers_without_blobs_take_the_reference_constants(tmp_path):
    blobs = synthetic_caffe.random_blobs("voc-fcn8s-atonce", WIDTHS, FC, seed=1)
    layers = [layer._replace(blobs=[]) if layer.name.startswith("scale") else layer
              for layer in synthetic_caffe.training_layers("voc-fcn8s-atonce", blobs)]
    path = str(tmp_path / "atonce.caffemodel")
    synthetic_caffe.write_layers(path, layers, "v1")
    imported = released_fcns.import_net(path)
    assert imported.head == "fcn8s_atonce"
    np.testing.assert_array_equal(imported.variables["inference/scale_pool3/scale"], np.full(8, 1e-4, np.float32))


def test_siftflow_semantic_and_geometric_heads_share_the_trunk(tmp_path):
    path, blobs = write(tmp_path, "siftflow-fcn16s")
    semantic = released_fcns.import_net(path)
    geometric = released_fcns.import_net(path, output="geometric")
    assert (semantic.num_classes, geometric.num_classes) == (33, 3)
    assert (semantic.output, geometric.output, geometric.dataset, geometric.net) == \
           ("semantic", "geometric", "siftflow_geometric", "siftflow-fcn16s")
    for suffix, imported in (("_sem", semantic), ("_geo", geometric)):
        np.testing.assert_array_equal(imported.variables["inference/score_pool4/kernel"],
                                      blobs["score_pool4" + suffix][0].transpose(2, 3, 1, 0))
        np.testing.assert_array_equal(imported.variables["inference/upscore16/kernel"],
                                      blobs["upscore16" + suffix][0].transpose(2, 3, 1, 0))
        np.testing.assert_array_equal(imported.variables["inference/W6"], semantic.variables["inference/W6"])
    assert sorted(geometric.variables) == sorted(contract_shapes("fcn16s", 3))


def test_other_class_counts_and_a_given_dataset(tmp_path):
    path = str(tmp_path / "mine.caffemodel")
    blobs = synthetic_caffe.random_blobs("voc-fcn8s-atonce", WIDTHS, FC, num_classes=5)
    synthetic_caffe.write_caffemodel(path, "voc-fcn8s-atonce", blobs)
    imported = released_fcns.import_net(path)
    assert (imported.net, imported.dataset, imported.num_classes) == ("fcn8s-atonce", None, 5)
    np.testing.assert_allclose(imported.mean_pixel, VOC_RGB_MEAN)
    path, _ = write(tmp_path, "voc-fcn16s")
    given = released_fcns.import_net(path, dataset="pascal_context")
    assert (given.net, given.dataset, given.num_classes) == ("pascalcontext-fcn16s", "pascal_context", 21)
    given = released_fcns.import_net(path, dataset="nyud")
    assert (given.net, given.dataset) == ("fcn16s", "nyud")
    np.testing.assert_allclose(given.mean_pixel, (92.318, 97.203, 116.190))


@pytest.mark.parametrize("layer, arrays, words", [
    ("score_pool4", [np.zeros((21, 8, 1, 1)), np.zeros(21)], "layer score_pool4 has weights of shape (21, 8, 1, 1)"),
    ("upscore8", [np.zeros((21, 21, 8, 8))], ("layer upscore8 has weights of shape (21, 21, 8, 8), the released "
                                             "nets' topology needs (21, 21, 16, 16)")),
    ("fc6", [np.zeros((FC, 12, 5, 5)), np.zeros(FC)], "layer fc6 has weights of shape (14, 12, 5, 5)"),
    ("conv3_1", [np.zeros((8, 5, 3, 3)), np.zeros(8)], "layer conv3_1 has weights of shape (8, 5, 3, 3)"),
    ("upscore2", [np.zeros((21, 21, 4, 4)), np.zeros(21)], "layer upscore2 holds 2 blobs, the released nets' 1"),
    ("score_fr", [np.zeros((21, FC, 1, 1)), np.zeros(20)], "layer score_fr has 20 biases for 21 outputs"),
    ("scale_pool4", [np.zeros(8)], "layer scale_pool4 holds blobs of shapes [(8,)]"),
])
def test_blobs_that_do_not_fit_the_topology_name_the_layer(tmp_path, layer, arrays, words):
    path, _ = write(tmp_path, "voc-fcn8s-atonce", **{layer: [np.asarray(array, np.float32) for array in arrays]})
    assert words in one_line_error(ValueError, path)


def test_a_vgg16_block_has_one_width(tmp_path):
    path, _ = write(tmp_path, "voc-fcn32s", conv1_2=[np.zeros((5, 4, 3, 3), np.float32), np.zeros(5, np.float32)],
                    conv2_1=[np.zeros((6, 5, 3, 3), np.float32), np.zeros(6, np.float32)])
    assert "the layers conv1_* have different widths [4, 5]" in one_line_error(ValueError, path)


def test_a_head_without_one_of_its_layers_is_not_a_released_fcn(tmp_path):
    path, _ = write(tmp_path, "voc-fcn8s", score_pool3=None)
    assert "is not one of the paper's released FCNs: no layer score_pool3 (it has conv1_1, conv1_2, conv2_1, " \
           "conv2_2, ...)" in one_line_error(ValueError, path)
    blobs = synthetic_caffe.random_blobs("voc-fcn32s", WIDTHS, FC)
    path = str(tmp_path / "headless.caffemodel")
    synthetic_caffe.write_layers(path, [layer for layer in synthetic_caffe.training_layers("voc-fcn32s", blobs)
                                        if layer.name != "upscore"])
    assert "FCNs: no layer upscore8, upscore16, upscore (it has" in one_line_error(ValueError, path)


def mtcnn_layers():
    """The layers of MTCNN's det1.caffemodel (a face detector someone might pass by mistake), narrow."""
    rng = np.random.default_rng(0)
    layers, in_channels = [Layer("data", "Input", [], ["data"], [])], 3
    for index, out in ((1, 10), (2, 16), (3, 32)):
        layers += [Layer(f"conv{index}", "Convolution", ["data"], [f"conv{index}"],
                         [rng.standard_normal((out, in_channels, 3, 3)), rng.standard_normal(out)]),
                   Layer(f"PReLU{index}", "PReLU", [f"conv{index}"], [f"conv{index}"], [rng.standard_normal(out)])]
        in_channels = out
    return layers + [Layer(f"conv4-{index}", "Convolution", ["conv3"], [f"conv4-{index}"],
                           [rng.standard_normal((out, 32, 1, 1)), rng.standard_normal(out)])
                     for index, out in ((1, 2), (2, 4))]


def test_the_mtcnn_file_is_not_a_released_fcn(tmp_path):
    path = str(tmp_path / "det1.caffemodel")
    synthetic_caffe.write_layers(path, mtcnn_layers())
    message = one_line_error(ValueError, path)
    assert message == (f"{path} is not one of the paper's released FCNs: no layer conv1_1, score_fr and 14 more "
                       "(it has conv1, PReLU1, conv2, PReLU2, ...)")
    assert "is not the ImageNet VGG16 caffemodel" in one_line_error(ValueError, path, released_fcns.vgg16_weights)


def test_the_imagenet_vgg16_file_is_a_start_not_an_fcn(tmp_path):
    path = str(tmp_path / released_fcns.VGG16_CAFFE_FILE)
    synthetic_caffe.write_vgg16_caffemodel(path, WIDTHS, FC, num_imagenet_classes=10)
    assert one_line_error(ValueError, path) == (f"{path} is not one of the paper's released FCNs: no layer score_fr "
                                                "(it has conv1_1, conv1_2, conv2_1, conv2_2, ...)")


def test_vgg16_weights_reads_the_v1_legacy_file(tmp_path):
    path = str(tmp_path / released_fcns.VGG16_CAFFE_FILE)
    blobs = synthetic_caffe.write_vgg16_caffemodel(path, WIDTHS, FC, seed=2, num_imagenet_classes=10)
    weights, mean_pixel = released_fcns.vgg16_weights(path)
    assert sorted(weights) == sorted(released_fcns.VGG16_CONVS + ("fc6", "fc7"))
    np.testing.assert_allclose(mean_pixel, matconvnet.IMAGENET_MEAN_PIXEL)
    assert weights["conv3_2"][0].shape == (3, 3, 8, 8) and weights["conv5_3"][1].shape == (12,)
    np.testing.assert_array_equal(weights["conv1_1"][0], blobs["conv1_1"][0].transpose(2, 3, 1, 0)[:, :, ::-1])
    np.testing.assert_array_equal(weights["conv4_1"][1], blobs["conv4_1"][1])
    inner_product = blobs["fc6"][0]  # (F, C * 7 * 7), in the order C, H, W
    assert inner_product.shape == (FC, 12 * 49) and weights["fc6"][0].shape == (7, 7, 12, FC)
    for h, w, c, f in ((0, 0, 0, 0), (3, 5, 11, 13), (6, 2, 4, 1)):
        assert weights["fc6"][0][h, w, c, f] == inner_product[f, c * 49 + h * 7 + w]
    np.testing.assert_array_equal(weights["fc7"][0][0, 0], blobs["fc7"][0].T)


def test_outputs_that_the_file_does_not_have(tmp_path):
    path, _ = write(tmp_path, "voc-fcn32s")
    assert "is only in SIFT Flow nets" in one_line_error(ValueError, path, output="geometric")
    with pytest.raises(ValueError, match="semantic or geometric, not depth"):
        released_fcns.import_net(path, output="depth")


def test_a_file_that_is_no_caffemodel_is_a_caffe_file_error(tmp_path):
    path = tmp_path / "image.caffemodel"
    path.write_bytes(b"\xff\xd8\xff\xe0" + bytes(64))
    assert "it looks like a JPEG image" in one_line_error(CaffeFileError, str(path))


def test_the_known_nets_and_their_files():
    assert released_fcns.KNOWN["voc-fcn8s"].file == "fcn8s-heavy-pascal.caffemodel"
    assert released_fcns.KNOWN["siftflow-fcn16s"].file == "siftflow-fcn16s-heavy.caffemodel"
    assert released_fcns.URL_ROOT + released_fcns.KNOWN["nyud-fcn32s-color"].file == \
           "http://dl.caffe.berkeleyvision.org/nyud-fcn32s-color-heavy.caffemodel"
    assert len(released_fcns.KNOWN) == 11
    assert released_fcns.KNOWN["voc-fcn8s"].published == "65.5 mean IU on seg11valid"
    assert released_fcns.KNOWN["pascalcontext-fcn8s"][2:5] == (60, "pascal_context", (104.007, 116.669, 122.679))
    assert released_fcns.KNOWN["nyud-fcn32s-color"].bgr_mean == (116.190, 97.203, 92.318)
