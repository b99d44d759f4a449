"""Helpers shared by FCN.py: downloads, the MatConvNet VGG file, layer wrappers, summaries, images.

The names are the original FCN.tensorflow's (`maybe_download_and_extract`, `get_model_data`,
`conv2d_basic`, ...), so code written against it still reads the same.
"""
import os
import shutil
import sys
import tempfile
import time
import urllib.request
import zipfile

import imageio.v2 as imageio
import numpy as np
import scipy.io
import tensorflow as tf

PROJECT_DIR = os.path.dirname(os.path.abspath(__file__))
ADE20K_DIR = os.path.join(PROJECT_DIR, "ade20k")
VGG_BETA16_KEYS = ("layers", "normalization")


# ---------------------------------------------------------------- downloads

def download(url, dest_path, out=None):
    """Fetch url to dest_path through a temporary name, so a cut download never looks whole."""
    out = out or sys.stdout
    partial_path = dest_path + ".part"
    started = time.time()
    with urllib.request.urlopen(url) as response, open(partial_path, "wb") as partial:
        total = int(response.headers.get("Content-Length") or 0)
        done = 0
        while True:
            chunk = response.read(1 << 20)
            if not chunk:
                break
            partial.write(chunk)
            done += len(chunk)
            _print_progress(out, os.path.basename(dest_path), done, total, time.time() - started)
    if total and done != total:
        raise IOError("Download of %s stopped at %d of %d bytes; %s was kept aside. Run again to retry."
                      % (url, done, total, partial_path))
    os.replace(partial_path, dest_path)
    out.write("\nSuccessfully downloaded %s (%d bytes)\n" % (os.path.basename(dest_path), done))
    return dest_path


def _print_progress(out, name, done, total, seconds):
    rate = done / max(seconds, 1e-6) / 1e6
    if total:
        out.write("\r>> Downloading %s %5.1f%% (%.1f MB/s)" % (name, 100.0 * done / total, rate))
    else:
        out.write("\r>> Downloading %s %.1f MB (%.1f MB/s)" % (name, done / 1e6, rate))
    out.flush()


def progress(items, total, label, out=None):
    """Yield items while printing `label done/total (rate images/s)` on one line of out (stderr)."""
    out = out or sys.stderr
    started = time.time()
    for done, item in enumerate(items, start=1):
        yield item
        out.write("\r%s %d/%d (%.2f images/s)" % (label, done, total, done / max(time.time() - started, 1e-6)))
        out.flush()
    out.write("\n")


def local_path(dir_path, url):
    """Where the file of `url` lives in dir_path: under the URL's own file name."""
    return os.path.join(dir_path, url.split("/")[-1])


def maybe_download_and_extract(dir_path, url_name, is_zipfile=False):
    """Download url_name into dir_path unless its file is there; with is_zipfile, extract it too.

    A zip placed by hand is extracted as well, unless the folder it holds (the zip's name without
    extension) is already there. Extraction goes to a temporary folder first, so a cut extraction
    never looks complete."""
    os.makedirs(dir_path, exist_ok=True)
    filepath = local_path(dir_path, url_name)
    if not os.path.exists(filepath):
        download(url_name, filepath)
    extracted = os.path.splitext(filepath)[0]
    if is_zipfile and not os.path.exists(extracted):
        print("Extracting %s ..." % filepath)
        partial = tempfile.mkdtemp(prefix=".extracting-", dir=dir_path)
        try:
            with zipfile.ZipFile(filepath) as archive:
                archive.extractall(partial)
            for name in os.listdir(partial):
                os.replace(os.path.join(partial, name), os.path.join(dir_path, name))
        finally:
            shutil.rmtree(partial, ignore_errors=True)
    return filepath


# ---------------------------------------------------------------- the MatConvNet VGG file

def get_model_data(dir_path, model_url):
    """Load the MatConvNet beta16 VGG file from dir_path, downloading it from model_url if absent."""
    filepath = local_path(dir_path, model_url)
    try:
        maybe_download_and_extract(dir_path, model_url)
    except (IOError, OSError, ValueError) as error:
        raise IOError("VGG weights not found at %s and the download from %s failed (%s). "
                      "Download the file by hand and put it at that path, or pass --model_dir."
                      % (filepath, model_url, error))
    data = scipy.io.loadmat(filepath)
    missing = [key for key in VGG_BETA16_KEYS if key not in data]
    if missing:
        found = sorted(key for key in data if not key.startswith("__"))
        raise ValueError("%s is not a MatConvNet beta16 VGG file: keys %s missing, found %s. "
                         "Use imagenet-vgg-verydeep-19.mat from matconvnet/models/beta16/."
                         % (filepath, missing, found))
    return data


def vgg_weights_and_mean(model_data, layer_names):
    """(name -> (kernel HWIO, flat bias)) for the conv layers in layer_names, and the RGB mean pixel."""
    layers = np.squeeze(model_data["layers"])
    weights = {}
    for index, name in enumerate(layer_names):
        if name.startswith("conv"):
            kernel, bias = layers[index][0][0][0][0]
            weights[name] = (np.asarray(kernel, np.float32), np.asarray(bias, np.float32).reshape(-1))
    mean_image = model_data["normalization"][0][0][0]
    return weights, np.mean(mean_image, axis=(0, 1))


# ---------------------------------------------------------------- variables and layers

def weight_variable(shape, stddev=0.02, name=None):
    return tf.Variable(tf.random.truncated_normal(shape, stddev=stddev), name=name)


def bias_variable(shape, name=None):
    return tf.Variable(tf.zeros(shape), name=name)


def pretrained_variable(shape, name):
    """A variable whose value is fed in after the session starts (see PretrainedLoader)."""
    return tf.Variable(tf.zeros(shape), name=name)


class PretrainedLoader(object):
    """Assigns numpy values to variables through feeds, so weights never enter the GraphDef."""

    def __init__(self, variables_and_values):
        self._feeds = {}
        assigns = []
        with tf.name_scope("load_pretrained"):
            for variable, value in variables_and_values:
                placeholder = tf.compat.v1.placeholder(tf.float32, value.shape)
                assigns.append(variable.assign(placeholder))
                self._feeds[placeholder] = value
        self.op = tf.group(*assigns)

    def load(self, sess):
        sess.run(self.op, feed_dict=self._feeds)

    def release(self):
        """Let go of the numpy values (hundreds of MB for VGG19) once the session holds the weights."""
        self._feeds = {}


def conv2d_basic(x, W, bias):
    conv = tf.nn.conv2d(x, W, strides=[1, 1, 1, 1], padding="SAME")
    return tf.nn.bias_add(conv, bias)


def conv2d_transpose_strided(x, W, b, output_shape, stride=2, as_matmul=False):
    if as_matmul and W.shape[0] == W.shape[1] == 2 * stride:
        conv = conv2d_transpose_as_matmul(x, W, output_shape, stride)
    else:
        conv = tf.nn.conv2d_transpose(x, W, output_shape, strides=[1, stride, stride, 1], padding="SAME")
    return tf.nn.bias_add(conv, b)


def conv2d_as_matmul(x, W, padding="SAME"):
    """tf.nn.conv2d with stride 1 as one matmul over image patches.

    For big kernels on small maps (conv6: 7x7x512x4096 on 7x7, conv7: 1x1x4096x4096) oneDNN's convolution
    spends most of its time reordering the weights into its blocked layout at every step; a matmul reads
    them as they are."""
    kh, kw, c_in, c_out = W.shape
    patches = x if kh == kw == 1 else tf.image.extract_patches(x, [1, kh, kw, 1], [1, 1, 1, 1], [1, 1, 1, 1], padding)
    shape = tf.shape(patches)
    out = tf.matmul(tf.reshape(patches, [-1, kh * kw * c_in]), tf.reshape(W, [kh * kw * c_in, c_out]))
    return tf.reshape(out, tf.concat([shape[:3], [c_out]], axis=0))


def conv2d_transpose_as_matmul(x, W, output_shape, stride):
    """tf.nn.conv2d_transpose (kernel 2*stride, SAME) as a 2x2 convolution to stride*stride output phases.

    Output row stride*q + r - pad_top receives x[q] * W[r] + x[q-1] * W[r + stride]; so a 2x2
    convolution of x (padded by one) gives every phase as channels, depth_to_space interleaves them
    and a slice removes the padding. Same sums as tf.nn.conv2d_transpose, run as a plain matmul."""
    s = stride
    c_out, c_in = W.shape[2], W.shape[3]
    taps = tf.reverse(tf.reshape(W, [2, s, 2, s, c_out, c_in]), axis=[0, 2])  # tap 0 looks at x[q-1]
    kernel = tf.reshape(tf.transpose(taps, [0, 2, 5, 1, 3, 4]), [2, 2, c_in, s * s * c_out])
    phases = conv2d_as_matmul(tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]]), kernel, padding="VALID")
    full = tf.nn.depth_to_space(phases, s)
    x_shape = tf.shape(x)
    pad_top = ((x_shape[1] - 1) * s + 2 * s - output_shape[1]) // 2
    pad_left = ((x_shape[2] - 1) * s + 2 * s - output_shape[2]) // 2
    out = tf.slice(full, tf.stack([0, pad_top, pad_left, 0]), output_shape)
    out.set_shape([None, None, None, c_out])
    return out


def avg_pool_2x2(x):
    return tf.nn.avg_pool2d(x, ksize=2, strides=2, padding="SAME")


def max_pool_2x2(x):
    return tf.nn.max_pool2d(x, ksize=2, strides=2, padding="SAME")


def process_image(image, mean_pixel):
    return image - mean_pixel


# ---------------------------------------------------------------- summaries

def image_summary(tag, images, max_outputs=2):
    """An image summary tagged exactly `tag` (tf.summary.image renames it when an op has that name)."""
    return tf.raw_ops.ImageSummary(tag=tag, tensor=images, max_images=max_outputs)


def add_activation_summary(var):
    """Called inside the variable's name scope, which TensorFlow adds to the tag itself."""
    name = var.op.name.rsplit("/", 1)[-1]
    tf.compat.v1.summary.histogram(name + "/activation", var)
    tf.compat.v1.summary.scalar(name + "/sparsity", tf.nn.zero_fraction(var))


def add_gradient_summary(grad, var):
    if grad is not None:
        tf.compat.v1.summary.histogram(var.op.name + "/gradient", grad)


# ---------------------------------------------------------------- ADE20K classes and colours

def ade20k_class_names():
    """151 short names: index 0 is "other", then the 150 classes of objectInfo150.csv."""
    names = ["other"]
    with open(os.path.join(ADE20K_DIR, "objectInfo150.csv")) as csv_file:
        next(csv_file)
        for line in csv_file:
            names.append(line.rstrip("\n").split(",")[-1].split(";")[0])
    return names


def ade20k_palette():
    """uint8 (151, 3): black for "other", then the official colour of each class."""
    colors = scipy.io.loadmat(os.path.join(ADE20K_DIR, "color150.mat"))["colors"]
    return np.concatenate([np.zeros((1, 3), np.uint8), colors.astype(np.uint8)])


def colorize(labels, palette):
    """Label map (H, W) or (H, W, 1) of class indices -> RGB uint8 (H, W, 3)."""
    labels = np.asarray(labels)
    if labels.ndim == 3:
        labels = labels[..., 0]
    return palette[np.clip(labels, 0, len(palette) - 1)]


def overlay(image, labels, palette, opacity=0.5):
    """The label colours blended over an RGB photo of the same height and width (uint8)."""
    blend = (1 - opacity) * np.asarray(image, np.float32) + opacity * colorize(labels, palette)
    return np.round(blend).astype(np.uint8)


# ---------------------------------------------------------------- image files

def save_image(image, save_dir, name):
    """Save an image as save_dir/name.png (uint8)."""
    path = os.path.join(save_dir, name + ".png")
    imageio.imwrite(path, np.asarray(image).astype(np.uint8))
    return path


def side_by_side(pictures, palette, class_names, legend_columns=3, min_height=192):
    """One RGB picture: the photo, then each label map coloured, then a legend of the classes shown."""
    from PIL import Image, ImageDraw

    photo, label_maps = np.asarray(pictures[0], np.uint8), [np.asarray(p) for p in pictures[1:]]
    panels = [photo] + [colorize(labels, palette) for labels in label_maps]
    zoom = max(1, min_height // photo.shape[0])  # small inputs are enlarged so the legend stays readable
    row = np.concatenate(panels, axis=1).repeat(zoom, axis=0).repeat(zoom, axis=1)
    height = row.shape[0]
    present = sorted(set(np.unique(np.concatenate([labels.ravel() for labels in label_maps])).tolist()))
    line_height, swatch = 14, 10
    rows = (len(present) + legend_columns - 1) // legend_columns
    canvas = Image.new("RGB", (row.shape[1], height + 6 + rows * line_height), (255, 255, 255))
    canvas.paste(Image.fromarray(row), (0, 0))
    draw = ImageDraw.Draw(canvas)
    column_width = row.shape[1] // legend_columns
    for position, label in enumerate(present):
        x = (position % legend_columns) * column_width + 4
        y = height + 4 + (position // legend_columns) * line_height
        draw.rectangle([x, y + 1, x + swatch, y + 1 + swatch], fill=tuple(int(c) for c in palette[label]),
                       outline=(0, 0, 0))
        name = class_names[label] if label < len(class_names) else str(label)
        draw.text((x + swatch + 4, y), "%d %s" % (label, name), fill=(0, 0, 0))
    return np.asarray(canvas)
