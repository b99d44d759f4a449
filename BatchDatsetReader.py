"""BatchDatset: batches of (image, annotation) arrays from a list of records (name kept from the original).

Images come out as uint8 (N, H, W, 3), annotations as uint8 (N, H, W, 1) of class indices. Both are
resized with nearest-neighbour interpolation, so labels never blend into classes that are not there.
"""
from __future__ import print_function

import imageio.v2 as imageio
import numpy as np
from PIL import Image


def read_image(path):
    """An RGB uint8 (H, W, 3) array from any image file: grayscale is repeated, palettes looked up, alpha dropped."""
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def read_annotation(path):
    """A (H, W) array of class indices from a label PNG."""
    annotation = np.asarray(imageio.imread(path))
    if annotation.ndim == 3:
        annotation = annotation[..., 0]
    return annotation


def resize_nearest(array, size):
    """Resize (H, W) or (H, W, C) uint8 to (size, size) with nearest-neighbour interpolation."""
    return np.asarray(Image.fromarray(array).resize((size, size), Image.NEAREST))


class BatchDatset(object):

    def __init__(self, records_list, image_options=None):
        """records_list: dicts with 'image' and 'annotation' paths.
        image_options: {'resize': bool, 'resize_size': int}; resize to a square of that size."""
        self.files = records_list
        self.image_options = image_options or {}
        self.batch_offset = 0
        self.epochs_completed = 0
        self._read_images()

    def _read_images(self):
        pairs = [self._transform(record) for record in self.files]
        self.images = np.array([image for image, _ in pairs])
        self.annotations = np.array([annotation for _, annotation in pairs])

    def _transform(self, record):
        image = read_image(record["image"])
        annotation = read_annotation(record["annotation"])
        if self.image_options.get("resize"):
            size = int(self.image_options["resize_size"])
            image, annotation = resize_nearest(image, size), resize_nearest(annotation, size)
        return image, annotation[..., np.newaxis]

    def get_records(self):
        return self.images, self.annotations

    def reset_batch_offset(self, offset=0):
        self.batch_offset = offset

    def next_batch(self, batch_size):
        """The next batch in order; at the end of an epoch shuffle and start again (the tail is dropped)."""
        start = self.batch_offset
        self.batch_offset += batch_size
        if self.batch_offset > self.images.shape[0]:
            self.epochs_completed += 1
            print("****************** Epochs completed: " + str(self.epochs_completed) + "******************")
            perm = np.arange(self.images.shape[0])
            np.random.shuffle(perm)
            self.images = self.images[perm]
            self.annotations = self.annotations[perm]
            start = 0
            self.batch_offset = batch_size
        end = self.batch_offset
        return self.images[start:end], self.annotations[start:end]

    def get_random_batch(self, batch_size):
        indexes = np.random.randint(0, self.images.shape[0], size=[batch_size]).tolist()
        return self.images[indexes], self.annotations[indexes]
