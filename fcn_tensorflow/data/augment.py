"""Random mirror, scale and crop of training pairs, as the paper's successors train FCNs (no TensorFlow).

The reader threads call an Augmentation on each training pair (BatchDatset's image_options["augment"]).
Its draws depend only on the seed, the pair's index and the epoch, so a seeded run augments the same way
whichever thread reads which pair, and every epoch sees each image differently.
"""
import numpy as np
from PIL import Image

from fcn_tensorflow.data import reader


def scale_range(texts):
    """(smallest, largest) from two texts such as ["0.5", "2.0"], or None unless 0 < smallest <= largest."""
    try:
        smallest, largest = (float(text) for text in texts)
    except (TypeError, ValueError):
        return None
    return (smallest, largest) if 0 < smallest <= largest else None


class Augmentation(object):
    """A random horizontal mirror, a random scale in scale_range, then a random crop_size square of the pair.

    Where the scaled pair is smaller than the square, the image is padded with the mean pixel (zero once
    centred) and the labels with the reader's ignore label, so the padding teaches nothing wrong."""

    def __init__(self, crop_size, scale_range=(0.5, 2.0), mean_pixel=(0, 0, 0), seed=None):
        self.crop_size = crop_size
        self.scale_range = scale_range
        self.mean_pixel = np.round(mean_pixel).astype(np.uint8)
        self.seed = np.random.SeedSequence().entropy if seed is None else seed

    def __call__(self, image, annotation, key, pad_label=0):
        """image uint8 (H, W, 3) and annotation (H, W, 1) -> both crop_size square; key: (index, epoch) of the pair."""
        rng = np.random.default_rng([self.seed] + [int(part) for part in key])
        labels = annotation[..., 0]
        if rng.random() < 0.5:
            image, labels = image[:, ::-1], labels[:, ::-1]
        scale = rng.uniform(*self.scale_range)
        size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))  # (width, height)
        image = reader.resize(image, size, Image.BILINEAR)
        labels = reader.resize(labels, size)
        image = _pad_to(image, self.crop_size, self.mean_pixel)
        labels = _pad_to(labels, self.crop_size, pad_label)
        top = rng.integers(0, image.shape[0] - self.crop_size + 1)
        left = rng.integers(0, image.shape[1] - self.crop_size + 1)
        window = (slice(top, top + self.crop_size), slice(left, left + self.crop_size))
        return image[window], labels[window][..., np.newaxis]


def _pad_to(array, size, value):
    """array padded at the bottom and right with `value` to at least size x size."""
    height, width = array.shape[:2]
    padded = np.empty((max(height, size), max(width, size)) + array.shape[2:], array.dtype)
    padded[...] = value
    padded[:height, :width] = array
    return padded
