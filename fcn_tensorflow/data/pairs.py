"""What every listing of image/annotation pairs does: read a list of ids, keep the pairs whose files exist, and refuse
a required split without any. No TensorFlow import here."""
import os

from fcn_tensorflow.data import scene_parsing
from fcn_tensorflow.data.reader import DataError

SPLITS = scene_parsing.SPLITS


def read_ids(path, required=True):
    """The image ids of a VOC/SBD list file, one a line (blank lines skipped)."""
    if not os.path.exists(path):
        if required:
            raise DataError("%s is missing: is this the VOC2012 (or SBD) layout as the official archive extracts?"
                            % path)
        return []
    with open(path) as lines:
        fields = [line.split() for line in lines]
    for number, line_fields in enumerate(fields, start=1):
        if len(line_fields) > 1:
            raise DataError("%s line %d: expected one image id a line, found %d fields"
                            % (path, number, len(line_fields)))
    return [line_fields[0] for line_fields in fields if line_fields]


def existing_pairs(pairs):
    """Records of the (image, annotation) paths whose files both exist; a line for each pair left out."""
    records = []
    for image, annotation in pairs:
        missing = [path for path in (image, annotation) if not os.path.exists(path)]
        if missing:
            print("Left out, missing: %s" % ", ".join(missing))
            continue
        records.append({"image": image, "annotation": annotation, "filename": scene_parsing.image_stem(image)})
    return records


def require_pairs(records, split, required_splits, where):
    if split in required_splits and not records:
        raise DataError("No image/annotation pairs in the %s split: expected them in %s. Check --data_dir and "
                        "--dataset." % (split, where))
