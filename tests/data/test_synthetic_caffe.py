"""synthetic_caffe.py: the files parse with protobuf as caffe.proto's NetParameter and look as Caffe saves a training
net (data layer, in-place ReLU/Dropout, InsertSplits' Split layers, crops, losses), in each encoding; the random
weights have the shapes and properties the tests rely on."""
import numpy as np
import pytest

from fcn_tensorflow.data import released_fcns, synthetic_caffe
from fcn_tensorflow.data.caffemodel import Layer
from tests.helpers import NARROW_FC, NARROW_WIDTHS


def parsed(tmp_path, net, encoding="layer", **kwargs):
    """(NetParameter as protobuf parses the written file, the blobs written)."""
    blobs = synthetic_caffe.random_blobs(net, NARROW_WIDTHS, NARROW_FC, **kwargs)
    path = tmp_path / "net.caffemodel"
    synthetic_caffe.write_caffemodel(str(path), net, blobs, encoding)
    return synthetic_caffe.message_classes()["NetParameter"].FromString(path.read_bytes()), blobs


def by_name(layers):
    return {layer.name: layer for layer in layers}


def test_a_training_net_as_caffe_saves_it(tmp_path):
    net, blobs = parsed(tmp_path, "voc-fcn8s")
    assert net.name == "voc-fcn8s" and not net.layers
    layers = by_name(net.layer)
    assert (net.layer[0].name, net.layer[0].type, list(net.layer[0].top)) == ("data", "Python", ["data", "label"])
    assert (net.layer[-1].name, net.layer[-1].type, list(net.layer[-1].bottom)) == \
           ("loss", "SoftmaxWithLoss", ["score", "label"])
    assert {layer.name for layer in net.layer if layer.type == "Split"} == {
        "data_data_0_split", "pool3_pool3_0_split", "pool4_pool4_0_split", "upscore2_upscore2_0_split",
        "upscore_pool4_upscore_pool4_0_split"}
    assert list(layers["conv1_1"].bottom) == ["data_data_0_split_0"]
    assert list(layers["score"].bottom) == ["upscore8", "data_data_0_split_1"]
    assert list(layers["conv4_1"].bottom) == ["pool3_pool3_0_split_0"]
    assert list(layers["score_pool3"].bottom) == ["pool3_pool3_0_split_1"]
    assert list(layers["fuse_pool4"].bottom) == ["upscore2_upscore2_0_split_1", "score_pool4c"]
    assert (layers["score_pool4c"].type, layers["fuse_pool3"].type) == ("Crop", "Eltwise")
    for name in ("relu1_1", "relu5_3", "drop6", "relu7", "drop7"):
        assert list(layers[name].bottom) == list(layers[name].top)
    made = set()
    for layer in net.layer:
        assert set(layer.bottom) <= made, layer.name
        made.update(layer.top)
    with_blobs = [layer.name for layer in net.layer if layer.blobs]
    assert with_blobs == list(blobs)
    assert list(layers["upscore8"].blobs[0].shape.dim) == [21, 21, 16, 16]
    np.testing.assert_array_equal(np.array(layers["fc6"].blobs[0].data).reshape(NARROW_FC, 16, 7, 7),
                                  blobs["fc6"][0])


def test_siftflow_has_two_heads_on_one_trunk(tmp_path):
    net, blobs = parsed(tmp_path, "siftflow-fcn8s")
    layers = by_name(net.layer)
    assert list(net.layer[0].top) == ["data", "sem", "geo"]
    assert list(layers["data_data_0_split"].top) == [f"data_data_0_split_{index}" for index in range(3)]
    assert list(layers["fc7_drop7_0_split"].top) == ["fc7_drop7_0_split_0", "fc7_drop7_0_split_1"]
    assert list(layers["score_fr_geo"].bottom) == ["fc7_drop7_0_split_1"]
    assert list(layers["score_pool4_semc"].bottom) == ["score_pool4_sem", "upscore2_sem_upscore2_sem_0_split_0"]
    assert list(layers["loss_geo"].bottom) == ["score_geo", "geo"]
    assert blobs["score_fr_sem"][0].shape == (33, NARROW_FC, 1, 1)
    assert blobs["upscore8_geo"][0].shape == (3, 3, 16, 16)


def test_v1_files_hold_enum_types_and_legacy_dims(tmp_path):
    net, _ = parsed(tmp_path, "voc-fcn8s-atonce", "v1")
    assert not net.layer
    layers = by_name(net.layers)
    enum = synthetic_caffe.V1_ENUM
    assert layers["data"].type == enum["DATA"] and layers["conv1_1"].type == enum["CONVOLUTION"] == 4
    assert layers["upscore8"].type == enum["DECONVOLUTION"] == 39
    assert layers["scale_pool4"].type == enum["NONE"] and layers["fuse_pool4"].type == enum["ELTWISE"]
    assert layers["loss"].type == enum["SOFTMAX_LOSS"] and layers["pool4_pool4_0_split"].type == enum["SPLIT"]
    assert not any("Crop" in name or name.endswith("c") for name in layers if name.startswith("score_pool"))
    bias = layers["conv2_1"].blobs[1]
    assert (bias.num, bias.channels, bias.height, bias.width) == (1, 1, 1, 8) and not bias.HasField("shape")
    kernel = layers["upscore2"].blobs[0]
    assert (kernel.num, kernel.channels, kernel.height, kernel.width) == (21, 21, 4, 4)
    np.testing.assert_array_equal(layers["scale_pool3"].blobs[0].data, np.full(8, 1e-4, np.float32))


def test_legacy_dims_in_layer_files(tmp_path):
    net, _ = parsed(tmp_path, "voc-fcn32s", "legacy_dims")
    blob = by_name(net.layer)["fc6"].blobs[1]
    assert (blob.num, blob.channels, blob.height, blob.width) == (1, 1, 1, NARROW_FC)


def test_the_imagenet_vgg16_file_layout(tmp_path):
    path = tmp_path / released_fcns.VGG16_CAFFE_FILE
    blobs = synthetic_caffe.write_vgg16_caffemodel(str(path), NARROW_WIDTHS, NARROW_FC, num_imagenet_classes=10)
    net = synthetic_caffe.message_classes()["NetParameter"].FromString(path.read_bytes())
    assert (list(net.input), list(net.input_dim), len(net.layer)) == (["data"], [10, 3, 224, 224], 0)
    layers = by_name(net.layers)
    assert [layer.name for layer in net.layers][:3] == ["conv1_1", "relu1_1", "conv1_2"]
    assert [layer.name for layer in net.layers][-2:] == ["fc8", "prob"]
    fc6 = layers["fc6"].blobs[0]
    assert layers["fc6"].type == synthetic_caffe.V1_ENUM["INNER_PRODUCT"]
    assert (fc6.num, fc6.channels, fc6.height, fc6.width) == (1, 1, NARROW_FC, 16 * 49)
    assert blobs["fc7"][0].shape == (NARROW_FC, NARROW_FC) and blobs["fc8"][0].shape == (10, NARROW_FC)
    np.testing.assert_array_equal(np.array(fc6.data, np.float32), blobs["fc6"][0].reshape(-1))


def test_fields_are_packed_where_caffe_proto_says(tmp_path):
    classes, unpacked = synthetic_caffe.message_classes(), synthetic_caffe.message_classes(packed=False)
    values = np.float32([1, 2, 3])
    assert classes["BlobProto"](data=values).SerializeToString() == b"\x2a\x0c" + values.tobytes()
    assert classes["BlobShape"](dim=[2, 300]).SerializeToString() == b"\x0a\x03\x02\xac\x02"
    assert unpacked["BlobProto"](data=values).SerializeToString() == b"".join(
        b"\x2d" + value.tobytes() for value in values)
    path = tmp_path / "one.caffemodel"
    synthetic_caffe.write_layers(str(path), [Layer("a", "Scale", [], [], [values.reshape(1, 3)])])
    blob = b"\x2a\x0c" + values.tobytes() + b"\x3a\x04\x0a\x02\x01\x03"  # data (5), then shape (7)
    assert path.read_bytes() == b"\xa2\x06\x20" + b"\x0a\x01a\x12\x05Scale" + b"\x3a\x14" + blob
    assert synthetic_caffe.encode_varint(300) == b"\xac\x02"


def test_insert_splits_as_caffe_does():
    layers = [Layer("in", "Input", [], ["x"], []), Layer("a", "ReLU", ["x"], ["x"], []),
              Layer("b", "Convolution", ["x"], ["y"], []), Layer("c", "Convolution", ["x"], ["z"], []),
              Layer("d", "Eltwise", ["y", "x", "z"], ["w"], [])]
    split = synthetic_caffe.insert_splits(layers)
    assert [(layer.name, layer.bottoms, layer.tops) for layer in split] == [
        ("in", [], ["x"]), ("a", ["x"], ["x"]), ("x_a_0_split", ["x"], ["x_a_0_split_0", "x_a_0_split_1",
                                                                         "x_a_0_split_2"]),
        ("b", ["x_a_0_split_0"], ["y"]), ("c", ["x_a_0_split_1"], ["z"]), ("d", ["y", "x_a_0_split_2", "z"], ["w"])]


def test_random_blobs_shapes_scales_and_seeds():
    blobs = synthetic_caffe.random_blobs("voc-fcn8s-atonce", NARROW_WIDTHS, NARROW_FC, num_classes=5, seed=1)
    assert sorted(blobs) == sorted(released_fcns.VGG16_CONVS + ("fc6", "fc7")
                                   + released_fcns.HEAD_LAYERS["fcn8s_atonce"])
    assert [blob.shape for blob in blobs["score_pool4"]] == [(5, 16, 1, 1), (5,)]
    assert [blob.shape for blob in blobs["fc6"]] == [(NARROW_FC, 16, 7, 7), (NARROW_FC,)]
    upscore = blobs["upscore_pool4"][0]
    assert upscore.shape == (5, 5, 4, 4) and np.all(upscore[0, 1] != 0)  # not a per-class bilinear filter
    np.testing.assert_array_equal(blobs["scale_pool4"][0], np.full(16, 0.01, np.float32))
    assert all(blob.dtype == np.float32 for arrays in blobs.values() for blob in arrays)
    fan_in = 16 * 9
    assert 0.5 < np.std(blobs["conv5_2"][0]) / np.sqrt(2 / fan_in) < 1.5
    again = synthetic_caffe.random_blobs("voc-fcn8s-atonce", NARROW_WIDTHS, NARROW_FC, num_classes=5, seed=1)
    other = synthetic_caffe.random_blobs("voc-fcn8s-atonce", NARROW_WIDTHS, NARROW_FC, num_classes=5, seed=2)
    np.testing.assert_array_equal(again["fc7"][0], blobs["fc7"][0])
    assert not np.array_equal(other["fc7"][0], blobs["fc7"][0])


def test_unknown_encodings_and_v1_types_are_refused(tmp_path):
    with pytest.raises(ValueError, match="encoding is one of layer, legacy_dims, v1, not v2"):
        synthetic_caffe.write_layers(str(tmp_path / "x.caffemodel"), [], "v2")
    with pytest.raises(ValueError, match="V1 files have no layer type PReLU"):
        synthetic_caffe.write_layers(str(tmp_path / "x.caffemodel"), [Layer("p", "PReLU", [], [], [])], "v1")
