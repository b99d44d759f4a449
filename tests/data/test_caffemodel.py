"""caffemodel.py: files written by protobuf (synthetic_caffe) read back by the hand-written reader in every encoding,
packed or not; cut, empty and foreign files get one line naming them."""
import numpy as np
import pytest

from fcn_tensorflow.data import caffemodel, released_fcns, synthetic_caffe
from fcn_tensorflow.data.caffemodel import CaffeFileError, Layer
from tests.helpers import NARROW_FC, NARROW_WIDTHS, TENSORFLOW_LOADED, run_python

V1_RENAMED = {"Python": "Data", "Scale": ""}  # types V1 has not: written as DATA and NONE


def written_layers(net, encoding, blobs):
    """The layers the reader should give for a file of `net` in `encoding`, blobs in the shapes it stores."""
    layers = synthetic_caffe.training_layers(net, blobs)
    if encoding == "v1":
        layers = [layer._replace(type=V1_RENAMED.get(layer.type, layer.type)) for layer in layers
                  if layer.type != "Crop"]
    if encoding != "layer":
        layers = [layer._replace(blobs=[blob.reshape((1,) * (4 - blob.ndim) + blob.shape) for blob in layer.blobs])
                  for layer in layers]
    return layers


def assert_same_layers(read, expected):
    assert [layer[:4] for layer in read] == [layer[:4] for layer in expected]
    for got, want in zip(read, expected):
        assert [blob.shape for blob in got.blobs] == [blob.shape for blob in want.blobs], got.name
        for got_blob, want_blob in zip(got.blobs, want.blobs):
            assert got_blob.dtype == np.float32
            np.testing.assert_array_equal(got_blob, want_blob)


def assert_one_line_error(error, path, *words):
    message = str(error.value)
    assert "\n" not in message and str(path) in message, message
    for word in words:
        assert word in message, message


@pytest.mark.parametrize("encoding", synthetic_caffe.ENCODINGS)
@pytest.mark.parametrize("net", list(released_fcns.KNOWN))
def test_every_released_net_reads_back_in_every_encoding(tmp_path, net, encoding):
    blobs = synthetic_caffe.random_blobs(net, NARROW_WIDTHS, NARROW_FC, seed=3)
    path = tmp_path / (net + ".caffemodel")
    synthetic_caffe.write_caffemodel(str(path), net, blobs, encoding)
    read = caffemodel.read_net(str(path))
    assert read.name == net
    assert_same_layers(read.layers, written_layers(net, encoding, blobs))


def test_unpacked_floats_read_as_packed_ones(tmp_path):
    """An old writer may store each float as its own field (tag 0x2d): the same values come back."""
    blobs = synthetic_caffe.random_blobs("voc-fcn16s", NARROW_WIDTHS, NARROW_FC, seed=4)
    layers = synthetic_caffe.training_layers("voc-fcn16s", blobs)
    packed, unpacked = tmp_path / "packed.caffemodel", tmp_path / "unpacked.caffemodel"
    synthetic_caffe.write_layers(str(packed), layers)
    synthetic_caffe.write_layers(str(unpacked), layers, packed=False)
    values = sum(blob.size for layer in layers for blob in layer.blobs)
    assert unpacked.stat().st_size - packed.stat().st_size > 0.99 * values  # a tag byte more per value
    assert_same_layers(caffemodel.read_net(str(unpacked)).layers, layers)


def test_double_data_packed_or_not_and_split_data_fields(tmp_path):
    values = np.arange(6, dtype=np.float64) / 7
    blob_packed = synthetic_caffe.message_classes()["BlobProto"](double_data=values)
    blob_packed.shape.dim.extend([2, 3])
    blob_unpacked = synthetic_caffe.message_classes(packed=False)["BlobProto"](double_data=values)
    blob_unpacked.shape.dim.extend([3, 2])
    pieces = synthetic_caffe.message_classes()["BlobProto"](data=values[:2])  # data in two packed runs
    pieces.MergeFromString(synthetic_caffe.message_classes()["BlobProto"](data=values[2:]).SerializeToString())
    pieces.shape.dim.append(6)
    layer = (b"\x0a\x01x" + b"".join(b"\x3a" + synthetic_caffe.encode_varint(len(data)) + data for data in
                                     (blob_packed.SerializeToString(), blob_unpacked.SerializeToString(),
                                      pieces.SerializeToString())))
    path = tmp_path / "doubles.caffemodel"
    path.write_bytes(b"\xa2\x06" + synthetic_caffe.encode_varint(len(layer)) + layer)
    blobs = caffemodel.read_net(str(path)).layers[0].blobs
    assert [blob.shape for blob in blobs] == [(2, 3), (3, 2), (6,)]
    for blob in blobs:
        assert blob.dtype == np.float32
        np.testing.assert_array_equal(blob.reshape(-1), values.astype(np.float32))


def test_fields_the_reader_does_not_need_are_skipped(tmp_path):
    """param (6), phase (10), loss_weight (5, a fixed32), convolution_param (106): skipped by their wire type."""
    classes = synthetic_caffe.message_classes()
    net = classes["NetParameter"](name="extras")
    net.MergeFromString(b"\x28\x01")  # force_backward: true
    layer = net.layer.add(name="conv", type="Convolution", bottom=["data"], top=["conv"])
    layer.MergeFromString(b"\x32\x02\x0d\x00" + b"\x50\x01" + b"\x2d\x00\x00\x80\x3f" + b"\xd2\x06\x02\x08\x15")
    blob = layer.blobs.add(data=[1.5, -2.0])
    blob.shape.dim.append(2)
    path = tmp_path / "extras.caffemodel"
    path.write_bytes(net.SerializeToString())
    read = caffemodel.read_net(str(path))
    assert read.layers[0][:4] == ("conv", "Convolution", ["data"], ["conv"])
    np.testing.assert_array_equal(read.layers[0].blobs[0], [1.5, -2.0])


def test_v1_layer_types_become_caffe_type_strings(tmp_path):
    kinds = ("Convolution", "Deconvolution", "Pooling", "ReLU", "Dropout", "Eltwise", "InnerProduct",
             "SoftmaxWithLoss", "Split", "Data", "Softmax", "Concat", "LRN", "Accuracy", "")
    path = tmp_path / "v1.caffemodel"
    synthetic_caffe.write_layers(str(path), [Layer(f"layer{index}", kind, ["a"], ["b"], [])
                                             for index, kind in enumerate(kinds)], "v1")
    assert [layer.type for layer in caffemodel.read_net(str(path)).layers] == list(kinds)
    assert caffemodel.V1_TYPES[4] == "Convolution" and caffemodel.V1_TYPES[39] == "Deconvolution"


def test_a_larger_file_reads_its_blobs_in_place(tmp_path):
    """About 42 MB: the blobs view the one buffer read from the file (no copy per blob, no loop per float)."""
    blobs = synthetic_caffe.random_blobs("voc-fcn8s", (32, 64, 128, 256, 256), 512, seed=5)
    path = tmp_path / "larger.caffemodel"
    synthetic_caffe.write_caffemodel(str(path), "voc-fcn8s", blobs)
    assert path.stat().st_size > 40e6
    layers = {layer.name: layer for layer in caffemodel.read_net(str(path)).layers}
    fc6 = layers["fc6"].blobs[0]
    assert fc6.shape == (512, 256, 7, 7) and not fc6.flags.owndata and fc6.flags.writeable
    np.testing.assert_array_equal(fc6, blobs["fc6"][0])
    np.testing.assert_array_equal(layers["conv5_3"].blobs[1], blobs["conv5_3"][1])


def test_a_cut_file_is_truncated_or_corrupt_in_one_line(tmp_path):
    path = tmp_path / "fcn8s-heavy-pascal.caffemodel"
    synthetic_caffe.write_caffemodel(str(path), "voc-fcn8s",
                                     synthetic_caffe.random_blobs("voc-fcn8s", NARROW_WIDTHS, NARROW_FC))
    whole = path.read_bytes()
    for cut in (1, 5, 300, len(whole) // 3, len(whole) // 2, len(whole) - 1):
        path.write_bytes(whole[:cut])
        with pytest.raises(CaffeFileError) as error:
            caffemodel.read_net(str(path))
        assert_one_line_error(error, path, "is truncated or corrupt", "download it again")


def test_a_blob_with_the_wrong_number_of_values_is_corrupt(tmp_path):
    path = tmp_path / "wrong.caffemodel"
    synthetic_caffe.write_layers(str(path), [Layer("fc6", "Convolution", ["a"], ["b"], [np.zeros((2, 3))])])
    whole = path.read_bytes()
    path.write_bytes(whole.replace(b"\x0a\x02\x02\x03", b"\x0a\x02\x02\x04"))  # shape (2, 4) over 6 values
    with pytest.raises(CaffeFileError) as error:
        caffemodel.read_net(str(path))
    assert_one_line_error(error, path, "layer fc6 holds 6 values for shape (2, 4)")


@pytest.mark.parametrize("content, words", [
    (b"", "is empty"),
    (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(100), "a JPEG image"),
    (b"\x89PNG\r\n\x1a\n" + bytes(100), "a PNG image"),
    (b'name: "FCN"\nlayer {\n  name: "data"\n  type: "Python"\n}\n', "a text file"),
    (b"\x1f\x8b\x08\x00" + bytes(50), "a gzip archive"),
    (b"\x0f\xf0\x13\x37" * 30, "it starts with bytes 0f f0 13 37"),
    (b"\x0a\x03FCN", "it holds no layers"),
])
def test_a_file_that_is_no_caffemodel_says_so_in_one_line(tmp_path, content, words):
    path = tmp_path / "model.caffemodel"
    path.write_bytes(content)
    with pytest.raises(CaffeFileError) as error:
        caffemodel.read_net(str(path))
    assert_one_line_error(error, path, words)
    assert isinstance(error.value, ValueError)


def test_reading_loads_no_tensorflow():
    words, _ = run_python("from fcn_tensorflow.data import caffemodel, released_fcns, synthetic_caffe"
                          + TENSORFLOW_LOADED)
    assert words == ["False"]
