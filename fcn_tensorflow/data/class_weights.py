"""--class_weights: a weight per class for the loss, against class imbalance. median_frequency is the median
frequency balancing of Eigen & Fergus (ICCV 2015): weight_c = median(frequency) / frequency_c, where frequency_c
is the pixels of class c over the pixels of the training images that hold c (the ignore label counts in neither).
A file gives one weight a line instead.

No TensorFlow here.
"""
import collections

import numpy as np

from fcn_tensorflow import console
from fcn_tensorflow.data import reader

MEDIAN_FREQUENCY = "median_frequency"

# Over the training annotations: pixels of each class, and pixels of the images holding it (the ignore label left
# out of both); `pairs` counted, those that could not be read left out.
PixelCounts = collections.namedtuple("PixelCounts", ["pixels", "image_pixels", "pairs"])


def pixel_counts(records, num_classes, ignore_label=None, label_colors=None, label_values=None):
    """The PixelCounts of the records' annotations, read one at a time (the images are not read), with progress on
    stderr. A pair whose labels cannot be used is left out: training skips it too, and says so."""
    pixels, image_pixels, pairs = np.zeros(num_classes, np.int64), np.zeros(num_classes, np.int64), 0
    for record in console.progress(records, len(records), "Counting the pixels of each class"):
        try:
            labels = reader.read_labels(record, num_classes, ignore_label, label_colors, label_values)
        except reader.BadPairError:
            continue
        labels = labels[labels != ignore_label] if ignore_label is not None else labels.ravel()
        counts = np.bincount(labels, minlength=num_classes)
        pixels += counts
        image_pixels[counts > 0] += labels.size
        pairs += 1
    return PixelCounts(pixels, image_pixels, pairs)


def median_frequency(counts):
    """Eigen & Fergus's weights from PixelCounts: median frequency / frequency of each class; a class without a
    pixel has no frequency and weighs 0 (it is never a label, so its weight never counts)."""
    present = counts.pixels > 0
    if not present.any():
        raise reader.DataError("The training annotations hold no labelled pixel: no class frequency to balance")
    frequency = counts.pixels[present] / counts.image_pixels[present]
    weights = np.zeros(len(counts.pixels))
    weights[present] = np.median(frequency) / frequency
    return weights


def read_weights_file(path, num_classes):
    """The weights of a text file, one number >= 0 a line (line k: class k; blank lines and # comments skipped);
    ValueError unless it holds num_classes of them."""
    weights = []
    with open(path) as lines:
        for number, line in enumerate(lines, start=1):
            text = line.split("#")[0].strip()
            if not text:
                continue
            try:
                weight = float(text)
            except ValueError:
                weight = -1.0
            if not 0 <= weight < np.inf:
                raise ValueError("--class_weights=%s line %d: expected a number >= 0, found %r" % (path, number, text))
            weights.append(weight)
    if len(weights) != num_classes:
        raise ValueError("--class_weights=%s holds %d weights but the model has %d classes"
                         % (path, len(weights), num_classes))
    return weights


def describe(weights, class_names, source):
    """The one line that says which weights the loss uses, and where they came from."""
    return "Class weights (%s): %s" % (source, ", ".join("%s %.4g" % (name, weight)
                                                        for name, weight in zip(class_names, weights)))
