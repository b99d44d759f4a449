"""--mode=export: the SavedModel, whose serving_default maps uint8 `images` [N, H, W, 3] to `labels` and
`probabilities` and which carries labels.txt as an asset, beside labels.txt and model.json; then the TFLite and ONNX
files formats.py names, converted from the same graph and each checked against the SavedModel on a few images at
two sizes. Every file takes uint8 RGB images of any size."""
import os
import tempfile

import numpy as np
import tensorflow as tf
from PIL import Image

from fcn_tensorflow.data import reader
from fcn_tensorflow.run import formats
from fcn_tensorflow.run import model_record

LABELS_FILE = "labels.txt"
CHECK_SIZES = ((224, 224), (150, 200))  # (height, width): a square and an image of another shape
CHECK_IMAGES = 3  # the converted files are checked on this many images at each of CHECK_SIZES
ONNX_OPSET = 17


def export_mode(sess, predictor, export_dir, chosen=("saved_model",), class_names=(), record=None, images=()):
    """Write the `chosen` formats (formats.parse) of the session's predictor to export_dir; `images` (uint8 RGB
    arrays) calibrate the int8 file and check every converted file."""
    with tempfile.TemporaryDirectory() as scratch:
        converted = {name: convert(name, sess, predictor, scratch, images) for name in chosen if name != "saved_model"}
        save_model(sess, predictor, export_dir, write_labels(scratch, class_names))  # the asset joins the graph
    write_labels(export_dir, class_names)
    model_record.write(export_dir, record or {})
    print("Exported the SavedModel to %s" % export_dir)
    for name, model in converted.items():
        path = os.path.join(export_dir, formats.FILES[name])
        with open(path, "wb") as model_file:
            model_file.write(model)
        print("Exported %s" % path)
        if images:
            print("%s: %.1f %% of labels as the SavedModel" % (formats.FILES[name], 100 * agreement(
                sess, predictor, path, images[:CHECK_IMAGES])))
        else:
            print("%s: not checked against the SavedModel (no validation images)" % formats.FILES[name])


def write_labels(folder, class_names):
    """folder/labels.txt: one class name a line, line i naming class i; its path."""
    path = os.path.join(folder, LABELS_FILE)
    with open(path, "w") as labels_file:
        labels_file.writelines("%s\n" % name for name in class_names)
    return path


def save_model(sess, predictor, export_dir, labels_file=None):
    """The SavedModel of serving_default (and of labels_file as assets/labels.txt, when given)."""
    signature = tf.compat.v1.saved_model.predict_signature_def(
        inputs={"images": predictor.images},
        outputs={"labels": predictor.labels, "probabilities": predictor.probabilities})
    assets = [tf.constant(labels_file, name="labels_file")] if labels_file else None
    builder = tf.compat.v1.saved_model.Builder(export_dir)
    builder.add_meta_graph_and_variables(sess, [tf.compat.v1.saved_model.SERVING], strip_default_attrs=True,
                                         signature_def_map={"serving_default": signature}, assets_collection=assets)
    builder.save()


def convert(name, sess, predictor, scratch, images):
    """The bytes of format `name`: TFLite from a SavedModel saved before the one with labels.txt (with eager execution
    off the converter refuses a SavedModel with assets), ONNX from the frozen graph."""
    if name == "onnx":
        return onnx_model(sess, predictor)
    plain = os.path.join(scratch, "plain")
    if not os.path.exists(plain):
        save_model(sess, predictor, plain)
    converter = tf.lite.TFLiteConverter.from_saved_model(plain)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if name != "tflite":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if name == "tflite_float16":
        converter.target_spec.supported_types = [tf.float16]
    if name == "tflite_int8":  # images: modes.run_export refuses int8 without them
        converter.representative_dataset = lambda: ([resized(image, CHECK_SIZES[0])[None]] for image in images)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.uint8
    return converter.convert()


def onnx_model(sess, predictor):
    """The ONNX bytes of the predictor (tf2onnx), its input and outputs named as in the SavedModel."""
    import tf2onnx  # noqa: E402 (an optional extra: requirements-export.txt)
    outputs = {"labels": predictor.labels, "probabilities": predictor.probabilities}
    frozen = tf.compat.v1.graph_util.convert_variables_to_constants(
        sess, sess.graph.as_graph_def(), [tensor.op.name for tensor in outputs.values()])
    model, _ = tf2onnx.convert.from_graph_def(frozen, input_names=[predictor.images.name],
                                              output_names=[tensor.name for tensor in outputs.values()],
                                              opset=ONNX_OPSET)
    renamed = dict({predictor.images.name: "images"}, **{tensor.name: key for key, tensor in outputs.items()})
    for value in list(model.graph.input) + list(model.graph.output):
        value.name = renamed.get(value.name, value.name)
    for node in model.graph.node:
        node.input[:] = [renamed.get(name, name) for name in node.input]
        node.output[:] = [renamed.get(name, name) for name in node.output]
    return model.SerializeToString()


def resized(image, size):
    """The uint8 image at size (height, width), bilinear."""
    return reader.resize(image, size[::-1], Image.BILINEAR)


def agreement(sess, predictor, path, images):
    """The share of pixels the model file at `path` labels as the session's predictor does, over `images` at
    CHECK_SIZES."""
    labels_of = onnx_labeller(path) if path.endswith(".onnx") else tflite_labeller(path)
    same = total = 0
    for size in CHECK_SIZES:
        for image in images:
            batch = resized(image, size)[None]
            expected = sess.run(predictor.labels, {predictor.images: batch})
            same += np.count_nonzero(labels_of(batch) == expected)
            total += expected.size
    return same / total


def tflite_labeller(path):
    """labels_of(batch of one uint8 image) through LiteRT, the runtime of phones (tf.lite.Interpreter's successor),
    the input resized to each image."""
    from ai_edge_litert.interpreter import Interpreter  # noqa: E402 (an optional extra: requirements-export.txt)
    interpreter = Interpreter(model_path=path)
    image_input = interpreter.get_input_details()[0]["index"]
    labels_output = next(output["index"] for output in interpreter.get_output_details() if output["name"] == "labels")

    def labels_of(batch):
        interpreter.resize_tensor_input(image_input, batch.shape)
        interpreter.allocate_tensors()
        interpreter.set_tensor(image_input, batch)
        interpreter.invoke()
        return interpreter.get_tensor(labels_output)
    return labels_of


def onnx_labeller(path):
    """labels_of(batch of uint8 images) through onnxruntime."""
    import onnxruntime  # noqa: E402 (an optional extra: requirements-export.txt)
    runtime = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    return lambda batch: runtime.run(["labels"], {"images": batch})[0]
