"""Lists the MIT Scene Parsing (ADE20K) image/annotation pairs, downloading the data if needed.

Layout, as in ADEChallengeData2016.zip:
    data_dir/ADEChallengeData2016/images/{training,validation}/<stem>.jpg
    data_dir/ADEChallengeData2016/annotations/{training,validation}/<stem>.png
The listing is cached in data_dir/MITSceneParsing.pickle with paths relative to data_dir.
Files that are not images and images without an annotation are left out, with a line for each.
"""
import glob
import os
import pickle
import random

from BatchDatsetReader import DataError
import TensorflowUtils as utils

DATA_URL = "http://data.csail.mit.edu/places/ADEchallenge/ADEChallengeData2016.zip"
PICKLE_NAME = "MITSceneParsing.pickle"
SPLITS = ("training", "validation")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")


def read_dataset(data_dir, data_url=DATA_URL, required_splits=SPLITS):
    """Return (training_records, validation_records); a record is {'image', 'annotation', 'filename'}.

    A split in `required_splits` without pairs is a DataError; a listing with an empty split is not cached."""
    pickle_path = os.path.join(data_dir, PICKLE_NAME)
    cached = _load_cache(pickle_path, data_dir)
    if cached is None:
        scene_parsing_dir = _ensure_data(data_dir, data_url)
        cached = create_image_lists(scene_parsing_dir, data_dir)
        for split in required_splits:
            if not cached[split]:
                raise DataError("No image/annotation pairs in the %s split: expected %s/*.jpg with annotations in "
                                "%s/<name>.png. Check --data_dir, or delete %s to download the data again."
                                % (split, os.path.join(scene_parsing_dir, "images", split),
                                   os.path.join(scene_parsing_dir, "annotations", split), scene_parsing_dir))
        if all(cached[split] for split in SPLITS):
            print("Pickling ...")
            with open(pickle_path, "wb") as cache_file:
                pickle.dump(cached, cache_file, pickle.HIGHEST_PROTOCOL)
    else:
        print("Found pickle file!")
    return tuple([_under_data_dir(record, data_dir) for record in cached[split]] for split in SPLITS)


def scene_parsing_folder(data_url=DATA_URL):
    return os.path.splitext(data_url.split("/")[-1])[0]


def _ensure_data(data_dir, data_url):
    """The extracted folder; extracts a zip placed by hand, downloads only when neither is there."""
    folder = os.path.join(data_dir, scene_parsing_folder(data_url))
    if not os.path.isdir(folder):
        try:
            utils.maybe_download_and_extract(data_dir, data_url, is_zipfile=True)
        except (IOError, OSError) as error:
            raise IOError("No data at %s and the download from %s failed (%s). Put the extracted "
                          "folder (or the zip) in %s, or pass --data_dir." % (folder, data_url, error, data_dir))
    return folder


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


def _load_cache(pickle_path, data_dir):
    """The cached listing, or None when it is absent, unreadable, stale or has an empty split."""
    if not os.path.exists(pickle_path):
        return None
    for split_dir in glob.glob(os.path.join(data_dir, "*", "*", "*")):
        if os.path.basename(split_dir) in SPLITS and os.path.getmtime(split_dir) > os.path.getmtime(pickle_path):
            print("Rebuilding %s: %s changed since it was written" % (pickle_path, split_dir))
            return None
    try:
        with open(pickle_path, "rb") as cache_file:
            cached = pickle.load(cache_file)
        records = [record for split in SPLITS for record in cached[split]]
    except Exception as error:  # any unreadable cache is simply rebuilt
        print("Rebuilding %s: it cannot be read (%s)" % (pickle_path, error))
        return None
    if not all(cached[split] for split in SPLITS):
        print("Rebuilding %s: a split lists no images" % pickle_path)
        return None
    for record in records:
        for key in ("image", "annotation"):
            if os.path.isabs(record[key]) or not os.path.exists(os.path.join(data_dir, record[key])):
                print("Rebuilding %s: it points at missing file %s" % (pickle_path, record[key]))
                return None
    return cached


def _under_data_dir(record, data_dir):
    return dict(record, image=os.path.join(data_dir, record["image"]),
                annotation=os.path.join(data_dir, record["annotation"]))
