"""The original FCN.tensorflow's read_MITSceneParsingData: read_dataset lists the MIT Scene Parsing (ADE20K)
image/annotation pairs, downloading the data if needed. It lives in fcn_tensorflow/data/scene_parsing.py; this file
keeps the name its users import."""
from fcn_tensorflow.data.scene_parsing import (  # noqa: F401 (re-exported)
    DATA_URL, create_image_lists, read_dataset)
