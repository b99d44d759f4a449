"""formats.py: the --export_formats list, read without TensorFlow."""
import importlib.util

import pytest

from fcn_tensorflow.run import formats
from tests.helpers import TENSORFLOW_LOADED, run_python


def test_the_saved_model_is_always_written_and_the_order_is_fixed():
    assert formats.parse(["saved_model"]) == ("saved_model",)
    assert formats.parse(["onnx", "tflite"]) == ("saved_model", "tflite", "onnx")


def test_an_unknown_format_is_named():
    with pytest.raises(ValueError, match="unknown format tflite_int4"):
        formats.parse(["tflite", "tflite_int4"])


def test_reading_the_formats_loads_no_tensorflow():
    words, stderr = run_python("from fcn_tensorflow.run import formats" + TENSORFLOW_LOADED)
    assert words == ["False"], stderr


def test_the_packages_a_format_needs_are_named_when_missing(monkeypatch):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *args: None if name in ("tf2onnx", "onnxruntime") else real_find_spec(name, *args))
    assert formats.missing_packages(formats.parse(["onnx", "tflite"])) == ["onnxruntime", "tf2onnx"]
    assert formats.missing_packages(formats.parse(["saved_model"])) == []
