"""The MatConvNet beta16 VGG files (VGG19, and VGG16 for --backbone=vgg16): their layers, their mean pixel, and
reading their weights (no TensorFlow).

`scipy.io.loadmat` gives `layers`, a (1, 43) array of 1x1 structs; a conv entry's first field is a 1x2
cell (kernel (kh, kw, in, out), bias (1, out)), and `normalization[0][0][0]` is the mean image.
"""
import os

import numpy as np
import scipy.io

from fcn_tensorflow.data import downloads

MODEL_URLS = {"vgg19": "http://www.vlfeat.org/matconvnet/models/beta16/imagenet-vgg-verydeep-19.mat",
              "vgg16": "http://www.vlfeat.org/matconvnet/models/beta16/imagenet-vgg-verydeep-16.mat"}
MODEL_URL = MODEL_URLS["vgg19"]
MODEL_FILE = downloads.url_file_name(MODEL_URL)
BETA16_KEYS = ("layers", "normalization")
BLOCKS = {"vgg19": (2, 2, 4, 4, 4), "vgg16": (2, 2, 3, 3, 3)}  # conv layers per block, per backbone
VGG19_BLOCKS = BLOCKS["vgg19"]
VGG19_WIDTHS = (64, 128, 256, 512, 512)  # the blocks' channels (VGG16's too)
IMAGENET_MEAN_PIXEL = (123.68, 116.779, 103.939)  # the mean of the beta16 file's averageImage


def layer_names(backbone="vgg19"):
    """The entries of the backbone's file, in order: conv/relu pairs, pools, then fc6 ... prob."""
    names = []
    for block, convs in enumerate(BLOCKS[backbone], start=1):
        for conv in range(1, convs + 1):
            names += ["conv%d_%d" % (block, conv), "relu%d_%d" % (block, conv)]
        names.append("pool%d" % block)
    return tuple(names + ["fc6", "relu6", "fc7", "relu7", "fc8", "prob"])


def conv_layers(backbone="vgg19"):
    """The convolutional part the network builds on: the file's entries up to the last ReLU before pool5."""
    names = layer_names(backbone)
    return names[:names.index("pool5")]


VGG19_LAYERS = layer_names("vgg19")  # the 43 entries of the file, in order
CONV_LAYERS = conv_layers("vgg19")
FC_LAYERS = ("fc6", "fc7")  # the paper's heads start conv6 and conv7 from them
SCOPE = "inference"  # every variable of the network is in it (net/spec.py names the network's others)


def variable_names(layer):
    """The kernel and bias variables (in SCOPE) of a layer of the VGG file: <conv>_w and _b; fc6: W6 and b6."""
    if layer in FC_LAYERS:
        return "W" + layer[2:], "b" + layer[2:]
    return layer + "_w", layer + "_b"


def checkpoint_names(layer):
    """The checkpoint names of variable_names(layer): inference/conv1_1_w, ..."""
    return tuple("%s/%s" % (SCOPE, name) for name in variable_names(layer))


def conv_shapes(widths=VGG19_WIDTHS, fc_width=4096, num_imagenet_classes=1000, backbone="vgg19"):
    """{conv layer name: kernel shape (kh, kw, in, out)} of a VGG whose blocks have `widths` channels."""
    shapes, in_channels = {}, 3
    for block, convs in enumerate(BLOCKS[backbone], start=1):
        for conv in range(1, convs + 1):
            shapes["conv%d_%d" % (block, conv)] = (3, 3, in_channels, widths[block - 1])
            in_channels = widths[block - 1]
    shapes.update(fc6=(7, 7, in_channels, fc_width), fc7=(1, 1, fc_width, fc_width),
                  fc8=(1, 1, fc_width, num_imagenet_classes))
    return shapes


def vgg_file(model_dir, model_url=MODEL_URL):
    """The VGG file of --model_dir: model_dir itself when it names a file (a .mat), else model_url's file in it."""
    if model_dir.endswith(".mat") or os.path.isfile(model_dir):
        return model_dir
    return downloads.local_path(model_dir, model_url)


def get_model_data(dir_path, model_url=MODEL_URL, timeout=downloads.DOWNLOAD_TIMEOUT):
    """The beta16 VGG file of dir_path (vgg_file) as scipy.io.loadmat reads it; downloaded from model_url into the
    folder dir_path if absent, never into a file dir_path names."""
    filepath = vgg_file(dir_path, model_url)
    try:
        if filepath != dir_path:
            downloads.maybe_download_and_extract(dir_path, model_url, timeout=timeout)
        elif not os.path.exists(filepath):
            raise FileNotFoundError("no such file")
    except OSError as error:
        raise IOError("VGG weights not found at %s (%s). Download %s by hand and put it at that path, "
                      "or pass --model_dir." % (filepath, error, model_url))
    try:
        data = scipy.io.loadmat(filepath)
    except Exception as error:  # scipy reports broken files with many exception types
        raise ValueError("%s cannot be read as a .mat file (%s). Delete it and run again to download it, or put "
                         "a good copy there." % (filepath, error))
    missing = [key for key in BETA16_KEYS if key not in data]
    if missing:
        found = sorted(key for key in data if not key.startswith("__"))
        raise ValueError("%s is not a MatConvNet beta16 VGG file: keys %s missing, found %s. "
                         "Use %s from matconvnet/models/beta16/."
                         % (filepath, missing, found, MODEL_FILE))
    return data


def vgg_weights_and_mean(model_data, wanted, backbone="vgg19"):
    """(name -> (kernel (kh, kw, in, out), flat bias)) for the conv and fc layers in `wanted`, and the RGB mean
    pixel."""
    layers = np.squeeze(model_data["layers"])
    if len(layers) != len(layer_names(backbone)):
        raise ValueError("the file holds %d layers, a %s file %d: pass the --backbone it is for"
                         % (len(layers), backbone, len(layer_names(backbone))))
    weights = {}
    for index, name in enumerate(layer_names(backbone)):
        if name in wanted and name.startswith(("conv", "fc")):
            kernel, bias = layers[index][0][0][0][0]
            weights[name] = (np.asarray(kernel, np.float32), np.asarray(bias, np.float32).reshape(-1))
    mean_image = model_data["normalization"][0][0][0]
    return weights, np.mean(mean_image, axis=(0, 1))


def load_vgg(model_dir, model_url, transpose_kernels=True, fc_width=None, timeout=downloads.DOWNLOAD_TIMEOUT,
             backbone="vgg19"):
    """The backbone's conv weights {name: (kernel, bias)} up to pool5 and the RGB mean pixel from the file in model_dir;
    transpose_kernels swaps each kernel's first two axes, as the original did (the file holds them as TensorFlow
    wants them: height, width, in, out).

    With fc_width, also fc6 and fc7 as conv kernels (7x7 and 1x1) when they are fc_width wide; otherwise a line
    says conv6 and conv7 start at random."""
    model_data = get_model_data(model_dir, model_url, timeout)
    try:
        weights, mean_pixel = vgg_weights_and_mean(model_data, conv_layers(backbone) + (FC_LAYERS if fc_width else ()),
                                                   backbone)
    except ValueError as error:
        raise ValueError("%s: %s" % (vgg_file(model_dir, model_url), error)) from None
    if fc_width and weights["fc6"][0].shape[-1] != fc_width:
        print("conv6 and conv7 start at random: --fc_width=%d is not the width %d of fc6 and fc7 in %s"
              % (fc_width, weights["fc6"][0].shape[-1], vgg_file(model_dir, model_url)))
        weights = {name: pair for name, pair in weights.items() if name not in FC_LAYERS}
    if transpose_kernels:
        weights = {name: (np.transpose(kernel, (1, 0, 2, 3)), bias) for name, (kernel, bias) in weights.items()}
    return weights, mean_pixel

