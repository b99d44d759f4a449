"""The original FCN.tensorflow's BatchDatsetReader: BatchDatset gives batches of (image, annotation) arrays from a
list of records. It lives in fcn_tensorflow/data/reader.py, with the functions that read one pair; this file keeps
the name its users import."""
from fcn_tensorflow.data.reader import (  # noqa: F401 (re-exported)
    IMAGE_EXTENSIONS, BadPairError, BatchDatset, DataError, load_pair, read_annotation, read_image)
