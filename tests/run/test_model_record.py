"""model_record.py: what model.json records of a run, how a later run's settings take it, its classes."""
import json
import os

import numpy as np
import pytest

from fcn_tensorflow.data import datasets
from fcn_tensorflow.run import model_record
from fcn_tensorflow.run.settings import Settings


def test_model_record_round_trip_and_a_broken_one_says_what_to_do(tmp_path):
    assert model_record.read(str(tmp_path)) is None
    model_record.write(str(tmp_path), {"fc_width": 64, "dataset": "ade20k"})
    assert model_record.read(str(tmp_path)) == {"fc_width": 64, "dataset": "ade20k"}
    assert os.listdir(str(tmp_path)) == [model_record.MODEL_RECORD]
    (tmp_path / model_record.MODEL_RECORD).write_text("{broken")
    with pytest.raises(ValueError, match="model.json cannot be read .* delete it and pass the flags it held"):
        model_record.read(str(tmp_path))


def test_a_record_brings_back_the_classes_and_the_settings_not_given():
    voc = datasets.Classes(21, datasets.VOC_CLASSES, datasets.voc_palette(21), 255)
    settings = Settings(fc_width=64, head="fcn8s", num_classes=None, image_size=224, transpose_vgg_kernels=False,
                        learn_upsampling=True, dataset="voc", ignore_label=None)
    record = json.loads(json.dumps(model_record.of_model(settings, np.array([1.0, 2.0, 3.0]), voc)))
    assert record["num_classes"] == 21 and record["ignore_label"] == 255 and record["mean_pixel"] == [1.0, 2.0, 3.0]
    assert model_record.classes(record, 255).class_names == list(datasets.VOC_CLASSES)
    assert model_record.classes({"fc_width": 64}, None) is None  # written before records held class names
    values = dict(settings.as_dict(), fc_width=4096, image_size=64, dataset="ade20k")
    applied = model_record.apply(values, {"image_size"}, record, "logs/model.json")
    assert (applied["fc_width"], applied["image_size"], applied["dataset"]) == (64, 64, "voc")
    with pytest.raises(ValueError, match="logs/model.json records --fc_width=64 but the command line says 4096"):
        model_record.apply(values, {"fc_width"}, record, "logs/model.json")
