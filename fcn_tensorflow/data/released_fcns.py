"""The paper's released FCNs (fcn.berkeleyvision.org): which caffemodel is which net, and its weights as this
project's checkpoint variables; also the ImageNet VGG16 caffemodel the paper's training starts from.

Blobs are matched by layer name against the known topology, as Caffe's CopyTrainedLayersFrom does: the head, the
widths and the class count come from the file's layer names and blob shapes, the geometry (pads, crops, strides)
never from the file. Caffe kernels (out, in, kh, kw) become TensorFlow's (kh, kw, in, out); our conv1_1 takes RGB,
so its input channels are reversed from Caffe's BGR. No TensorFlow here.
"""
import collections

import numpy as np

from fcn_tensorflow.data import caffemodel, matconvnet

URL_ROOT = "http://dl.caffe.berkeleyvision.org/"
VGG16_CAFFE_FILE = "VGG_ILSVRC_16_layers.caffemodel"
VGG16_BLOCKS = matconvnet.BLOCKS["vgg16"]  # conv layers per block
VGG16_CONVS = tuple(name for name in matconvnet.conv_layers("vgg16") if name.startswith("conv"))
VOC_MEAN = (104.00698793, 116.66876762, 122.67891434)  # Caffe's B, G, R
HEAD_LAYERS = {  # the Caffe layers with weights after fc7, as the reference's net.py names them
    "fcn32s": ("score_fr", "upscore"),
    "fcn16s": ("score_fr", "upscore2", "score_pool4", "upscore16"),
    "fcn8s": ("score_fr", "upscore2", "score_pool4", "upscore_pool4", "score_pool3", "upscore8"),
    "fcn8s_atonce": ("score_fr", "upscore2", "scale_pool4", "score_pool4", "upscore_pool4", "scale_pool3",
                     "score_pool3", "upscore8")}
HEAD_NAMES = {"fcn32s": "fcn32s", "fcn16s": "fcn16s", "fcn8s": "fcn8s", "fcn8s_atonce": "fcn8s-atonce"}
DECONV_KERNELS = {"upscore": 64, "upscore2": 4, "upscore16": 32, "upscore_pool4": 4, "upscore8": 16}
DECONV_VARIABLES = {"upscore": "upscore32"}  # our name where it differs from Caffe's
SCALES = {"scale_pool4": 0.01, "scale_pool3": 0.0001}  # at-once's fixed skip scales (net.py)
SIFTFLOW_OUTPUTS = {"semantic": "_sem", "geometric": "_geo"}  # the layer name suffix of each head
SIFTFLOW_DATASETS = {"semantic": "siftflow", "geometric": "siftflow_geometric"}  # the class list of each head
DATASET_OF_CLASSES = {21: "voc", 60: "pascal_context", 33: "siftflow", 40: "nyud"}

KnownNet = collections.namedtuple("KnownNet", "name file num_classes dataset bgr_mean published head")
Imported = collections.namedtuple("Imported", "net head dataset num_classes fc_width mean_pixel variables output "
                                              "widths")
KNOWN = {known.name: known for known in (
    KnownNet("voc-fcn32s", "fcn32s-heavy-pascal.caffemodel", 21, "voc", VOC_MEAN, "63.6 mean IU on seg11valid",
             "fcn32s"),
    KnownNet("voc-fcn16s", "fcn16s-heavy-pascal.caffemodel", 21, "voc", VOC_MEAN, "65.0 mean IU on seg11valid",
             "fcn16s"),
    KnownNet("voc-fcn8s", "fcn8s-heavy-pascal.caffemodel", 21, "voc", VOC_MEAN, "65.5 mean IU on seg11valid",
             "fcn8s"),
    KnownNet("voc-fcn8s-atonce", "fcn8s-atonce-pascal.caffemodel", 21, "voc", VOC_MEAN,
             "65.4 mean IU on seg11valid", "fcn8s_atonce"),
    *(KnownNet(f"pascalcontext-fcn{stride}s", f"pascalcontext-fcn{stride}s-heavy.caffemodel", 60, "pascal_context",
               (104.007, 116.669, 122.679), "paper only", f"fcn{stride}s") for stride in (32, 16, 8)),
    *(KnownNet(f"siftflow-fcn{stride}s", f"siftflow-fcn{stride}s-heavy.caffemodel", 33, "siftflow",
               (114.578, 115.294, 108.353), "paper only", f"fcn{stride}s") for stride in (32, 16, 8)),
    KnownNet("nyud-fcn32s-color", "nyud-fcn32s-color-heavy.caffemodel", 40, "nyud", (116.190, 97.203, 92.318),
             "paper only", "fcn32s"))}


def import_net(path, output="semantic", dataset=None):
    """Imported: the released FCN in the caffemodel at path as our checkpoint variables; SIFT Flow's files hold two
    heads on one trunk, `output` picks one. The dataset follows the class count unless `dataset` is given."""
    if output not in SIFTFLOW_OUTPUTS:
        raise ValueError(f"the output of a SIFT Flow net is {' or '.join(SIFTFLOW_OUTPUTS)}, not {output}")
    layers = caffemodel.read_net(path).layers
    names, blobs = {layer.name for layer in layers}, _blobs_by_name(layers)
    suffix = _head_suffix(path, names, output)
    head = _head(path, names, blobs, layers, suffix)
    weights, widths, fc_width = _backbone(path, blobs)
    variables = _trunk_variables(weights)
    variables.update(_head_variables(path, blobs, head, suffix, widths, fc_width))
    num_classes = variables[matconvnet.SCOPE + "/score_fr/bias"].size
    net, bgr_mean = _known_name_and_mean("siftflow" if suffix else dataset or DATASET_OF_CLASSES.get(num_classes),
                                         head)
    if dataset is None:  # SIFT Flow's geometric head names its 3 classes with a dataset of its own
        dataset = SIFTFLOW_DATASETS[output] if suffix else DATASET_OF_CLASSES.get(num_classes)
    return Imported(net, head, dataset, num_classes, fc_width, np.array(bgr_mean[::-1]), variables,
                    output if suffix else None, widths)


def vgg16_weights(path):
    """({name: (kernel (kh, kw, in, out), bias)} of conv1_1..conv5_3, fc6 and fc7, the RGB mean pixel) of the
    ImageNet VGG16 caffemodel at path, as matconvnet.load_vgg gives them; fc6 and fc7 are InnerProduct layers there,
    reshaped to 7x7 and 1x1 kernels as the reference's surgery.transplant does."""
    layers = caffemodel.read_net(path).layers
    blobs = _blobs_by_name(layers)
    missing = [name for name in VGG16_CONVS + ("fc6", "fc7") if name not in blobs]
    if missing:
        raise ValueError(f"{path} is not the ImageNet VGG16 caffemodel ({VGG16_CAFFE_FILE}): "
                         f"{_missing_and_found(missing, layers)}")
    weights, _, _ = _backbone(path, blobs)
    return weights, np.array(matconvnet.IMAGENET_MEAN_PIXEL)


def _blobs_by_name(layers):
    return {layer.name: layer.blobs for layer in layers if layer.blobs}


def _missing_and_found(missing, layers):
    """'no layer a, b (it has c, d, ...)': up to three missing layers, or the first missing one of the trunk and of
    the head, and a few of those found."""
    shown = missing
    if len(missing) > 3:
        trunk, head = [name for name in missing if _in_trunk(name)], [name for name in missing if not _in_trunk(name)]
        shown = [group[0] for group in (trunk, head) if group]
    more = f" and {len(missing) - len(shown)} more" if len(missing) > len(shown) else ""
    found = [layer.name for layer in layers if layer.blobs] or [layer.name for layer in layers]
    return f"no layer {', '.join(shown)}{more} (it has {', '.join(found[:4])}{', ...' if len(found) > 4 else ''})"


def _in_trunk(name):
    return name in VGG16_CONVS or name in ("fc6", "fc7")


def _not_a_released_fcn(path, missing, layers):
    return ValueError(f"{path} is not one of the paper's released FCNs: {_missing_and_found(missing, layers)}")


def _head_suffix(path, names, output):
    """'' for one-head nets; SIFT Flow's heads are the layers named with `_sem` or `_geo`."""
    if any(name.endswith(suffix) for name in names for suffix in SIFTFLOW_OUTPUTS.values()):
        return SIFTFLOW_OUTPUTS[output]
    if output != "semantic":
        raise ValueError(f"{path} has one output, not SIFT Flow's two: the {output} output is only in SIFT Flow nets")
    return ""


def _head(path, names, blobs, layers, suffix):
    """The head the layer names say, once every layer with weights that it needs is in the file."""
    missing = [name for name in VGG16_CONVS + ("fc6", "fc7", "score_fr" + suffix) if name not in blobs]
    if missing:
        raise _not_a_released_fcn(path, missing, layers)
    last = {"upscore8": "fcn8s", "upscore16": "fcn16s", "upscore": "fcn32s"}
    head = next((last[name] for name in last if name + suffix in names), None)
    if head is None:
        raise _not_a_released_fcn(path, [name + suffix for name in last], layers)
    if head == "fcn8s" and "scale_pool4" + suffix in names:
        head = "fcn8s_atonce"
    missing = [name + suffix for name in HEAD_LAYERS[head] if name not in SCALES and name + suffix not in blobs]
    if missing:
        raise _not_a_released_fcn(path, missing, layers)
    return head


def _conv_kernel(path, blobs, name, in_channels, size, out=None, bias=True):
    """(kernel (out, in, size, size), flat bias or None) of layer `name`, checked against the topology; an
    InnerProduct's (out, in * size * size), legacy-padded to 4-D or not, is reshaped as surgery.transplant does."""
    found = blobs.get(name, [])
    if len(found) != 1 + bias:
        raise ValueError(f"{path}: layer {name} holds {len(found)} blobs, the released nets' {1 + bias}")
    kernel = found[0]
    if kernel.ndim >= 2 and not any(dim != 1 for dim in kernel.shape[:-2]) and \
            kernel.shape[-1] == in_channels * size * size:
        kernel = kernel.reshape(kernel.shape[-2], in_channels, size, size)
    if kernel.ndim != 4 or kernel.shape[1:] != (in_channels, size, size) or out not in (None, kernel.shape[0]):
        raise ValueError(f"{path}: layer {name} has weights of shape {found[0].shape}, the released nets' topology "
                         f"needs ({out or 'N'}, {in_channels}, {size}, {size})")
    if not bias:
        return kernel, None
    if found[1].size != kernel.shape[0]:
        raise ValueError(f"{path}: layer {name} has {found[1].size} biases for {kernel.shape[0]} outputs")
    return kernel, found[1].reshape(-1)


def _tf_kernel(kernel, block=512):
    """Caffe (out, in, kh, kw) -> TensorFlow (kh, kw, in, out); a deconvolution's (in, out, kh, kw) -> (kh, kw,
    out, in), the layout conv2d_transpose takes. A contiguous copy, so the file's buffer can go.

    The 2-D transpose goes by blocks of `block` outputs that stay in cache: on fc6 (411 MB) one np.transpose took
    1 to 3 s, the blocks 0.5 s."""
    rows = kernel.reshape(kernel.shape[0], -1)
    columns = np.empty(rows.shape[::-1], np.float32)  # (in * kh * kw, out)
    for start in range(0, rows.shape[0], block):
        columns[:, start:start + block] = rows[start:start + block].T
    return np.ascontiguousarray(columns.reshape(kernel.shape[1:] + kernel.shape[:1]).transpose(1, 2, 0, 3))


def _backbone(path, blobs):
    """({name: (TensorFlow kernel, bias)} of conv1_1..conv5_3, fc6, fc7, conv1_1 taking RGB; block widths; fc
    width), each kernel checked to take its predecessor's channels."""
    weights, in_channels = {}, 3
    for name in VGG16_CONVS:
        kernel, bias = _conv_kernel(path, blobs, name, in_channels, 3)
        weights[name], in_channels = (_tf_kernel(kernel), np.array(bias)), kernel.shape[0]
    weights["conv1_1"] = (np.ascontiguousarray(weights["conv1_1"][0][:, :, ::-1, :]), weights["conv1_1"][1])
    widths = []
    for block in range(1, len(VGG16_BLOCKS) + 1):
        block_widths = {bias.size for name, (_, bias) in weights.items() if name.startswith(f"conv{block}_")}
        if len(block_widths) != 1:
            raise ValueError(f"{path}: the layers conv{block}_* have different widths {sorted(block_widths)}, "
                             "a VGG16 block has one")
        widths.append(block_widths.pop())
    kernel, bias = _conv_kernel(path, blobs, "fc6", in_channels, 7)
    weights["fc6"] = (_tf_kernel(kernel), np.array(bias))
    kernel, bias = _conv_kernel(path, blobs, "fc7", kernel.shape[0], 1, out=kernel.shape[0])
    weights["fc7"] = (_tf_kernel(kernel), np.array(bias))
    return weights, tuple(widths), kernel.shape[0]


def _trunk_variables(weights):
    variables = {}
    for name, (kernel, bias) in weights.items():
        kernel_name, bias_name = matconvnet.checkpoint_names(name)
        variables[kernel_name], variables[bias_name] = kernel, bias
    return variables


def _head_variables(path, blobs, head, suffix, widths, fc_width):
    """{variable: array} of the head's layers (named with `suffix` in the file, without it here); score_poolN and
    scale_poolN take poolN's channels."""
    score_fr, _ = _conv_kernel(path, blobs, "score_fr" + suffix, fc_width, 1)
    num_classes, variables = score_fr.shape[0], {}
    for layer in HEAD_LAYERS[head]:
        name = layer + suffix
        if layer in DECONV_KERNELS:
            kernel, _ = _conv_kernel(path, blobs, name, num_classes, DECONV_KERNELS[layer], num_classes, bias=False)
            variables[f"{matconvnet.SCOPE}/{DECONV_VARIABLES.get(layer, layer)}/kernel"] = _tf_kernel(kernel)
        elif layer in SCALES:
            variables[f"{matconvnet.SCOPE}/{layer}/scale"] = _scale(path, blobs, name, widths[int(layer[-1]) - 1],
                                                           SCALES[layer])
        else:
            in_channels = fc_width if layer == "score_fr" else widths[int(layer[-1]) - 1]
            kernel, bias = _conv_kernel(path, blobs, name, in_channels, 1, num_classes)
            variables[f"{matconvnet.SCOPE}/{layer}/kernel"], variables[f"{matconvnet.SCOPE}/{layer}/bias"] = _tf_kernel(kernel), bias
    return variables


def _scale(path, blobs, name, channels, default):
    """At-once's per-channel skip scale: the file's blob, or the reference's constant when the layer holds none
    (a V1 file has no Scale type to store it with)."""
    found = blobs.get(name, [])
    if not found:
        return np.full(channels, default, np.float32)
    if len(found) != 1 or found[0].size != channels:
        raise ValueError(f"{path}: layer {name} holds blobs of shapes {[blob.shape for blob in found]}, the released "
                         f"nets' one of {channels} values (pool{name[-1]}'s channels)")
    return np.array(found[0].reshape(-1), np.float32)


def _known_name_and_mean(dataset, head):
    """The released net of this dataset and head (e.g. voc-fcn8s), or the head's name; the dataset's Caffe mean, or
    VOC's for other data."""
    known = [net for net in KNOWN.values() if net.dataset == dataset]
    name = next((net.name for net in known if net.head == head), HEAD_NAMES[head])
    return name, known[0].bgr_mean if known else VOC_MEAN
