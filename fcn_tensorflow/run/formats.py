"""The formats --mode=export writes and the file each goes to (export.py writes them); no TensorFlow, so FCN.py
checks --export_formats before it loads TensorFlow."""
FILES = {"saved_model": "saved_model.pb", "tflite": "model.tflite", "tflite_float16": "model_float16.tflite",
         "tflite_dynamic": "model_dynamic.tflite", "tflite_int8": "model_int8.tflite", "onnx": "model.onnx"}
CALIBRATED = ("tflite_int8",)  # the formats that need images to calibrate on


def parse(names):
    """The formats of the --export_formats list, in FILES' order, the SavedModel always among them; ValueError
    naming an unknown one."""
    unknown = [name for name in names if name not in FILES]
    if unknown:
        raise ValueError("--export_formats: unknown format %s (choose among %s)"
                         % (", ".join(unknown), ", ".join(FILES)))
    return tuple(name for name in FILES if name in names or name == "saved_model")
