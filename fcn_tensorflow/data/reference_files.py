"""What the paper's reference repository defines of its datasets, shipped in reference/ (see its README.md): the
class lists of its released FCNs besides VOC's (PASCAL-Context, SIFT Flow's semantic and geometric heads, NYUDv2) in
output order, coloured as its vis.make_palette colours them, and VOC's seg11valid validation ids. No TensorFlow
import here."""
import os

from fcn_tensorflow.data import voc

REFERENCE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "reference")
CLASS_LISTS = ("pascal_context", "siftflow", "siftflow_geometric", "nyud")  # the --dataset names of the lists
IGNORE_LABEL = 255  # the reference's data layers shift each dataset's void label to it
# The id lists --val_list names for --dataset=voc: seg11valid, on which the paper's VOC scores were measured.
VOC_VAL_LISTS = {"seg11valid": os.path.join(REFERENCE_DIR, "voc", "seg11valid.txt")}


def class_names(dataset):
    """The class names of one of CLASS_LISTS, in the order of the model's outputs."""
    with open(os.path.join(REFERENCE_DIR, dataset, "classes.txt")) as names:
        return [line.strip() for line in names if line.strip()]


def fixed_classes(dataset, source, num_classes, ignore_label):
    """(names, uint8 palette) of one of CLASS_LISTS, whatever the data: datasets.Kind's classes for them."""
    names = class_names(dataset)
    return names, voc.voc_palette(len(names))


def voc_val_list(val_list):
    """The file of VOC ids --val_list names: a shipped list by its name (seg11valid), else the file given."""
    return VOC_VAL_LISTS.get(val_list, val_list)
