"""logs_dir/model.json, the record of what a model is: written when its training starts, read by every later mode,
so each rebuilds the network and draws its labels from the checkpoints alone. What is recorded, read, applied to a
run's settings and checked against it lives here. No TensorFlow: the command line reads it before TensorFlow loads.
"""
import json
import os

import numpy as np

from fcn_tensorflow.data import datasets

MODEL_RECORD = "model.json"
# What model.json records of the settings: those that shape the network (another value could not restore its
# checkpoints), and those whose recorded value is the default of later runs.
SHAPE_SETTINGS = ("fc_width", "head", "num_classes")
DEFAULT_SETTINGS = ("image_size", "transpose_vgg_kernels", "learn_upsampling", "dataset", "ignore_label")


def read(logs_dir):
    """The dict of logs_dir/model.json, or None when there is none; ValueError when it does not read."""
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
    return record


def write(logs_dir, record):
    """Write logs_dir/model.json through a temporary file, so it is never half written."""
    path = os.path.join(logs_dir, MODEL_RECORD)
    with open(path + ".tmp", "w") as record_file:
        json.dump(record, record_file, indent=1)
    os.replace(path + ".tmp", path)


def apply(values, given, record, record_path):
    """The settings' `values` ({name: value}) with what `record` holds for those not `given` on the command line;
    ValueError for a given one that shapes the network differently than its checkpoints."""
    values = dict(values)
    for name in SHAPE_SETTINGS + DEFAULT_SETTINGS:
        if name not in record:
            continue
        if name not in given:
            values[name] = record[name]
        elif name in SHAPE_SETTINGS and values[name] != record[name]:
            raise ValueError("%s records --%s=%s but the command line says %s: drop the flag, or pass another "
                             "--logs_dir" % (record_path, name, record[name], values[name]))
    return values


def of_model(settings, mean_pixel, classes):
    """What model.json records of a new model: the settings of SHAPE_SETTINGS and DEFAULT_SETTINGS (the dataset
    among them), the classes (count, names, colours, ignore label) and the mean pixel."""
    record = {"mean_pixel": [float(value) for value in mean_pixel]}
    record.update((name, getattr(settings, name)) for name in SHAPE_SETTINGS + DEFAULT_SETTINGS)
    record.update({"num_classes": classes.num_classes, "ignore_label": classes.ignore_label,
                   "class_names": list(classes.class_names), "palette": classes.palette.tolist()})
    return record


def classes(record, ignore_label):
    """The datasets.Classes a record holds (None for a record written before it held class names)."""
    if "class_names" not in record:
        return None
    return datasets.Classes(record["num_classes"], record["class_names"], np.array(record["palette"], np.uint8),
                            ignore_label)
