"""logs_dir/model.json, the record of what a model is: written when its training starts, read by every later mode,
so each rebuilds the network and draws its labels from the checkpoints alone. What is recorded, read, applied to a
run's settings and checked against it lives here. No TensorFlow: the command line reads it before TensorFlow loads.
"""
import json
import os

import numpy as np

from fcn_tensorflow.data import class_weights
from fcn_tensorflow.data import datasets
from fcn_tensorflow.data import matconvnet
from fcn_tensorflow.run import checkpoints

MODEL_RECORD = "model.json"
# What model.json records of the settings: those that shape the network (another value could not restore its
# checkpoints), and those whose recorded value is the default of later runs.
SHAPE_SETTINGS = ("fc_width", "head", "num_classes", "backbone", "geometry")
DEFAULT_SETTINGS = ("image_size", "transpose_vgg_kernels", "learn_upsampling", "dataset", "ignore_label", "recipe")
# Recorded only when set (so a model.json without them reads as before), then the default of later runs too.
OPTIONAL_SETTINGS = ("label_values",)
# What a model.json written before these settings existed describes: VGG19 in the SAME geometry.
RECORDED_BEFORE = {"backbone": "vgg19", "geometry": "same"}
# What a training started from another model's checkpoint (--init_checkpoint) takes from its model.json, unless
# given: the network it restores into (its class count is the new data's).
START_SETTINGS = ("fc_width", "head", "backbone", "geometry", "learn_upsampling")
# The loss's class weights (train --class_weights) and where they came from: a resumed run takes them from here.
CLASS_WEIGHT_KEYS = ("class_weights", "class_weights_from")


def read(logs_dir):
    """The dict of logs_dir/model.json, or None when there is none, or no checkpoint beside it (a training stopped
    before its first save describes no model: the next one records its own); ValueError when it does not read."""
    if not checkpoints.list_checkpoints(logs_dir):
        return None
    path = os.path.join(logs_dir, MODEL_RECORD)
    try:
        with open(path) as record_file:
            record = json.load(record_file)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        raise ValueError("%s cannot be read (%s): restore it from a backup, or delete it and pass the flags it "
                         "held (--fc_width, ...)" % (path, error))
    if not isinstance(record, dict):
        raise ValueError("%s holds no model description: delete it and pass the flags it held" % path)
    return dict(RECORDED_BEFORE, **record)


def write(logs_dir, record):
    """Write logs_dir/model.json through a temporary file, so it is never half written."""
    path = os.path.join(logs_dir, MODEL_RECORD)
    with open(path + ".tmp", "w") as record_file:
        json.dump(record, record_file, indent=1)
    os.replace(path + ".tmp", path)


def apply(values, given, record):
    """The settings' `values` ({name: value}) with what `record` holds for those not `given` on the command line."""
    values = dict(values)
    for name in SHAPE_SETTINGS + DEFAULT_SETTINGS + OPTIONAL_SETTINGS:
        if name in record and name not in given:
            values[name] = record[name]
    return values


def apply_start(values, given, record):
    """The settings' `values` with what the record of the --init_checkpoint model holds of START_SETTINGS for those
    not `given`."""
    return dict(values, **{name: record[name] for name in START_SETTINGS if name in record and name not in given})


def check(record, settings, given, dataset):
    """ValueError when the run's settings (model.json applied) and its datasets.Dataset cannot work with the model
    logs_dir records: a training on other data (check_against_data), or a given setting that shapes the network
    differently than its checkpoints."""
    if settings.mode == "train":  # training into a logs_dir of another model would overwrite it
        check_against_data(record, settings, given, dataset)
    for name in SHAPE_SETTINGS:
        if name in record and name in given and getattr(settings, name) != record[name]:
            raise ValueError("%s records --%s=%s but the command line says %s: drop the flag, or pass another "
                             "--logs_dir" % (os.path.join(settings.logs_dir, MODEL_RECORD), name, record[name],
                                             getattr(settings, name)))


def record_training(logs_dir, record):
    """Write `record` as logs_dir/model.json when a training starts: a new model's whole; on resume only other class
    weights (--class_weights given again) change it."""
    recorded = read(logs_dir)
    if recorded is None:
        write(logs_dir, record)
    elif record.get("class_weights") not in (None, recorded.get("class_weights")):
        write(logs_dir, dict(recorded, **{key: record[key] for key in CLASS_WEIGHT_KEYS}))


def recorded_class_weights(record, source, flag_given):
    """The class weights `record` holds for `source` (--class_weights, else the recorded source), or None when they
    are to be made again: median frequencies are counted once, a weights file named on the command line is read
    again."""
    if "class_weights" in record and source == record.get("class_weights_from") and (
            source == class_weights.MEDIAN_FREQUENCY or not flag_given):
        return record["class_weights"]
    return None


def mean_pixel(record):
    """The mean pixel a record holds; the beta16 file's ImageNet mean for a logs_dir of the original, which has
    none."""
    return np.array(record.get("mean_pixel", matconvnet.IMAGENET_MEAN_PIXEL))


def of_model(settings, mean_pixel, classes):
    """What model.json records of a new model: the settings of SHAPE_SETTINGS and DEFAULT_SETTINGS (the dataset
    among them) and those of OPTIONAL_SETTINGS that are set, the classes (count, names, colours, ignore label) and
    the mean pixel."""
    record = {"mean_pixel": [float(value) for value in mean_pixel]}
    record.update((name, getattr(settings, name)) for name in SHAPE_SETTINGS + DEFAULT_SETTINGS)
    record.update((name, getattr(settings, name, None)) for name in OPTIONAL_SETTINGS
                  if getattr(settings, name, None) is not None)
    record.update({"num_classes": classes.num_classes, "ignore_label": classes.ignore_label,
                   "class_names": list(classes.class_names), "palette": classes.palette.tolist()})
    return record


def of_import(imported, net, classes, image_size, path):
    """What model.json records of a model imported from a released Caffe FCN (released_fcns.Imported) as the
    spec.Net `net` (the paper's VGG16 in the Caffe geometry with fixed upsampling): that network, its classes and mean
    pixel, and where it came from."""
    return {"mean_pixel": [float(value) for value in imported.mean_pixel], "fc_width": net.fc_width,
            "head": net.head, "num_classes": classes.num_classes, "backbone": net.backbone, "geometry": net.geometry,
            "image_size": image_size, "transpose_vgg_kernels": False, "learn_upsampling": net.learn_upsampling,
            "dataset": imported.dataset or "folder", "ignore_label": classes.ignore_label,
            "class_names": list(classes.class_names), "palette": classes.palette.tolist(),
            "caffemodel": {"net": imported.net, "file": os.path.abspath(path), "output": imported.output}}


def classes(record, ignore_label):
    """The datasets.Classes a record holds (None for a record written before it held class names)."""
    if "class_names" not in record:
        return None
    return datasets.Classes(record["num_classes"], record["class_names"], np.array(record["palette"], np.uint8),
                            ignore_label)


def check_against_data(record, settings, given, dataset):
    """check_same_model for a training: the dataset (given, else the record's), the classes the data states (its
    class file, --num_classes, --label_values) or its labels need (arrays without class file). A plain resume
    passes: the record decides."""
    stated = dataset.stated_class_count(settings.num_classes if "num_classes" in given else None)
    if stated is None and settings.label_values:  # raw values such as 0/255: their count, not the largest one
        stated = len(settings.label_values)
    labels_count = dataset.labels_class_count() if stated is None else None
    check_same_model(record, settings.logs_dir, dataset.name, stated, labels_count)


def check_same_model(record, logs_dir, dataset, stated_count=None, labels_count=None):
    """ValueError when logs_dir's model.json records another model than this run's data has: another dataset, or
    another class count than the data states (stated_count), or fewer classes than its labels need (labels_count:
    more are fine, a model trained with a larger --num_classes). Training on would overwrite that model."""
    recorded = record.get("num_classes")
    if record.get("dataset") and dataset != record["dataset"]:
        this_run = "%s data" % dataset
    elif recorded and stated_count and stated_count != recorded:
        this_run = "%d classes" % stated_count
    elif recorded and labels_count and labels_count > recorded:
        this_run = "labels of %d classes" % labels_count
    else:
        return
    raise ValueError("%s holds %s; this run has %s: use another --logs_dir, or --init_checkpoint=%s to start from it"
                     % (logs_dir, described(record), this_run, logs_dir))


def described(record, names_shown=5):
    """"a 3-class folder model (a, b, c)": the class count, dataset and first class names a record holds."""
    names = record.get("class_names") or []
    shown = list(names[:names_shown]) + (["..."] if len(names) > names_shown else [])
    return "a %s%smodel%s" % ("%d-class " % record["num_classes"] if "num_classes" in record else "",
                              record["dataset"] + " " if record.get("dataset") else "",
                              " (%s)" % ", ".join(shown) if shown else "")
