"""BatchDatset: batches of (image, annotation) arrays from a list of records (name kept from the original).

Images come out as uint8 (N, H, W, 3), annotations as uint8 (N, H, W, 1) of class indices. Both are
resized with nearest-neighbour interpolation, so labels never blend into classes that are not there.
A record names files (an image; a label PNG of indices or colours, or an SBD .mat, read by labels.py) or, with
an 'index', one item of .npy arrays, read through a memory map.

Nothing is read up front: background threads read and resize the next few batches while the current
step runs, so memory and start-up time do not grow with the dataset. A pair that cannot be used is
skipped with one line and the batch is filled from the following pairs; too many of them is an error.
"""
import collections
import os
import queue
import threading

import numpy as np
from PIL import Image

from fcn_tensorflow.data.errors import BadPairError, DataError
from fcn_tensorflow.data.labels import check_labels, labels_from_values, read_annotation

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")  # what the listings and predict mode take as images
PREFETCH_BATCHES = 4  # batches read ahead while a step runs
MAX_BAD_FRACTION = 0.01  # of the pairs listed: more bad ones than this stop a run (check_bad_fraction)...
MAX_BAD_PAIRS_SKIPPED = 2  # ... when there are also more than this many: one bad pair does not stop a small split
MAX_CLASSES_NAMED = 10  # in the warning about the classes the first epoch has no pixel of


def usable_cores():
    """The CPU cores this process may run on (its affinity where the system says, else all): the reader's threads."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def read_image(path):
    """An RGB uint8 (H, W, 3) array from any image file: grayscale repeated, alpha dropped, palette and CMYK
    converted."""
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def read_array_image(path, index):
    """Image `index` of an [N, H, W, 3] (or grey [N, H, W(, 1)]) .npy, memory-mapped so only that image is read;
    floats (0..255) are rounded to uint8."""
    image = np.array(np.load(path, mmap_mode="r")[index])
    if image.dtype != np.uint8:
        image = np.clip(np.round(image), 0, 255).astype(np.uint8)
    if image.ndim == 2:
        image = image[..., np.newaxis]
    return np.repeat(image, 3, axis=2) if image.shape[2] == 1 else image


def read_array_labels(path, index, ignore_label=None):
    """Labels `index` of an [N, H, W] integer .npy, or the class of each one-hot vector of an [N, H, W, C] one
    (an all-zero vector: the ignore label, without one the pair is bad)."""
    labels = np.array(np.load(path, mmap_mode="r")[index])
    if labels.ndim == 3 and labels.shape[2] == 1:  # [N, H, W, 1]: indices with a channel axis
        labels = labels[..., 0]
    if labels.ndim == 3:
        unlabelled = labels.max(axis=2) == 0
        labels = np.argmax(labels, axis=2)
        if unlabelled.any():
            if ignore_label is None:
                raise BadPairError("%s[%d]" % (path, index), "%d pixels have an all-zero one-hot vector: pass "
                                   "--ignore_label to leave them out" % unlabelled.sum())
            labels[unlabelled] = ignore_label
    elif labels.dtype.kind == "f":
        if not np.all(labels == np.round(labels)):
            raise BadPairError("%s[%d]" % (path, index), "labels that are not whole numbers")
        labels = labels.astype(np.int64)
    return labels


def read_record_image(record):
    """The RGB image of a record: a file, or item record['index'] of a .npy."""
    if "index" in record:
        return read_array_image(record["image"], record["index"])
    return read_image(record["image"])


def read_record_labels(record, label_colors=None, ignore_label=None):
    """The (H, W) class indices of a record: a label file, or item record['index'] of a .npy."""
    if "index" in record:
        return read_array_labels(record["annotation"], record["index"], ignore_label)
    return read_annotation(record["annotation"], label_colors)


def record_image_size(record):
    """(width, height) of a record's image from its header alone; None when it cannot be read (reading the pair
    reports why)."""
    try:
        if "index" in record:
            height, width = np.load(record["image"], mmap_mode="r").shape[1:3]
            return width, height
        with Image.open(record["image"]) as image:
            return image.size
    except Exception:  # PIL and numpy report broken files with many exception types
        return None


def record_source(record, key):
    """What to name in a message about record[key]: the file, and for arrays the item too."""
    return "%s[%d]" % (record[key], record["index"]) if "index" in record else record[key]


def resize(array, size, resample=Image.NEAREST):
    """Resize (H, W) or (H, W, C) uint8 with PIL's `resample` (nearest-neighbour: labels never blend); size is an
    int (square) or (width, height)."""
    if np.isscalar(size):
        size = (size, size)
    return np.asarray(Image.fromarray(np.ascontiguousarray(array)).resize(tuple(size), resample))


def _read(read, source, *args):
    try:
        return read(*args)
    except BadPairError:
        raise
    except Exception as error:  # PIL reports broken files with many exception types
        raise BadPairError(source, "%s (%s)" % (error, type(error).__name__))


def read_labels(record, num_classes=None, ignore_label=None, label_colors=None, label_values=None):
    """The (H, W) class indices of a record's annotation, mapped through label_values when given (the raw value of
    each class) and checked against num_classes (check_labels); BadPairError when they cannot be used."""
    source = record_source(record, "annotation")
    labels = _read(read_record_labels, source, record, label_colors, ignore_label)
    if label_values:
        labels = labels_from_values(labels, label_values, source, ignore_label)
    if num_classes and labels.size:
        check_labels(labels, source, num_classes, ignore_label)
    return labels


def load_pair(record, resize_size=None, num_classes=None, ignore_label=None, label_colors=None, label_values=None):
    """(image, annotation (H, W, 1), warning or None) for one record; BadPairError if it cannot be used.

    An annotation of another size than its image is resized to the image's size, with a warning. Labels other
    than the classes and the ignore label make the pair bad (read_labels); resizing (nearest) keeps the ignore
    label."""
    image = _read(read_record_image, record_source(record, "image"), record)
    labels = read_labels(record, num_classes, ignore_label, label_colors, label_values).astype(np.uint8)
    warning = None
    if labels.shape != image.shape[:2]:
        warning = ("Warning: %s is %dx%d but its image is %dx%d: resized like the image"
                   % (record_source(record, "annotation"), labels.shape[1], labels.shape[0], image.shape[1],
                      image.shape[0]))
        labels = resize(labels, (image.shape[1], image.shape[0]))
    if resize_size:
        image, labels = resize(image, resize_size), resize(labels, resize_size)
    return image, labels[..., np.newaxis], warning


def check_bad_fraction(num_bad, num_pairs, first_bad, max_fraction=MAX_BAD_FRACTION):
    """DataError once more than max_fraction of num_pairs, and more than MAX_BAD_PAIRS_SKIPPED, are bad: then the
    data as a whole is wrong, and a run that skipped them would train or score on a part of it."""
    if num_bad > max_fraction * num_pairs and num_bad > MAX_BAD_PAIRS_SKIPPED:
        raise DataError("%d of %d image/annotation pairs are bad, more than %g%%; the first is %s. Something is "
                        "wrong with the data as a whole: check --data_dir."
                        % (num_bad, num_pairs, 100 * max_fraction, first_bad))


class _Slot(object):
    """One record being read by a background thread; `epoch` and `position` place it in the epoch's order."""

    def __init__(self, index, epoch=0, order=None, position=0):
        self.index, self.epoch, self.order, self.position = index, epoch, order, position
        self.done, self.cancelled = threading.Event(), False
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
        """records_list: dicts with 'image' and 'annotation' paths (and an 'index' when they are .npy arrays).
        image_options: {'resize': bool, 'resize_size': int} resize to a square of that size;
        'num_classes': labels must lie in 0..num_classes-1 or be 'ignore_label'; 'label_colors': (K, 3) colours
        of classes 0..K-1 in RGB annotations; 'label_values': the raw label of each class (labels_from_values);
        'max_bad_fraction' (MAX_BAD_FRACTION): stop with a DataError once more than this fraction of the pairs
        turned out bad; 'augment': called on each pair read, as augment(image, annotation, (index, epoch), pad
        label) (see augment.Augmentation); 'class_names': at the end of the first epoch, one warning names the
        classes next_batch gave no pixel of (for the training split); 'threads' (usable_cores()): threads reading
        ahead, which change nothing in the batches; 'report_epochs' (True): a line as epochs end."""
        self.files = records_list
        self.image_options = image_options or {}
        self.batch_offset = 0
        self.epochs_completed = 0
        self.bad_pairs = collections.OrderedDict()  # record index -> BadPairError, in the order found
        self._warned = set()  # warnings already printed, so each is printed once
        self._class_pixels = None  # with 'class_names': the pixels of each class in the first epoch's batches
        self._order = list(range(len(records_list)))  # the first epoch keeps the listed order, as the original
        self._cursor = (0, self._order, 0)  # (epoch, order, position) of the next record to read ahead
        self._window = collections.deque()  # slots read ahead for next_batch, oldest first
        self._tasks = queue.Queue()
        self._threads = [threading.Thread(target=_read_slots, args=(self._tasks, self._load), daemon=True)
                         for _ in range(self.image_options.get("threads") or usable_cores())]
        for thread in self._threads:
            thread.start()

    def _load(self, index, epoch=0):
        resize_size = int(self.image_options["resize_size"]) if self.image_options.get("resize") else None
        image, annotation, warning = load_pair(self.files[index], resize_size, self.image_options.get("num_classes"),
                                               self.image_options.get("ignore_label"),
                                               self.image_options.get("label_colors"),
                                               self.image_options.get("label_values"))
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
        check_bad_fraction(len(self.bad_pairs), len(self.files), next(iter(self.bad_pairs.values())),
                           self.image_options.get("max_bad_fraction", MAX_BAD_FRACTION))

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
                if self.epochs_completed == 0:
                    self._warn_of_absent_classes()
                self.epochs_completed = slot.epoch
                if self.image_options.get("report_epochs", True):
                    print("Epochs completed: %d" % self.epochs_completed)
            self._order, self.batch_offset = slot.order, slot.position + 1
            pair = self._take(slot)
            if pair is not None:
                images.append(pair[0])
                annotations.append(pair[1])
                if slot.epoch == 0:
                    self._count_classes(pair[1])
        self._read_ahead(batch_size)
        return np.stack(images), np.stack(annotations)

    def _count_classes(self, annotation):
        if "class_names" in self.image_options:
            counts = np.bincount(annotation.ravel(), minlength=256)[:len(self.image_options["class_names"])]
            self._class_pixels = counts if self._class_pixels is None else self._class_pixels + counts

    def _warn_of_absent_classes(self):
        """One line naming the classes (the ignore label aside) the first epoch gave no pixel of: the network learns
        never to predict them."""
        if self._class_pixels is None:
            return
        names = self.image_options["class_names"]
        absent = ["class %d (%s)" % (index, names[index]) for index in np.flatnonzero(self._class_pixels == 0)
                  if index != self.image_options.get("ignore_label")]
        if absent:
            more = len(absent) - MAX_CLASSES_NAMED
            print("Warning: %s%s %s no pixel in the first epoch's %d training pairs: the network learns never to "
                  "predict %s. Check --num_classes, --ignore_label and --label_values."
                  % (", ".join(absent[:MAX_CLASSES_NAMED]), " and %d more" % more if more > 0 else "",
                     "has" if len(absent) == 1 else "have", len(self.files) - len(self.bad_pairs),
                     "it" if len(absent) == 1 else "them"))

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
