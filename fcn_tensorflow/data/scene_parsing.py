"""Lists the MIT Scene Parsing (ADE20K) image/annotation pairs, downloading the data if needed.

Layout, as in ADEChallengeData2016.zip:
    data_dir/ADEChallengeData2016/images/{training,validation}/<stem>.jpg
    data_dir/ADEChallengeData2016/annotations/{training,validation}/<stem>.png
The listing is cached in data_dir/MITSceneParsing.json with paths relative to data_dir (JSON: a cache
in a data folder is data, never code, so the original's pickle is not loaded). Files that are not images
and images without an annotation are left out, with a line for each. Also: ADE20K's class names and colours.
"""
import glob
import json
import os
import random

import numpy as np
import scipy.io

from fcn_tensorflow.data import downloads
from fcn_tensorflow.data.reader import DataError, IMAGE_EXTENSIONS

DATA_URL = "http://data.csail.mit.edu/places/ADEchallenge/ADEChallengeData2016.zip"
CACHE_NAME = "MITSceneParsing.json"
OLD_PICKLE_NAME = "MITSceneParsing.pickle"  # the original's cache: never loaded
SPLITS = ("training", "validation")
NUM_OF_CLASSESS = 151  # ADE20K's: the original's constant (FCN.NUM_OF_CLASSESS)
ADE20K_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ade20k")


def read_dataset(data_dir, data_url=DATA_URL, required_splits=SPLITS, timeout=downloads.DOWNLOAD_TIMEOUT):
    """Return (training_records, validation_records); a record is {'image', 'annotation', 'filename'}.

    A split in `required_splits` without pairs is a DataError; a listing with an empty split is not cached."""
    cache_path = os.path.join(data_dir, CACHE_NAME)
    if os.path.exists(os.path.join(data_dir, OLD_PICKLE_NAME)):
        print("Ignoring %s: a pickle can run code, so the listing is cached in %s instead"
              % (os.path.join(data_dir, OLD_PICKLE_NAME), CACHE_NAME))
    cached = _load_cache(cache_path, data_dir)
    if cached is None:
        scene_parsing_dir = _ensure_data(data_dir, data_url, timeout)
        cached = create_image_lists(scene_parsing_dir, data_dir)
        for split in required_splits:
            if not cached[split]:
                raise DataError("No image/annotation pairs in the %s split: expected %s/*.jpg with annotations in "
                                "%s/<name>.png. Check --data_dir, or delete %s to download the data again."
                                % (split, os.path.join(scene_parsing_dir, "images", split),
                                   os.path.join(scene_parsing_dir, "annotations", split), scene_parsing_dir))
        if all(cached[split] for split in SPLITS):
            with open(cache_path, "w") as cache_file:
                json.dump(cached, cache_file)
    else:
        print("Found the listing in %s" % cache_path)
    return tuple([under_data_dir(record, data_dir) for record in cached[split]] for split in SPLITS)


def scene_parsing_folder(data_url=DATA_URL):
    return os.path.splitext(downloads.url_file_name(data_url))[0]


def _ensure_data(data_dir, data_url, timeout):
    """The extracted folder; extracts a zip placed by hand, downloads only when neither is there."""
    return downloads.ensure_extracted(data_dir, data_url, scene_parsing_folder(data_url), timeout)


def image_stem(path):
    """File name without folder and extension; os.path handles the platform's separators."""
    return os.path.splitext(os.path.basename(path))[0]


def create_image_lists(image_dir, relative_to):
    """{'training': [...], 'validation': [...]}, records with paths relative to `relative_to`."""
    image_list = {}
    for split in SPLITS:
        records = []
        files = sorted(path for path in glob.glob(os.path.join(image_dir, "images", split, "*"))
                       if os.path.isfile(path))
        image_files = [path for path in files if path.lower().endswith(IMAGE_EXTENSIONS)]
        strays = sorted(set(files) - set(image_files))
        for stray in strays:
            print("Not an image, ignored: %s" % stray)
        if not image_files:
            print("No files found in %s" % os.path.join(image_dir, "images", split))
        for image_file in image_files:
            stem = image_stem(image_file)
            annotation_file = os.path.join(image_dir, "annotations", split, stem + ".png")
            if os.path.exists(annotation_file):
                records.append({"image": os.path.relpath(image_file, relative_to),
                                "annotation": os.path.relpath(annotation_file, relative_to),
                                "filename": stem})
            else:
                print("Annotation file not found for %s - Skipping" % stem)
        random.shuffle(records)
        print("No. of %s files: %d" % (split, len(records)))
        if strays or len(records) < len(image_files):
            print("Left out of %s: %d images without annotation, %d files that are not images"
                  % (split, len(image_files) - len(records), len(strays)))
        image_list[split] = records
    return image_list


def _load_cache(cache_path, data_dir):
    """The cached listing, or None when it is absent, unreadable, stale or has an empty split."""
    if not os.path.exists(cache_path):
        return None
    for split_dir in glob.glob(os.path.join(data_dir, "*", "*", "*")):
        if os.path.basename(split_dir) in SPLITS and os.path.getmtime(split_dir) > os.path.getmtime(cache_path):
            print("Rebuilding %s: %s changed since it was written" % (cache_path, split_dir))
            return None
    try:
        with open(cache_path) as cache_file:
            cached = json.load(cache_file)
        records = [record for split in SPLITS for record in cached[split]]
        paths = [record[key] for record in records for key in ("image", "annotation")]
    except Exception as error:  # any unreadable cache is simply rebuilt
        print("Rebuilding %s: it cannot be read (%s)" % (cache_path, error))
        return None
    if not all(cached[split] for split in SPLITS):
        print("Rebuilding %s: a split lists no images" % cache_path)
        return None
    for path in paths:
        if not isinstance(path, str) or os.path.isabs(path) or not os.path.exists(os.path.join(data_dir, path)):
            print("Rebuilding %s: it points at missing file %s" % (cache_path, path))
            return None
    return cached


def under_data_dir(record, data_dir):
    """The record with its image and annotation paths, relative to data_dir in listings, joined to it."""
    return dict(record, image=os.path.join(data_dir, record["image"]),
                annotation=os.path.join(data_dir, record["annotation"]))


def ade20k_class_names():
    """151 short names: index 0 is "other", then the 150 classes of objectInfo150.csv."""
    names = ["other"]
    with open(os.path.join(ADE20K_DIR, "objectInfo150.csv")) as csv_file:
        next(csv_file)
        for line in csv_file:
            names.append(line.rstrip("\n").split(",")[-1].split(";")[0])
    return names


def ade20k_palette():
    """uint8 (151, 3): black for "other", then the official colour of each class."""
    colors = scipy.io.loadmat(os.path.join(ADE20K_DIR, "color150.mat"))["colors"]
    return np.concatenate([np.zeros((1, 3), np.uint8), colors.astype(np.uint8)])
