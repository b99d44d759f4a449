"""export.py through FCN.py on the tiny trained model: the SavedModel with plain convolutions, labels.txt and
model.json; TFLite and ONNX files that run at any size and label as the SavedModel does."""
import json
import os
import re

import numpy as np
import pytest

from fcn_tensorflow.run import export
from fcn_tensorflow.run import formats

AGREEMENT = re.compile(r"^(\S+): ([\d.]+) % of labels as the SavedModel$", re.M)


def exported(run_fcn, trained_flags, tmp_path, capsys, chosen):
    """(export folder, {file: % agreement printed}) of an export of the `chosen` formats."""
    export_dir = str(tmp_path / "exported")
    run_fcn("export", export_dir=export_dir, export_formats=",".join(chosen), **trained_flags)
    return export_dir, {name: float(share) for name, share in AGREEMENT.findall(capsys.readouterr().out)}


def test_the_default_export_is_a_saved_model_of_plain_convolutions_with_its_labels(trained_flags, run_fcn, tmp_path,
                                                                                    capsys):
    export_dir, agreements = exported(run_fcn, trained_flags, tmp_path, capsys, ["saved_model"])
    assert agreements == {}
    assert sorted(os.listdir(export_dir)) == ["assets", "labels.txt", "model.json", "saved_model.pb", "variables"]
    with open(os.path.join(export_dir, "saved_model.pb"), "rb") as saved:
        graph = saved.read()
    assert b"ExtractImagePatches" not in graph and b"Conv2D" in graph
    with open(os.path.join(export_dir, "model.json")) as record_file:
        class_names = json.load(record_file)["class_names"]
    for path in (os.path.join(export_dir, "labels.txt"), os.path.join(export_dir, "assets", "labels.txt")):
        with open(path) as labels_file:
            assert labels_file.read().splitlines() == class_names


def test_an_unknown_format_and_a_bfloat16_conversion_are_one_line_errors(trained_flags, run_fcn, tmp_path):
    with pytest.raises(SystemExit, match="FCN.py: error: --export_formats: unknown format tflite_int4"):
        run_fcn("export", export_dir=str(tmp_path / "a"), export_formats="tflite_int4", **trained_flags)
    with pytest.raises(SystemExit, match="FCN.py: error: .*bfloat16 one \\(--mixed_precision\\)"):
        run_fcn("export", export_dir=str(tmp_path / "b"), export_formats="tflite", mixed_precision=True,
                **trained_flags)


def run_at_two_sizes(path, num_classes):
    """Run the TFLite or ONNX file at two sizes: labels [N, H, W], probabilities [N, H, W, classes]."""
    if path.endswith(".onnx"):
        import onnxruntime
        runtime = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
        assert [value.name for value in runtime.get_inputs()] == ["images"]
        assert [value.name for value in runtime.get_outputs()] == ["labels", "probabilities"]
    else:
        from ai_edge_litert.interpreter import Interpreter
        interpreter = Interpreter(model_path=path)
        assert [(value["name"], value["dtype"]) for value in interpreter.get_input_details()] == [("images", np.uint8)]
        assert [value["name"] for value in interpreter.get_output_details()] == ["labels", "probabilities"]
    for height, width in ((48, 64), (70, 33)):
        batch = np.random.RandomState(0).randint(0, 256, (1, height, width, 3)).astype(np.uint8)
        if path.endswith(".onnx"):
            labels, probabilities = runtime.run(["labels", "probabilities"], {"images": batch})
        else:
            labels = export.tflite_labeller(path)(batch)
            probabilities = None
        assert labels.shape == (1, height, width)
        assert probabilities is None or probabilities.shape == (1, height, width, num_classes)


@pytest.mark.slow
def test_float_tflite_and_onnx_label_as_the_saved_model(trained_flags, run_fcn, tmp_path, capsys):
    export_dir, agreements = exported(run_fcn, trained_flags, tmp_path, capsys, ["tflite", "onnx"])
    assert agreements.keys() == {"model.tflite", "model.onnx"}
    assert min(agreements.values()) >= 99.9
    with open(os.path.join(export_dir, "model.tflite"), "rb") as model_file:
        assert b"Flex" not in model_file.read()
    with open(os.path.join(export_dir, "labels.txt")) as labels_file:
        num_classes = len(labels_file.read().splitlines())
    for name in ("model.tflite", "model.onnx"):
        run_at_two_sizes(os.path.join(export_dir, name), num_classes)


@pytest.mark.slow
def test_quantised_tflite_files_label_nearly_as_the_saved_model(longer_trained_flags, run_fcn, tmp_path, capsys):
    """On a model whose decisions are clear: after 2 steps of training int8 agreed on 80 % only."""
    chosen = ["tflite_float16", "tflite_dynamic", "tflite_int8"]
    export_dir, agreements = exported(run_fcn, longer_trained_flags, tmp_path, capsys, chosen)
    assert agreements.keys() == {formats.FILES[name] for name in chosen}
    assert agreements["model_float16.tflite"] >= 99
    assert agreements["model_dynamic.tflite"] >= 95 and agreements["model_int8.tflite"] >= 95
    for name in chosen:
        with open(os.path.join(export_dir, formats.FILES[name]), "rb") as model_file:
            assert b"Flex" not in model_file.read()
        run_at_two_sizes(os.path.join(export_dir, formats.FILES[name]), None)


@pytest.mark.slow
def test_without_validation_images_int8_needs_calibration_dir_and_float_files_are_not_checked(
        trained_flags, run_fcn, tmp_path, capsys):
    no_data = dict(trained_flags, data_dir=str(tmp_path / "no_data"))
    with pytest.raises(SystemExit, match="FCN.py: error: tflite_int8 needs images to calibrate on"):
        run_fcn("export", export_dir=str(tmp_path / "int8"), export_formats="tflite_int8", **no_data)
    run_fcn("export", export_dir=str(tmp_path / "float"), export_formats="tflite", **no_data)
    assert "model.tflite: not checked against the SavedModel (no validation images)" in capsys.readouterr().out
    images = os.path.join(trained_flags["data_dir"], "ADEChallengeData2016", "images", "validation")
    export_dir, agreements = exported(run_fcn, dict(no_data, calibration_dir=images), tmp_path, capsys,
                                      ["tflite_int8"])
    assert list(agreements) == ["model_int8.tflite"]
