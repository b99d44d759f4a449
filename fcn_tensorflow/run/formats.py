"""The formats --mode=export writes and the file each goes to (export.py writes them); no TensorFlow, so FCN.py
checks --export_formats before it loads TensorFlow."""
import importlib.util

FILES = {"saved_model": "saved_model.pb", "tflite": "model.tflite", "tflite_float16": "model_float16.tflite",
         "tflite_dynamic": "model_dynamic.tflite", "tflite_int8": "model_int8.tflite", "onnx": "model.onnx"}
CALIBRATED = ("tflite_int8",)  # the formats that need images to calibrate on
# The optional packages (requirements-export.txt) each format needs: to convert it, and to check it in its runtime.
PACKAGES = {"tflite": ("ai_edge_litert",), "tflite_float16": ("ai_edge_litert",), "tflite_dynamic": ("ai_edge_litert",),
            "tflite_int8": ("ai_edge_litert",), "onnx": ("tf2onnx", "onnx", "onnxruntime")}


def missing_packages(chosen):
    """The packages the `chosen` formats need that are not installed (found without importing them)."""
    needed = sorted({package for name in chosen for package in PACKAGES.get(name, ())})
    return [package for package in needed if importlib.util.find_spec(package) is None]


def parse(names):
    """The formats of the --export_formats list, in FILES' order, the SavedModel always among them; ValueError
    naming an unknown one."""
    unknown = [name for name in names if name not in FILES]
    if unknown:
        raise ValueError("--export_formats: unknown format %s (choose among %s)"
                         % (", ".join(unknown), ", ".join(FILES)))
    return tuple(name for name in FILES if name in names or name == "saved_model")
