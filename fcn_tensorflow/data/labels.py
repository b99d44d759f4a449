"""Label maps: an annotation file read as class indices (a PNG's grey values or palette indices, a colour mask's
colours looked up, an SBD .mat), raw values mapped to classes (--label_values), and the check that every label is a
class or the ignore label. A label map that cannot be used raises BadPairError. No TensorFlow here.
"""
import numpy as np
from PIL import Image
import scipy.io

from fcn_tensorflow.data.errors import BadPairError


def read_annotation(path, label_colors=None):
    """A (H, W) array of class indices from a label file: a PNG's grey values or palette indices (VOC's), an RGB
    PNG's colours looked up in label_colors ((K, 3) uint8, row k = class k; without it, the first channel), or
    the GTcls.Segmentation of an SBD cls/<id>.mat."""
    if path.lower().endswith(".mat"):
        return read_sbd_segmentation(path)
    with Image.open(path) as annotation:
        labels = np.asarray(annotation)
    if labels.ndim == 3 and label_colors is not None:
        return labels_from_colors(labels[..., :3], label_colors, path)
    if labels.ndim == 3:
        labels = labels[..., 0]
    return labels


def read_sbd_segmentation(path):
    """The class map of an SBD .mat (struct GTcls, field Segmentation); loadmat reads data only, never code."""
    return np.asarray(scipy.io.loadmat(path, squeeze_me=True, struct_as_record=False)["GTcls"].Segmentation)


def labels_from_colors(rgb, label_colors, path):
    """(H, W) uint8 indices of an (H, W, 3) colour mask, colour label_colors[k] -> k; another colour makes the
    pair bad."""
    codes = _color_codes(rgb)
    classes, found = _look_up(_color_codes(np.asarray(label_colors)), codes)
    if not found.all():
        first = codes[~found][0]
        color = tuple(int(value) for value in rgb[~found][0])
        raise BadPairError(path, "colour %s at %d pixels is not in classes.csv" % (color, np.sum(codes == first)))
    return classes.astype(np.uint8)


def _color_codes(rgb):
    rgb = rgb.astype(np.int32)
    return (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]


def labels_from_values(labels, label_values, path, ignore_label=None):
    """Class indices of raw labels, value label_values[k] -> class k (--label_values, e.g. 0,255 for 0/255
    masks); an ignore label not listed stays as it is, any other value makes the pair bad."""
    classes, found = _look_up(np.asarray(label_values), labels)
    unknown = ~found if ignore_label is None else ~found & (labels != ignore_label)
    if unknown.any():
        bad = labels[unknown]
        raise BadPairError(path, "labels %d..%d (%d pixels) not among --label_values=%s"
                           % (bad.min(), bad.max(), bad.size, ",".join(str(value) for value in label_values)))
    return np.where(found, classes, labels)


def _look_up(table, keys):
    """(the index in `table` of each key, whether the key is there at all): a colour's or a raw value's class."""
    order = np.argsort(table)
    position = np.minimum(np.searchsorted(table[order], keys), len(table) - 1)
    return order[position], table[order][position] == keys


def check_labels(labels, source, num_classes, ignore_label=None):
    """BadPairError naming the labels that are neither a class 0..num_classes-1 nor the ignore label; for a mask of
    exactly the values 0 and 255, the line suggests --label_values=0,255."""
    outside = (labels < 0) | (labels >= num_classes)
    if ignore_label is not None:
        outside &= labels != ignore_label
    if outside.any():
        bad = labels[outside]
        hint = "; 0/255 masks? pass --label_values=0,255" if set(np.unique(labels).tolist()) == {0, 255} else ""
        raise BadPairError(source, "labels %d..%d outside 0..%d (%d classes)%s%s"
                           % (bad.min(), bad.max(), num_classes - 1, num_classes,
                              "" if ignore_label is None else " and not the ignore label %d" % ignore_label, hint))
