"""Caffemodels with the released FCNs' structure and random weights, for the tests and benchmark.py: written in the
real wire format by the protobuf package, from the subset of caffe.proto they need built at run time (real field
numbers, types and packing), so no protoc and no Caffe. No TensorFlow here.

The files look as Caffe saves a training net: a Python data layer first, in-place ReLU and Dropout, a Split layer
after each blob that feeds two layers (Caffe's InsertSplits), Crop and Eltwise layers, the loss layers.
"""
import collections
import functools

import numpy as np
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from fcn_tensorflow.data import matconvnet, released_fcns
from fcn_tensorflow.data.caffemodel import V1_TYPES, Layer

ENCODINGS = ("layer", "legacy_dims", "v1")  # field 100 + BlobShape; the same with num/channels/height/width; field 2
VGG16_WIDTHS = matconvnet.VGG19_WIDTHS  # the same block widths
V1_ENUM = {"NONE": 0, "ACCURACY": 1, "CONCAT": 3, "CONVOLUTION": 4, "DATA": 5, "DROPOUT": 6, "INNER_PRODUCT": 14,
           "LRN": 15, "POOLING": 17, "RELU": 18, "SOFTMAX": 20, "SOFTMAX_LOSS": 21, "SPLIT": 22, "ELTWISE": 25,
           "DECONVOLUTION": 39}  # the V1LayerParameter.LayerType values these files use
V1_NUMBERS = {**{name: number for number, name in V1_TYPES.items()}, "Python": 5, "Scale": 0}  # V1 has neither
PROTO_FIELDS = {  # message: (field, number, label, type, message type, packed) as caffe.proto declares them
    "BlobShape": (("dim", 1, "repeated", "int64", None, True),),
    "BlobProto": (("num", 1, "optional", "int32", None, False), ("channels", 2, "optional", "int32", None, False),
                  ("height", 3, "optional", "int32", None, False), ("width", 4, "optional", "int32", None, False),
                  ("data", 5, "repeated", "float", None, True), ("diff", 6, "repeated", "float", None, True),
                  ("shape", 7, "optional", "message", "BlobShape", False),
                  ("double_data", 8, "repeated", "double", None, True)),
    "LayerParameter": (("name", 1, "optional", "string", None, False), ("type", 2, "optional", "string", None, False),
                       ("bottom", 3, "repeated", "string", None, False), ("top", 4, "repeated", "string", None, False),
                       ("blobs", 7, "repeated", "message", "BlobProto", False)),
    "V1LayerParameter": (("bottom", 2, "repeated", "string", None, False),
                         ("top", 3, "repeated", "string", None, False), ("name", 4, "optional", "string", None, False),
                         ("type", 5, "optional", "enum", "V1LayerParameter.LayerType", False),
                         ("blobs", 6, "repeated", "message", "BlobProto", False)),
    "NetParameter": (("name", 1, "optional", "string", None, False),
                     ("layers", 2, "repeated", "message", "V1LayerParameter", False),
                     ("input", 3, "repeated", "string", None, False), ("input_dim", 4, "repeated", "int32", None, False),
                     ("input_shape", 8, "repeated", "message", "BlobShape", False),
                     ("layer", 100, "repeated", "message", "LayerParameter", False))}


@functools.cache
def message_classes(packed=True):
    """{message name: protobuf class} of the caffe.proto subset; packed=False declares every repeated number
    unpacked, as an old writer might have stored them."""
    Field = descriptor_pb2.FieldDescriptorProto
    proto = descriptor_pb2.FileDescriptorProto(name="caffe_subset.proto", package="caffe", syntax="proto2")
    for message_name, fields in PROTO_FIELDS.items():
        message = proto.message_type.add(name=message_name)
        for name, number, label, kind, type_name, is_packed in fields:
            field = message.field.add(name=name, number=number, label=getattr(Field, "LABEL_" + label.upper()),
                                      type=getattr(Field, "TYPE_" + kind.upper()))
            if type_name:
                field.type_name = ".caffe." + type_name
            if is_packed and packed:
                field.options.packed = True
        if message_name == "V1LayerParameter":
            enum = message.enum_type.add(name="LayerType")
            for value_name, number in V1_ENUM.items():
                enum.value.add(name=value_name, number=number)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return {name: message_factory.GetMessageClass(pool.FindMessageTypeByName("caffe." + name))
            for name in PROTO_FIELDS}


def write_layers(path, layers, encoding="layer", name="", inputs=(), packed=True):
    """Write [caffemodel.Layer] as a caffemodel; inputs: (blob name, (num, channels, height, width)) pairs for the
    deprecated NetParameter input and input_dim fields."""
    if encoding not in ENCODINGS:
        raise ValueError(f"encoding is one of {', '.join(ENCODINGS)}, not {encoding}")
    classes = message_classes(packed)
    net = classes["NetParameter"](name=name) if name else classes["NetParameter"]()
    for input_name, dims in inputs:
        net.input.append(input_name)
        net.input_dim.extend(dims)
    for layer in layers:
        if encoding == "v1" and layer.type == "Crop":
            continue  # V1 has no Crop type: the saved nets of its time had none
        message = net.layers.add() if encoding == "v1" else net.layer.add()
        message.name = layer.name
        message.type = _v1_type(layer.type) if encoding == "v1" else layer.type
        message.bottom.extend(layer.bottoms)
        message.top.extend(layer.tops)
        for blob in layer.blobs:
            _fill_blob(message.blobs.add(), np.asarray(blob, np.float32), encoding != "layer")
    with open(path, "wb") as file:
        file.write(net.SerializeToString())


def _v1_type(kind):
    number = V1_NUMBERS.get(kind)
    if number not in V1_ENUM.values():
        raise ValueError(f"V1 files have no layer type {kind}")
    return number


def _fill_blob(message, array, legacy_dims):
    # protobuf's extend took 3 s per 10M values from numpy (1 s from a list), 40 s for a full voc-fcn8s;
    # protobuf parses the same values as packed bytes in 0.06 s, and serializes them as caffe.proto declares
    message.MergeFromString(_packed_floats_field(5, array))
    if legacy_dims:
        if array.ndim > 4:
            raise ValueError(f"legacy blob dims hold 4 axes, not {array.shape}")
        message.num, message.channels, message.height, message.width = (1,) * (4 - array.ndim) + array.shape
    else:
        message.shape.dim.extend(array.shape)


def _packed_floats_field(number, array):
    data = array.astype("<f4").tobytes()
    return encode_varint((number << 3) | 2) + encode_varint(len(data)) + data


def encode_varint(value):
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _heads(net):
    """(layer name suffix, label top, loss layer name) of each head of a known net."""
    if released_fcns.KNOWN[net].dataset == "siftflow":
        return (("_sem", "sem", "loss"), ("_geo", "geo", "loss_geo"))
    return (("", "label", "loss"),)


def _head_steps(head):
    """'name type bottom...' of the head after fc7 in net.py's order, {s} standing for the layer name suffix."""
    if head == "fcn32s":
        return ("score_fr{s} Convolution fc7", "upscore{s} Deconvolution score_fr{s}", "score{s} Crop upscore{s} data")
    pool4, pool3 = ("scale_pool4", "scale_pool3") if head == "fcn8s_atonce" else ("pool4", "pool3")
    steps = ["score_fr{s} Convolution fc7", "upscore2{s} Deconvolution score_fr{s}"]
    steps += ["scale_pool4 Scale pool4"] if head == "fcn8s_atonce" else []
    steps += [f"score_pool4{{s}} Convolution {pool4}", "score_pool4{s}c Crop score_pool4{s} upscore2{s}",
              "fuse_pool4{s} Eltwise upscore2{s} score_pool4{s}c"]
    if head == "fcn16s":
        return (*steps, "upscore16{s} Deconvolution fuse_pool4{s}", "score{s} Crop upscore16{s} data")
    steps += ["upscore_pool4{s} Deconvolution fuse_pool4{s}"]
    steps += ["scale_pool3 Scale pool3"] if head == "fcn8s_atonce" else []
    steps += [f"score_pool3{{s}} Convolution {pool3}", "score_pool3{s}c Crop score_pool3{s} upscore_pool4{s}",
              "fuse_pool3{s} Eltwise upscore_pool4{s} score_pool3{s}c", "upscore8{s} Deconvolution fuse_pool3{s}",
              "score{s} Crop upscore8{s} data"]
    return tuple(steps)


def _vgg16_layers(bottom, fc_type):
    """The VGG16 trunk up to drop7 as (name, type, bottoms, tops), ReLU and Dropout in place."""
    layers = []
    for block, convs in enumerate(released_fcns.VGG16_BLOCKS, start=1):
        for conv in range(1, convs + 1):
            name = f"conv{block}_{conv}"
            layers += [(name, "Convolution", [bottom], [name]), (f"relu{block}_{conv}", "ReLU", [name], [name])]
            bottom = name
        layers.append((f"pool{block}", "Pooling", [bottom], [f"pool{block}"]))
        bottom = f"pool{block}"
    for index in (6, 7):
        name = f"fc{index}"
        layers += [(name, fc_type, [bottom], [name]), (f"relu{index}", "ReLU", [name], [name]),
                   (f"drop{index}", "Dropout", [name], [name])]
        bottom = name
    return layers


def training_layers(net, blobs=None):
    """[caffemodel.Layer] of the known released net `net` as Caffe saves its training net, with `blobs`
    ({layer name: [arrays]}) on the layers they name."""
    blobs = blobs or {}
    heads = _heads(net)
    layers = [("data", "Python", [], ["data"] + [label for _, label, _ in heads])]
    layers += _vgg16_layers("data", "Convolution")
    for suffix, label, loss in heads:
        for step in _head_steps(released_fcns.KNOWN[net].head):
            name, kind, *bottoms = step.format(s=suffix).split()
            layers.append((name, kind, bottoms, [name]))
        layers.append((loss, "SoftmaxWithLoss", ["score" + suffix, label], [loss]))
    return insert_splits([Layer(name, kind, bottoms, tops, list(blobs.get(name, ())))
                          for name, kind, bottoms, tops in layers])


def insert_splits(layers):
    """Caffe's InsertSplits: after a layer whose top feeds several layers, a Split layer
    `<blob>_<layer>_<i>_split` with one top per use, and each use's bottom renamed to its own top."""
    producer, uses = {}, collections.defaultdict(list)
    for index, layer in enumerate(layers):
        for position, blob in enumerate(layer.bottoms):
            uses[producer[blob]].append((index, position))
        for position, blob in enumerate(layer.tops):
            producer[blob] = (index, position)
    renamed, split = {}, []
    for (index, position), users in uses.items():
        if len(users) > 1:
            for number, user in enumerate(users):
                renamed[user] = f"{layers[index].tops[position]}_{layers[index].name}_{position}_split_{number}"
    for index, layer in enumerate(layers):
        split.append(layer._replace(bottoms=[renamed.get((index, position), blob)
                                             for position, blob in enumerate(layer.bottoms)]))
        for position, blob in enumerate(layer.tops):
            count = len(uses.get((index, position), ()))
            if count > 1:
                name = f"{blob}_{layer.name}_{position}_split"
                split.append(Layer(name, "Split", [blob], [f"{name}_{number}" for number in range(count)], []))
    return split


def _random_conv(rng, shape):
    """He-scaled weights, so activations neither vanish nor overflow through the trunk."""
    fan_in = int(np.prod(shape[1:]))
    return (rng.standard_normal(shape, dtype=np.float32) * np.float32(np.sqrt(2.0 / fan_in))).astype(np.float32)


def _random_bias(rng, size):
    return (rng.standard_normal(size, dtype=np.float32) * np.float32(0.1)).astype(np.float32)


def _backbone_blobs(rng, widths, fc_width):
    blobs, in_channels = {}, 3
    for name in released_fcns.VGG16_CONVS:
        out = widths[int(name[4]) - 1]
        blobs[name] = [_random_conv(rng, (out, in_channels, 3, 3)), _random_bias(rng, out)]
        in_channels = out
    blobs["fc6"] = [_random_conv(rng, (fc_width, in_channels, 7, 7)), _random_bias(rng, fc_width)]
    blobs["fc7"] = [_random_conv(rng, (fc_width, fc_width, 1, 1)), _random_bias(rng, fc_width)]
    return blobs


def random_blobs(net, widths=VGG16_WIDTHS, fc_width=4096, num_classes=None, seed=0):
    """{Caffe layer name: [arrays in Caffe's layout]} for the known net `net` with random weights: the
    deconvolutions too (not bilinear), so a wrong layout shows; at-once's scales are the reference's constants.
    num_classes replaces the (semantic) class count; SIFT Flow's geometric head has 3."""
    rng = np.random.default_rng(seed)
    blobs = _backbone_blobs(rng, widths, fc_width)
    known = released_fcns.KNOWN[net]
    for suffix, _, _ in _heads(net):
        classes = 3 if suffix == "_geo" else num_classes or known.num_classes
        for layer in released_fcns.HEAD_LAYERS[known.head]:
            pool_channels = widths[int(layer[-1]) - 1] if "pool" in layer else None
            if layer in released_fcns.DECONV_KERNELS:
                size = released_fcns.DECONV_KERNELS[layer]
                blobs[layer + suffix] = [_random_conv(rng, (classes, classes, size, size))]
            elif layer in released_fcns.SCALES:
                blobs[layer + suffix] = [np.full(pool_channels, released_fcns.SCALES[layer], np.float32)]
            else:
                shape = (classes, pool_channels or fc_width, 1, 1)
                blobs[layer + suffix] = [_random_conv(rng, shape), _random_bias(rng, classes)]
    return blobs


def write_caffemodel(path, net, blobs, encoding="layer"):
    """Write the known released net `net` with `blobs` (random_blobs) as a caffemodel in `encoding`."""
    write_layers(path, training_layers(net, blobs), encoding, name=net)


def write_vgg16_caffemodel(path, widths=VGG16_WIDTHS, fc_width=4096, seed=0, num_imagenet_classes=1000):
    """Write an ImageNet VGG16 caffemodel as the 2014 VGG_ILSVRC_16_layers file is: V1 layers with legacy dims,
    fc6/fc7/fc8 InnerProduct, `input` and `input_dim` instead of a data layer. Returns {layer: [arrays]} written."""
    rng = np.random.default_rng(seed)
    blobs = _backbone_blobs(rng, widths, fc_width)
    for name in ("fc6", "fc7"):
        blobs[name][0] = blobs[name][0].reshape(fc_width, -1)
    blobs["fc8"] = [_random_conv(rng, (num_imagenet_classes, fc_width)), _random_bias(rng, num_imagenet_classes)]
    layers = _vgg16_layers("data", "InnerProduct") + [("fc8", "InnerProduct", ["fc7"], ["fc8"]),
                                                      ("prob", "Softmax", ["fc8"], ["prob"])]
    write_layers(path, [Layer(name, kind, bottoms, tops, blobs.get(name, [])) for name, kind, bottoms, tops in layers],
                 "v1", name="VGG_ILSVRC_16_layers", inputs=[("data", (10, 3, 224, 224))])
    return blobs
