"""Reading a .caffemodel without Caffe or protoc: its layers' names, types, bottoms, tops and weight blobs.

A caffemodel is one serialized proto2 NetParameter (caffe.proto). This reader walks the protobuf wire format by
hand: the layers and blobs in Python, the weights with np.frombuffer over the one read of the file, so a 500 MB
file reads in about a second. Layers are NetParameter field 100 (LayerParameter) or, in older files, field 2
(V1LayerParameter, whose type is an enum); a blob's shape is a BlobShape or the legacy num, channels, height,
width. No TensorFlow here.
"""
import collections
import os

import numpy as np

CaffeNet = collections.namedtuple("CaffeNet", "name layers")
Layer = collections.namedtuple("Layer", "name type bottoms tops blobs")  # blobs: float32 arrays in Caffe's shape

VARINT, FIXED64, LENGTH, FIXED32 = 0, 1, 2, 5  # the wire types a caffemodel uses
V1_TYPES = {  # V1LayerParameter.LayerType -> the type string Caffe's upgrade gives it (upgrade_proto.cpp)
    0: "", 1: "Accuracy", 2: "BNLL", 3: "Concat", 4: "Convolution", 5: "Data", 6: "Dropout", 7: "EuclideanLoss",
    8: "Flatten", 9: "HDF5Data", 10: "HDF5Output", 11: "Im2col", 12: "ImageData", 13: "InfogainLoss",
    14: "InnerProduct", 15: "LRN", 16: "MultinomialLogisticLoss", 17: "Pooling", 18: "ReLU", 19: "Sigmoid",
    20: "Softmax", 21: "SoftmaxWithLoss", 22: "Split", 23: "TanH", 24: "WindowData", 25: "Eltwise", 26: "Power",
    27: "SigmoidCrossEntropyLoss", 28: "HingeLoss", 29: "MemoryData", 30: "ArgMax", 31: "Threshold",
    32: "DummyData", 33: "Slice", 34: "MVN", 35: "AbsVal", 36: "Silence", 37: "ContrastiveLoss", 38: "Exp",
    39: "Deconvolution"}
NET_FIELDS = {1: (LENGTH,), 2: (LENGTH,), 3: (LENGTH,), 4: (VARINT, LENGTH), 5: (VARINT,), 6: (LENGTH,),
              7: (VARINT,), 8: (LENGTH,), 100: (LENGTH,)}  # NetParameter's fields and their wire types
LAYER_FIELDS = {"layer": {"name": 1, "type": 2, "bottom": 3, "top": 4, "blobs": 7},
                "v1": {"bottom": 2, "top": 3, "name": 4, "type": 5, "blobs": 6}}
UNPACKED_TAGS = {5: (0x2D, "<f4"), 8: (0x41, "<f8")}  # BlobProto data and double_data, one value per field
LOOKS_LIKE = ((b"\xff\xd8\xff", "a JPEG image"), (b"\x89PNG", "a PNG image"), (b"PK\x03\x04", "a zip archive"),
              (b"\x1f\x8b", "a gzip archive"), (b"\x89HDF", "an HDF5 file"), (b"MATLAB", "a MATLAB .mat file"),
              (b"\x93NUMPY", "a NumPy .npy file"))


class CaffeFileError(ValueError):
    """A file that cannot be read as a caffemodel; the one-line message names it and what to do."""


class _Corrupt(Exception):
    """Raised while walking the bytes; read_net turns it into a CaffeFileError that names the file."""


def read_net(path):
    """CaffeNet(name, [Layer, ...]) of the caffemodel at path, the layers in the file's order."""
    with open(path, "rb") as file:
        buffer = bytearray(os.fstat(file.fileno()).st_size)  # writable, so the blobs viewing it are too
        file.readinto(buffer)
    if not buffer:
        raise CaffeFileError(f"{path} is empty, not a caffemodel: download it again")
    if not _starts_like_a_net(buffer):
        raise CaffeFileError(f"{path} is not a caffemodel: it looks like {_looks_like(buffer)}; "
                             "pass the .caffemodel file of the net")
    try:
        name, layers = _parse_net(buffer)
    except _Corrupt as why:
        raise CaffeFileError(f"{path} is truncated or corrupt ({why}): download it again") from None
    if not layers:
        raise CaffeFileError(f"{path} is not a caffemodel: it holds no layers; pass the .caffemodel file of the net")
    return CaffeNet(name, layers)


def _starts_like_a_net(buffer):
    """Whether the first field's key is one NetParameter has, with its wire type: other files fail here, while a
    caffemodel cut short still gets past."""
    try:
        key, _ = _varint(buffer, 0, len(buffer))
    except _Corrupt:
        return False
    return key & 7 in NET_FIELDS.get(key >> 3, ())


def _looks_like(buffer):
    head = bytes(buffer[:64])
    for magic, kind in LOOKS_LIKE:
        if head.startswith(magic):
            return kind
    if all(32 <= byte < 127 or byte in b"\t\r\n" for byte in head):
        return "a text file (a .prototxt or an HTML page?)"
    return f"something else (it starts with bytes {head[:8].hex(' ')})"


def _varint(buffer, pos, end):
    result = shift = 0
    while True:
        if pos >= end:
            raise _Corrupt(f"a number runs past byte {end}")
        byte = buffer[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise _Corrupt(f"a number at byte {pos} is longer than 10 bytes")


def _next_field(buffer, pos, end):
    """(field number, wire type, value, position after it) of the field at pos: the value is an int for a varint,
    the (start, end) of the bytes of a length-delimited field, the offset of a fixed-size one."""
    start = pos
    key, pos = _varint(buffer, pos, end)
    number, wire = key >> 3, key & 7
    if wire == VARINT:
        value, pos = _varint(buffer, pos, end)
    elif wire == LENGTH:
        length, pos = _varint(buffer, pos, end)
        value, pos = (pos, pos + length), pos + length
    elif wire in (FIXED32, FIXED64):
        value, pos = pos, pos + (4 if wire == FIXED32 else 8)
    else:
        raise _Corrupt(f"unknown wire type {wire} at byte {start}")
    if number == 0:
        raise _Corrupt(f"field number 0 at byte {start}")
    if pos > end:
        where = "the end of the file" if end == len(buffer) else "the end of its message"
        raise _Corrupt(f"a field at byte {start} runs past {where} at byte {end}")
    return number, wire, value, pos


def _fields(buffer, start, end):
    while start < end:
        number, wire, value, start = _next_field(buffer, start, end)
        yield number, wire, value


def _text(buffer, span):
    return bytes(buffer[span[0]:span[1]]).decode("utf-8", errors="replace")


def _parse_net(buffer):
    name, layers = "", []
    for number, wire, value in _fields(buffer, 0, len(buffer)):
        if number == 1 and wire == LENGTH:
            name = _text(buffer, value)
        elif number in (100, 2) and wire == LENGTH:
            layers.append(_parse_layer(buffer, value, "layer" if number == 100 else "v1", len(layers)))
    return name, layers


def _parse_layer(buffer, span, encoding, index):
    fields = LAYER_FIELDS[encoding]
    found = {"name": "", "type": "", "bottom": [], "top": [], "blobs": []}
    spans = []
    for number, wire, value in _fields(buffer, *span):
        key = next((key for key, known in fields.items() if known == number), None)
        expected = VARINT if (key == "type" and encoding == "v1") else LENGTH
        if key is not None and wire != expected:
            raise _Corrupt(f"field {number} of layer {index} has wire type {wire}")
        if key == "type" and encoding == "v1":
            found["type"] = V1_TYPES.get(value, f"V1 type {value}")
        elif key in ("name", "type"):
            found[key] = _text(buffer, value)
        elif key in ("bottom", "top"):
            found[key].append(_text(buffer, value))
        elif key == "blobs":
            spans.append(value)
    label = found["name"] or f"number {index}"
    blobs = [_parse_blob(buffer, blob_span, label) for blob_span in spans]
    return Layer(found["name"], found["type"], found["bottom"], found["top"], blobs)


def _parse_blob(buffer, span, layer):
    """The float32 array of one BlobProto: packed data viewed in place, unpacked data by one vectorised pass."""
    legacy, dims, pieces = {}, None, []
    pos, end = span
    while pos < end:
        number, wire, value, pos = _next_field(buffer, pos, end)
        if number in (1, 2, 3, 4) and wire == VARINT:
            legacy[number] = value
        elif number == 7 and wire == LENGTH:
            dims = _parse_dims(buffer, value)
        elif number in UNPACKED_TAGS and wire == LENGTH:
            pieces.append(_packed(buffer, value, UNPACKED_TAGS[number][1], layer))
        elif number in UNPACKED_TAGS and wire == (FIXED32 if number == 5 else FIXED64):
            piece, pos = _unpacked_run(buffer, value, end, *UNPACKED_TAGS[number])
            pieces.append(piece)
        elif number in (1, 2, 3, 4, 5, 7, 8):
            raise _Corrupt(f"field {number} of a blob of layer {layer} has wire type {wire}")
    data = pieces[0] if len(pieces) == 1 else np.concatenate(pieces) if pieces else np.zeros(0, np.float32)
    if legacy:
        dims = tuple(legacy.get(number, 0) for number in (1, 2, 3, 4))
    if dims is None:
        dims = (data.size,)
    if int(np.prod(dims)) != data.size:
        raise _Corrupt(f"a blob of layer {layer} holds {data.size} values for shape {dims}")
    return data.astype(np.float32, copy=False).reshape(dims)


def _packed(buffer, span, dtype, layer):
    size = np.dtype(dtype).itemsize
    if (span[1] - span[0]) % size:
        raise _Corrupt(f"a blob of layer {layer} holds {span[1] - span[0]} bytes, not whole values")
    return np.frombuffer(buffer, dtype, (span[1] - span[0]) // size, span[0])


def _unpacked_run(buffer, pos, end, tag, dtype):
    """The values of a run of unpacked fields (one value, then (tag, value) records while the tag repeats) and the
    position after it, found with numpy rather than a loop over the values."""
    size = np.dtype(dtype).itemsize
    count = (end - pos - size) // (1 + size)
    records = np.frombuffer(buffer, [("tag", "u1"), ("value", dtype)], count, pos + size)
    other = np.flatnonzero(records["tag"] != tag)
    run = int(other[0]) if other.size else count
    values = np.concatenate([np.frombuffer(buffer, dtype, 1, pos), records["value"][:run]])
    return values, pos + size + run * (1 + size)


def _parse_dims(buffer, span):
    dims = []
    for number, wire, value in _fields(buffer, *span):
        if number == 1 and wire == VARINT:
            dims.append(value)
        elif number == 1 and wire == LENGTH:
            pos = value[0]
            while pos < value[1]:
                dim, pos = _varint(buffer, pos, value[1])
                dims.append(dim)
    return tuple(dims)
