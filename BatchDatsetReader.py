"""BatchDatset: batches of (image, annotation) arrays from a list of records (name kept from the original).

Images come out as uint8 (N, H, W, 3), annotations as uint8 (N, H, W, 1) of class indices. Both are
resized with nearest-neighbour interpolation, so labels never blend into classes that are not there.

Nothing is read up front: background threads read and resize the next few batches while the current
step runs, so memory and start-up time do not grow with the dataset. A pair that cannot be used is
skipped with one line and the batch is filled from the following pairs; too many of them is an error.
"""
import collections
import queue
import threading

import numpy as np
from PIL import Image

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")  # what the listings and predict mode take as images
PREFETCH_BATCHES = 4  # batches read ahead while a step runs
READER_THREADS = 2


class DataError(Exception):
    """The data cannot be used as it is; the message says what to fix."""


class BadPairError(Exception):
    """One image/annotation pair that cannot be used: `path` names the file, `reason` what is wrong."""

    def __init__(self, path, reason):
        super(BadPairError, self).__init__("%s: %s" % (path, reason))
        self.path, self.reason = path, reason


def read_image(path):
    """An RGB uint8 (H, W, 3) array from any image file: grayscale repeated, alpha dropped, palette and CMYK
    converted."""
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def read_annotation(path):
    """A (H, W) array of class indices from a label PNG (grayscale, palette indices or the first channel)."""
    with Image.open(path) as annotation:
        labels = np.asarray(annotation)
    if labels.ndim == 3:
        labels = labels[..., 0]
    return labels


def resize_nearest(array, size):
    """Resize (H, W) or (H, W, C) uint8 with nearest-neighbour interpolation; size is an int (square) or
    (width, height)."""
    if np.isscalar(size):
        size = (size, size)
    return np.asarray(Image.fromarray(array).resize(tuple(size), Image.NEAREST))


def _read(read, path):
    try:
        return read(path)
    except Exception as error:  # PIL reports broken files with many exception types
        raise BadPairError(path, "%s (%s)" % (error, type(error).__name__))


def load_pair(record, resize_size=None, num_classes=None):
    """(image, annotation (H, W, 1), warning or None) for one record; BadPairError if it cannot be used.

    An annotation of another size than its image is resized to the image's size, with a warning."""
    image = _read(read_image, record["image"])
    labels = _read(read_annotation, record["annotation"])
    if num_classes and labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise BadPairError(record["annotation"], "labels %d..%d outside 0..%d"
                           % (labels.min(), labels.max(), num_classes - 1))
    labels = labels.astype(np.uint8)
    warning = None
    if labels.shape != image.shape[:2]:
        warning = ("Warning: %s is %dx%d but its image is %dx%d: resized like the image"
                   % (record["annotation"], labels.shape[1], labels.shape[0], image.shape[1], image.shape[0]))
        labels = resize_nearest(labels, (image.shape[1], image.shape[0]))
    if resize_size:
        image, labels = resize_nearest(image, resize_size), resize_nearest(labels, resize_size)
    return image, labels[..., np.newaxis], warning


class _Slot(object):
    """One record being read by a background thread; `epoch` and `position` place it in the epoch's order."""

    def __init__(self, index, epoch=0, order=None, position=0):
        self.index, self.epoch, self.order, self.position = index, epoch, order, position
        self.done = threading.Event()
        self.cancelled = False
        self.pair = self.error = None


def _read_slots(tasks, load):
    while True:
        slot = tasks.get()
        if slot is None:
            return
        try:
            if not slot.cancelled:
                slot.pair = load(slot.index, slot.epoch)
        except Exception as error:  # handed to the caller, which reports or raises it
            slot.error = error
        finally:
            slot.done.set()


class BatchDatset(object):

    def __init__(self, records_list, image_options=None):
        """records_list: dicts with 'image' and 'annotation' paths.
        image_options: {'resize': bool, 'resize_size': int} resize to a square of that size;
        'num_classes': labels must lie in 0..num_classes-1; 'max_bad_fraction' (0.01): stop with a
        DataError once more than this fraction of the pairs turned out bad; 'augment': called on each pair
        read, as augment(image, annotation, (index, epoch), pad label) (see augment.Augmentation)."""
        self.files = records_list
        self.image_options = image_options or {}
        self.batch_offset = 0
        self.epochs_completed = 0
        self.bad_pairs = collections.OrderedDict()  # record index -> BadPairError, in the order found
        self._warned = set()  # warnings already printed, so each is printed once
        self._order = list(range(len(records_list)))  # the first epoch keeps the listed order, as the original
        self._cursor = (0, self._order, 0)  # (epoch, order, position) of the next record to read ahead
        self._window = collections.deque()  # slots read ahead for next_batch, oldest first
        self._tasks = queue.Queue()
        self._threads = [threading.Thread(target=_read_slots, args=(self._tasks, self._load), daemon=True)
                         for _ in range(READER_THREADS)]
        for thread in self._threads:
            thread.start()

    def _load(self, index, epoch=0):
        resize_size = int(self.image_options["resize_size"]) if self.image_options.get("resize") else None
        image, annotation, warning = load_pair(self.files[index], resize_size, self.image_options.get("num_classes"))
        augment = self.image_options.get("augment")
        if augment:  # labels are padded with the ignore label, or 0 where there is none
            image, annotation = augment(image, annotation, (index, epoch), self.image_options.get("ignore_label") or 0)
        return image, annotation, warning

    def _submit(self, index, epoch=0, order=None, position=0):
        slot = _Slot(index, epoch, order, position)
        self._tasks.put(slot)
        return slot

    def _take(self, slot):
        """The slot's (image, annotation), or None after reporting a bad pair."""
        slot.done.wait()
        if slot.error is None:
            image, annotation, warning = slot.pair
            if warning and warning not in self._warned:
                self._warned.add(warning)
                print(warning)
            return image, annotation
        if not isinstance(slot.error, BadPairError):
            raise slot.error
        if slot.index not in self.bad_pairs:
            self.bad_pairs[slot.index] = slot.error
            print("Skipping %s: %s" % (slot.error.path, slot.error.reason))
            self._check_bad_fraction()
        return None

    def _check_bad_fraction(self):
        max_fraction = self.image_options.get("max_bad_fraction", 0.01)
        if len(self.bad_pairs) > max_fraction * len(self.files):
            raise DataError("%d of %d image/annotation pairs are bad, more than %g%%; the first is %s. Something is "
                            "wrong with the data as a whole: check --data_dir."
                            % (len(self.bad_pairs), len(self.files), 100 * max_fraction,
                               next(iter(self.bad_pairs.values()))))

    def _check_enough_for(self, batch_size):
        good = len(self.files) - len(self.bad_pairs)
        if good < batch_size:
            raise DataError("Only %d of %d image/annotation pairs can be read, fewer than the batch size %d: "
                            "lower --batch_size or add data." % (good, len(self.files), batch_size))

    def _read_ahead(self, batch_size):
        """Keep PREFETCH_BATCHES batches read ahead, continuing the epoch order."""
        while len(self._window) < PREFETCH_BATCHES * batch_size:
            epoch, order, position = self._cursor
            if position == len(order):
                self._check_enough_for(batch_size)
                order = [index for index in range(len(self.files)) if index not in self.bad_pairs]
                np.random.shuffle(order)
                epoch, position = epoch + 1, 0
            self._window.append(self._submit(order[position], epoch, order, position))
            self._cursor = (epoch, order, position + 1)

    def get_records(self):
        """All readable pairs in the listed order, as two arrays (loads the whole split into memory)."""
        batches = list(self.batches(16))
        return np.concatenate([images for images, _ in batches]), np.concatenate([labels for _, labels in batches])

    def batches(self, batch_size):
        """Every readable pair once, in the listed order, in batches (the last may be smaller)."""
        indexes = iter(range(len(self.files)))
        window = collections.deque()
        images, annotations = [], []
        while True:
            for index in indexes:
                window.append(self._submit(index))
                if len(window) == PREFETCH_BATCHES * batch_size:
                    break
            if not window:
                break
            pair = self._take(window.popleft())
            if pair is not None:
                images.append(pair[0])
                annotations.append(pair[1])
            if len(images) == batch_size or (images and not window):
                yield np.stack(images), np.stack(annotations)
                images, annotations = [], []

    def reset_batch_offset(self, offset=0):
        for slot in self._window:
            slot.cancelled = True
        self._window.clear()
        self._cursor = (self.epochs_completed, self._order, offset)
        self.batch_offset = offset

    def next_batch(self, batch_size):
        """The next batch in order; at the end of an epoch shuffle and start again (the tail is dropped)."""
        self._check_enough_for(batch_size)
        images, annotations = [], []
        while len(images) < batch_size:
            self._read_ahead(batch_size)
            slot = self._window.popleft()
            if slot.epoch > self.epochs_completed:
                images, annotations = [], []
                self.epochs_completed = slot.epoch
                print("****************** Epochs completed: " + str(self.epochs_completed) + "******************")
            self._order, self.batch_offset = slot.order, slot.position + 1
            pair = self._take(slot)
            if pair is not None:
                images.append(pair[0])
                annotations.append(pair[1])
        self._read_ahead(batch_size)
        return np.stack(images), np.stack(annotations)

    def get_random_batch(self, batch_size):
        """batch_size pairs drawn with replacement (so the split may be smaller than the batch)."""
        self._check_enough_for(1)
        images, annotations = [], []
        while len(images) < batch_size:
            indexes = [index for index in np.random.randint(0, len(self.files), size=batch_size - len(images))
                       if index not in self.bad_pairs]
            for pair in [self._take(slot) for slot in [self._submit(index) for index in indexes]]:
                if pair is not None:
                    images.append(pair[0])
                    annotations.append(pair[1])
        return np.stack(images), np.stack(annotations)

    def summary(self):
        """One line per skipped pair, after a count; empty when none was skipped."""
        if not self.bad_pairs:
            return ""
        return "\n".join(["Skipped %d of %d image/annotation pairs:" % (len(self.bad_pairs), len(self.files))] +
                         ["  %s: %s" % (error.path, error.reason) for error in self.bad_pairs.values()])

    def close(self):
        """Stop the reading threads and print the summary of skipped pairs."""
        self.reset_batch_offset(self.batch_offset)
        for _ in self._threads:
            self._tasks.put(None)
        for thread in self._threads:
            thread.join(timeout=10)
        if self.bad_pairs:
            print(self.summary())

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()
