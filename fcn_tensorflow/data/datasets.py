"""The datasets FCN.py reads (--dataset): for each, how its pairs are listed, its classes and colours, its
ignore label and which class its scores leave out.

- ade20k: MIT Scene Parsing, listed by scene_parsing.read_dataset; 151 classes, 0 ("other") not scored.
- voc: PASCAL VOC 2012 with SBD (voc.py); 21 classes, background scored, 255 ignored; --val_list: a file of ids
  (or seg11valid, the paper's) instead of val.txt.
- folder: your pairs in the ADE20K layout or in --train_list/--val_list; classes in classes.txt or classes.csv.
- pascal_context (60 classes), siftflow (33), siftflow_geometric (3), nyud (40): the datasets of the paper's other
  released FCNs, pairs as folder's, the reference's fixed class list (reference_files.py), 255 ignored.
- arrays: {train,validation}_{images,labels}.npy, read item by item through a memory map.

No TensorFlow import here.
"""
import collections
import csv
import functools
import os

import numpy as np

from fcn_tensorflow.data import downloads
from fcn_tensorflow.data import pairs
from fcn_tensorflow.data import reference_files
from fcn_tensorflow.data import scene_parsing
from fcn_tensorflow.data import voc
from fcn_tensorflow.data.reader import DataError

SPLITS = pairs.SPLITS
CLASS_NAMES_FILE = "classes.txt"  # one name per line, line k = class k
CLASS_COLORS_FILE = "classes.csv"  # name,r,g,b per line, line k = class k: colour masks
ARRAY_PREFIXES = {"training": "train", "validation": "validation"}
OPTIONS = ("sbd_dir", "train_list", "val_list")  # the flags that say where a dataset's pairs are, besides data_dir
LIST_FILE = "a text file of `image_path annotation_path` lines"

# Where the pairs are: what the listings read besides the split (from the flags of the same names).
Source = collections.namedtuple("Source", ["data_dir", "data_url", "timeout", "sbd_dir", "train_list", "val_list"])
# What a model's classes are: their count, names, colours (uint8 (num_classes, 3)), and the ignore label or None.
Classes = collections.namedtuple("Classes", ["num_classes", "class_names", "palette", "ignore_label"])


class Dataset(object):
    """A dataset as one run reads it, built once by open_dataset: its name, where its pairs are (a Source), its
    ignore label; it lists its pairs, describes its classes, and says which class its scores leave out."""

    def __init__(self, name, source, ignore_label=None):
        if name == "voc":  # --val_list=seg11valid names the shipped list
            source = source._replace(val_list=reference_files.voc_val_list(source.val_list))
        self.name, self.source, self._kind = name, source, KINDS[name]
        self.ignore_label = self._kind.ignore_label if ignore_label is None else ignore_label

    def check_paths(self, reads_data=True):
        """ValueError for a dataset option (OPTIONS) given to a dataset that does not read it, naming nothing, or
        naming a file where a folder should be (or the reverse); and, when the run reads_data, for a data_dir that is
        no folder where nothing can be downloaded into it (folder layouts, arrays: the pairs of list files may lie
        anywhere)."""
        for name in OPTIONS:
            value = getattr(self.source, name)
            if value and name not in self._kind.options:
                raise ValueError("--%s is for --dataset=%s, not %s" % (name, _either(option_datasets(name)), self.name))
            if value and not os.path.exists(value):
                raise ValueError("--%s=%s does not exist" % (name, value))
            if value and os.path.isdir(value) != (name == "sbd_dir"):
                raise ValueError("--%s=%s is a %s: it should be %s" % (name, value, "folder" if os.path.isdir(value)
                                                                        else "file", self._kind.options[name]))
        holds, data_dir = self._kind.data_dir_holds, self.source.data_dir
        listed = self.source.train_list or self.source.val_list
        if reads_data and holds and not listed and not os.path.isdir(data_dir):
            raise ValueError("--data_dir=%s %s: it should be the folder of %s (--dataset=%s)"
                             % (data_dir, "is a file" if os.path.exists(data_dir) else "does not exist", holds,
                                self.name))

    def list_pairs(self, required_splits=SPLITS):
        """(training records, validation records); a required split without pairs is a DataError."""
        return self._kind.list_pairs(self.source, required_splits)

    def describe(self, num_classes=None):
        """The Classes of a new model on this dataset: its own classes, or num_classes of them when given."""
        names, palette = self._kind.classes(self.source, num_classes, self.ignore_label)
        count = num_classes or len(names)
        return Classes(count, *_padded(names, palette, count), self.ignore_label)

    def stated_class_count(self, num_classes=None):
        """The classes this data states: num_classes when given, else its class file's count (folder, arrays);
        None when it states none (the fixed lists of ADE20K, VOC and the paper's others are not the data's)."""
        files = self._kind.class_files
        if num_classes or not any(os.path.exists(os.path.join(self.source.data_dir, name)) for name in files):
            return num_classes
        return self.describe().num_classes

    def labels_class_count(self):
        """How many classes the labels need (the largest label + 1, the ignore label aside), where the labels are
        what states the classes (arrays without a class file); else None."""
        if not self._kind.labels_state_classes or not os.path.isdir(self.source.data_dir):
            return None
        return array_class_count(self.source.data_dir, self.ignore_label)

    @property
    def has_own_classes(self):
        """True when the classes are the user's (a folder's or arrays' class file, or their labels), not a fixed
        list of the dataset's own (FIXED_LISTS: ADE20K, VOC, the paper's other datasets)."""
        return bool(self._kind.class_files)

    def label_colors(self):
        """The (K, 3) colours of classes.csv that RGB annotations are mapped through (folder only), or None."""
        colors_path = os.path.join(self.source.data_dir, CLASS_COLORS_FILE)
        if CLASS_COLORS_FILE not in self._kind.class_files or not os.path.exists(colors_path):
            return None
        return read_class_colors(colors_path)[1]

    def unscored_class(self, classes):
        """The class the scores leave out (metrics.py): ADE20K's 0; elsewhere the ignore label, when it is a
        class."""
        if self._kind.unscored_class is not None:
            return self._kind.unscored_class
        ignore_label = classes.ignore_label
        return ignore_label if ignore_label is not None and ignore_label < classes.num_classes else None


def open_dataset(name, data_dir, data_url="", timeout=downloads.DOWNLOAD_TIMEOUT, sbd_dir="", train_list="",
                 val_list="", ignore_label=None):
    """The Dataset `name` (one of NAMES) read from data_dir and the options of the flags of the same names."""
    return Dataset(name, Source(data_dir, data_url, timeout, sbd_dir, train_list, val_list), ignore_label)


def _padded(names, palette, count):
    """The first `count` of the names and colours; past those given, "class k" and the devkit's colours."""
    names = list(names[:count]) + ["class %d" % index for index in range(len(names), count)]
    return names, np.concatenate([palette[:count], voc.voc_palette(count)[len(palette):]]).astype(np.uint8)


def for_pictures(classes):
    """(names, palette) for drawing labels: the classes', then, up to an ignore label above them, the devkit's
    colours and "ignored" for the ignore label itself (VOC's 255 cream, as the devkit draws it)."""
    ignore_label = classes.ignore_label
    if ignore_label is None or ignore_label < len(classes.class_names):
        return list(classes.class_names), classes.palette
    names, palette = _padded(classes.class_names, classes.palette, ignore_label + 1)
    return names[:-1] + ["ignored"], palette


# ---------------------------------------------------------------- ADE20K

def _list_ade20k(source, required_splits):
    return scene_parsing.read_dataset(source.data_dir, source.data_url or scene_parsing.DATA_URL, required_splits,
                                      source.timeout)


def _ade20k_classes(source, num_classes, ignore_label):
    return scene_parsing.ade20k_class_names(), scene_parsing.ade20k_palette()


# ---------------------------------------------------------------- a folder of pairs

def list_folder(source, required_splits):
    """Pairs of images/<split>/<stem>.<ext> and annotations/<split>/<stem>.png, or those of the list files."""
    if source.train_list or source.val_list:
        records = {"training": _listed_pairs(source.train_list, source.data_dir),
                   "validation": _listed_pairs(source.val_list, source.data_dir)}
        where = "--train_list and --val_list"
    else:
        found = scene_parsing.create_image_lists(source.data_dir, source.data_dir)
        records = {split: [scene_parsing.under_data_dir(record, source.data_dir) for record in found[split]]
                   for split in SPLITS}
        where = "%s/images/<split>/ and annotations/<split>/" % source.data_dir
    for split in SPLITS:
        pairs.require_pairs(records[split], split, required_splits, where)
    return records["training"], records["validation"]


def _listed_pairs(list_file, data_dir):
    """The pairs of `image_path annotation_path` lines (relative to data_dir) of list_file; none without one."""
    if not list_file:
        return []
    listed = []
    with open(list_file) as lines:
        for number, line in enumerate(lines, start=1):
            fields = line.split()
            if not fields or line.startswith("#"):
                continue
            if len(fields) != 2:
                raise DataError("%s line %d: expected `image_path annotation_path`, found %d fields"
                                % (list_file, number, len(fields)))
            listed.append(tuple(os.path.join(data_dir, field) for field in fields))
    records = pairs.existing_pairs(listed)
    print("%s: %d pairs" % (list_file, len(records)))
    return records


def _folder_classes(source, num_classes, ignore_label):
    colors_path = os.path.join(source.data_dir, CLASS_COLORS_FILE)
    if os.path.exists(colors_path):
        names, palette = read_class_colors(colors_path)
    else:
        names, palette = _class_names_file(source.data_dir), None
    if names is None and not num_classes:
        raise DataError("No %s nor %s in %s: write one (one class name per line; line k is class k) or pass "
                        "--num_classes" % (CLASS_NAMES_FILE, CLASS_COLORS_FILE, source.data_dir))
    return _named_classes(names, palette, num_classes, source.data_dir)


def read_class_colors(path):
    """(names, uint8 (K, 3) colours) of a classes.csv of `name,r,g,b` lines (a `name,r,g,b` header is skipped)."""
    names, colors = [], []
    with open(path, newline="") as csv_file:
        for number, row in enumerate(csv.reader(csv_file), start=1):
            if not row or (number == 1 and [field.strip().lower() for field in row] == ["name", "r", "g", "b"]):
                continue
            try:
                color = tuple(int(value) for value in row[1:])
                if len(color) != 3 or not all(0 <= value <= 255 for value in color):
                    raise ValueError
            except ValueError:
                raise DataError("%s line %d: expected `name,r,g,b` with r, g, b in 0..255, found %r"
                                % (path, number, ",".join(row)))
            if color in colors:
                raise DataError("%s line %d: colour %s is already class %d (%s)"
                                % (path, number, color, colors.index(color), names[colors.index(color)]))
            names.append(row[0].strip())
            colors.append(color)
    return names, np.array(colors, np.uint8).reshape(-1, 3)


# ---------------------------------------------------------------- NumPy arrays

def list_arrays(source, required_splits):
    """One record per item of <prefix>_images.npy and <prefix>_labels.npy (train, validation)."""
    records = {}
    for split, prefix in ARRAY_PREFIXES.items():
        images, labels = array_paths(source.data_dir, prefix)
        if not (os.path.exists(images) and os.path.exists(labels)):
            records[split] = []
        else:
            records[split] = [{"image": images, "annotation": labels, "index": index, "filename": "%s_%06d" % (prefix, index)}
                              for index in range(_check_arrays(images, labels))]
        print("No. of %s files: %d" % (split, len(records[split])))
        pairs.require_pairs(records[split], split, required_splits, "%s and %s" % (images, labels))
    return records["training"], records["validation"]


def array_paths(data_dir, prefix):
    """The images and labels .npy files of a split's ARRAY_PREFIXES prefix."""
    return os.path.join(data_dir, prefix + "_images.npy"), os.path.join(data_dir, prefix + "_labels.npy")


def _check_arrays(images_path, labels_path):
    """The number of pairs; DataError when the shapes or types do not fit [N, H, W, 3] images and [N, H, W] or
    one-hot [N, H, W, C] labels. Only the headers and the first image are read."""
    images, labels = _open_array(images_path), _open_array(labels_path)
    if images.ndim not in (3, 4) or (images.ndim == 4 and images.shape[3] not in (1, 3)) or images.dtype.kind not in "uif":
        raise DataError("%s holds %s %s; expected [N, H, W, 3] uint8 (or floats in 0..255)"
                        % (images_path, images.dtype, list(images.shape)))
    if labels.ndim not in (3, 4) or labels.shape[:3] != images.shape[:3] or labels.dtype.kind not in "uif":
        raise DataError("%s holds %s %s; expected integer [N, H, W] or one-hot [N, H, W, C] labels for the %s "
                        "images of %s" % (labels_path, labels.dtype, list(labels.shape), list(images.shape[:3]),
                                          images_path))
    if images.dtype.kind == "f" and len(images) and images[0].max() <= 1.0:
        raise DataError("%s holds floats in 0..1; this reader takes 0..255: save images * 255" % images_path)
    return len(images)


def _open_array(path):
    try:
        return np.load(path, mmap_mode="r")
    except (OSError, ValueError) as error:
        raise DataError("%s cannot be read as a .npy array (%s)" % (path, error))


def _arrays_classes(source, num_classes, ignore_label):
    names = _class_names_file(source.data_dir)
    if names is None and not num_classes:
        num_classes = array_class_count(source.data_dir, ignore_label)
        print("%d classes, from the labels in %s (pass --num_classes to set it)" % (num_classes, source.data_dir))
    return _named_classes(names, None, num_classes, source.data_dir)


def array_class_count(data_dir, ignore_label, block=64):
    """The one-hot depth of the labels, or their largest value other than the ignore label, plus one. Read in
    blocks of a fresh memory map each, so memory stays flat however many labels there are."""
    largest = 0
    for prefix in ARRAY_PREFIXES.values():
        path = array_paths(data_dir, prefix)[1]
        if not os.path.exists(path):
            continue
        labels = _open_array(path)
        if labels.ndim == 4 and labels.shape[3] > 1:
            return labels.shape[3]
        for start in range(0, len(labels), block):
            values = np.asarray(_open_array(path)[start:start + block])
            values = values[values != ignore_label] if ignore_label is not None else values
            largest = max(largest, int(values.max(initial=0)))
    return max(largest + 1, 2)


# ---------------------------------------------------------------- shared steps

def _class_names_file(data_dir):
    """The names of data_dir/classes.txt, or None when there is none."""
    path = os.path.join(data_dir, CLASS_NAMES_FILE)
    if not os.path.exists(path):
        return None
    with open(path) as names_file:
        names = [line.strip() for line in names_file.read().rstrip().splitlines()]
    if not names or "" in names:
        raise DataError("%s: line %d is empty; one class name per line, line k is class k"
                        % (path, names.index("") + 1 if "" in names else 1))
    return names


def _named_classes(names, palette, num_classes, data_dir):
    """(names, palette) of a class file, checked against --num_classes; or num_classes generic ones."""
    if names is None:
        return ["class %d" % index for index in range(num_classes)], voc.voc_palette(num_classes)
    if num_classes and num_classes != len(names):
        raise DataError("The class file in %s names %d classes but this run asks for %d (--num_classes, or the "
                        "count of --label_values): drop the flag, or fix the file"
                        % (data_dir, len(names), num_classes))
    return names, voc.voc_palette(len(names)) if palette is None else palette


# Per dataset: its listing, its classes (names, colours), its own ignore label, the class its scores leave out, what
# its data_dir holds when nothing can be downloaded into it (None: the listing downloads what is missing), the files
# in data_dir that state its classes (none: the dataset's own), whether without them its labels do, and the OPTIONS
# it reads, each with what its value should be.
Kind = collections.namedtuple("Kind", ["list_pairs", "classes", "ignore_label", "unscored_class", "data_dir_holds",
                                       "class_files", "labels_state_classes", "options"])
FOLDER_HOLDS = "your images/ and annotations/"
FOLDER_OPTIONS = {"train_list": LIST_FILE, "val_list": LIST_FILE}
VOC_OPTIONS = {"sbd_dir": "the folder of the SBD release",
               "val_list": "a text file of VOC image ids, one a line (as ImageSets/Segmentation/val.txt), or "
                           "seg11valid"}
KINDS = {"ade20k": Kind(_list_ade20k, _ade20k_classes, None, 0, None, (), False, {}),
         "voc": Kind(voc.list_voc, voc.voc_classes, voc.VOC_IGNORE_LABEL, None, None, (), False, VOC_OPTIONS),
         "folder": Kind(list_folder, _folder_classes, None, None, FOLDER_HOLDS, (CLASS_COLORS_FILE, CLASS_NAMES_FILE),
                        False, FOLDER_OPTIONS),
         **{name: Kind(list_folder, functools.partial(reference_files.fixed_classes, name),
                       reference_files.IGNORE_LABEL, None, FOLDER_HOLDS, (), False, FOLDER_OPTIONS)
            for name in reference_files.CLASS_LISTS},
         "arrays": Kind(list_arrays, _arrays_classes, None, None, "train_images.npy, train_labels.npy, "
                        "validation_images.npy and validation_labels.npy", (CLASS_NAMES_FILE,), True, {})}
NAMES = tuple(KINDS)
FIXED_LISTS = tuple(name for name, kind in KINDS.items() if not kind.class_files and not kind.labels_state_classes)


def option_datasets(option):
    """The datasets that read a flag of OPTIONS."""
    return [name for name, kind in KINDS.items() if option in kind.options]


def _either(names):
    return names[0] if len(names) == 1 else "%s or %s" % (", ".join(names[:-1]), names[-1])


def class_list(name):
    """(class names, uint8 (K, 3) palette) of a dataset of FIXED_LISTS (ade20k, voc, pascal_context, siftflow,
    siftflow_geometric, nyud), read without any data: what a model of it, such as an imported Caffe FCN, names and
    draws its classes with."""
    if name not in FIXED_LISTS:
        raise ValueError("--dataset=%s has no fixed class list (those that have: %s)" % (name, _either(FIXED_LISTS)))
    names, palette = KINDS[name].classes(None, None, KINDS[name].ignore_label)
    return list(names), palette


def dataset_with_class_count(num_classes):
    """The dataset of FIXED_LISTS with num_classes classes (their counts differ), or None."""
    counts = {len(class_list(name)[0]): name for name in FIXED_LISTS}
    return counts.get(num_classes)
