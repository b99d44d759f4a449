"""PASCAL VOC 2012 as its tar extracts (VOCdevkit/VOC2012/), with SBD (--sbd_dir) the 10,582-image "train_aug"
training set: listing its pairs, its classes and the devkit's colours. No TensorFlow import here."""
import os

import numpy as np

from fcn_tensorflow.data import downloads
from fcn_tensorflow.data.pairs import SPLITS, existing_pairs, read_ids, require_pairs
from fcn_tensorflow.data.reader import DataError

VOC_URL = "http://host.robots.ox.ac.uk/pascal/VOC/voc2012/VOCtrainval_11-May-2012.tar"
VOC_ROOT = os.path.join("VOCdevkit", "VOC2012")
VOC_CLASSES = ("background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
               "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train",
               "tvmonitor")
VOC_IGNORE_LABEL = 255


def voc_palette(count=256):
    """uint8 (count, 3): the devkit's colours, bits of the index spread over the high bits of r, g and b."""
    palette = np.zeros((count, 3), np.uint8)
    for index in range(count):
        code = index
        for shift in range(7, -1, -1):
            for channel in range(3):
                palette[index, channel] |= ((code >> channel) & 1) << shift
            code >>= 3
    return palette


def list_voc(source, required_splits):
    """VOC train and val from ImageSets/Segmentation, val replaced by the ids of source.val_list when given; with
    source.sbd_dir, training on SBD train + val + VOC train; training never holds an image of the val ids."""
    root = downloads.ensure_extracted(source.data_dir, source.data_url or VOC_URL, VOC_ROOT, source.timeout)
    image_sets = os.path.join(root, "ImageSets", "Segmentation")
    lists = {"training": os.path.join(image_sets, "train.txt"),
             "validation": source.val_list or os.path.join(image_sets, "val.txt")}
    ids = {split: read_ids(path, split in required_splits) for split, path in lists.items()}
    if source.val_list:
        print("Validation: the %d ids of %s" % (len(ids["validation"]), source.val_list))
    ids["training"] = _without(ids["training"], ids["validation"], lists["training"])
    records = {split: existing_pairs([(os.path.join(root, "JPEGImages", name + ".jpg"),
                                        os.path.join(root, "SegmentationClass", name + ".png")) for name in names])
               for split, names in ids.items()}
    if source.sbd_dir and "training" in required_splits:
        records["training"] = _with_sbd(records["training"], ids["validation"], _sbd_dataset_dir(source.sbd_dir))
    where = {"training": image_sets, "validation": image_sets if not source.val_list else
             "%s/JPEGImages/<id>.jpg and SegmentationClass/<id>.png for the ids of %s" % (root, source.val_list)}
    for split in SPLITS:
        print("No. of %s files: %d" % (split, len(records[split])))
        require_pairs(records[split], split, required_splits, where[split])
    return records["training"], records["validation"]


def _without(training_ids, validation_ids, training_list):
    """The training ids that are not validation ids (a line when some are: another --val_list may hold them)."""
    validation = set(validation_ids)
    kept = [name for name in training_ids if name not in validation]
    if len(kept) < len(training_ids):
        print("Left out of training: the %d ids of %s that are validation ids" % (len(training_ids) - len(kept),
                                                                                 training_list))
    return kept


def _with_sbd(voc_train, voc_val_ids, sbd_root):
    """VOC train plus the SBD train and val images that are neither in it nor validation ids (annotations: .mat)."""
    sbd_ids = read_ids(os.path.join(sbd_root, "train.txt")) + read_ids(os.path.join(sbd_root, "val.txt"))
    left_out = set(voc_val_ids) | {record["filename"] for record in voc_train}
    added = existing_pairs([(os.path.join(sbd_root, "img", name + ".jpg"), os.path.join(sbd_root, "cls", name + ".mat"))
                             for name in sorted(set(sbd_ids) - left_out)])
    print("SBD %s: %d train+val images, %d of them neither VOC train nor VOC val; training on %d + %d"
          % (sbd_root, len(set(sbd_ids)), len(added), len(voc_train), len(added)))
    return voc_train + added


def _sbd_dataset_dir(sbd_dir):
    """The folder of SBD's cls/, img/, train.txt: sbd_dir, its dataset/ or its benchmark_RELEASE/dataset/."""
    for folder in (os.path.join(sbd_dir, "benchmark_RELEASE", "dataset"), os.path.join(sbd_dir, "dataset"), sbd_dir):
        if os.path.isdir(os.path.join(folder, "cls")):
            return folder
    raise DataError("--sbd_dir=%s holds no benchmark_RELEASE/dataset/cls/: extract benchmark.tgz (SBD) there"
                    % sbd_dir)


def voc_classes(source, num_classes, ignore_label):
    return VOC_CLASSES, voc_palette(len(VOC_CLASSES))
