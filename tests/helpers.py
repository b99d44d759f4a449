"""What the tests share: the narrow VGG and tiny data sizes, FCN.py run in this process or as a command, HTTP servers
on 127.0.0.1, and what several test modules write and read (images, spoilt data and checkpoints, printed scores).
The fixtures that use them are in conftest.py."""
import contextlib
import functools
import glob
import http.server
import json
import os
import queue
import re
import socket
import subprocess
import sys
import threading
import time

import numpy as np
from PIL import Image
import tensorflow as tf

import FCN
from fcn_tensorflow.data import datasets
from fcn_tensorflow.data import matconvnet

PROJECT_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NARROW_WIDTHS = (4, 8, 8, 16, 16)
NARROW_FC = 16
IMAGE_SIZE = 32
UNREACHABLE = "http://127.0.0.1:9/"  # the discard port: nothing listens, a connection is refused at once
MODEL_FILE = matconvnet.MODEL_FILE
MODEL_URL = UNREACHABLE + MODEL_FILE  # never fetched when the file is there
DATA_URL = UNREACHABLE + "ADEChallengeData2016.zip"  # never fetched when the data is there


NEW_SBD_IDS = ["2011_000001", "2011_000002"]  # the ids of conftest's voc_dir that are SBD's alone


def source(data_dir, **options):
    """datasets.Source of data_dir and the options sbd_dir, train_list, val_list, never downloading."""
    return datasets.Source(data_dir, "", 1.0, options.get("sbd_dir", ""), options.get("train_list", ""),
                           options.get("val_list", ""))


def tiny_flags(vgg_mat, scene_data, logs_dir):
    """Command-line flags for a tiny FCN run."""
    return {"model_dir": vgg_mat, "data_dir": scene_data, "logs_dir": str(logs_dir) + "/", "model_url": MODEL_URL,
            "data_url": DATA_URL, "fc_width": NARROW_FC, "image_size": IMAGE_SIZE, "batch_size": 2, "log_every": 1}


def run_main(mode, **flags):
    """FCN.py's main in this process with these flags (then reset); returns main's exit status."""
    argv = ["FCN.py", "--mode=" + mode] + ["--%s=%s" % item for item in flags.items()]
    FCN.FLAGS.unparse_flags()
    FCN.parse_flags(argv)
    try:
        return FCN.main([])
    finally:
        FCN.FLAGS.unparse_flags()


TENSORFLOW_LOADED = "; import sys; print('tensorflow' in sys.modules)"  # appended to run_python's code


def run_python(code, *args):
    """python -c code args... in a new process in the project folder; returns (its stdout's words, its stderr)."""
    result = subprocess.run([sys.executable, "-c", code] + list(args), capture_output=True, text=True, timeout=120,
                            cwd=PROJECT_DIR)
    return result.stdout.split(), result.stderr


def fcn_command(*args, env=None, timeout=300):
    """python FCN.py args... as a new process, in this environment but for TF_CPP_MIN_LOG_LEVEL (which FCN.py
    run in this process sets) and `env`; returns the CompletedProcess (text stdout and stderr)."""
    environment = {name: value for name, value in os.environ.items() if name != "TF_CPP_MIN_LOG_LEVEL"}
    environment.update(env or {})
    return subprocess.run([sys.executable, os.path.join(PROJECT_DIR, "FCN.py")] + list(args), env=environment,
                          capture_output=True, text=True, timeout=timeout)


def command_flags(flags):
    return ["--%s=%s" % item for item in flags.items()]


class TrainingProcess(object):
    """FCN.py --mode=train in a subprocess whose output lines can be awaited; `env` adds environment variables."""

    def __init__(self, flags, env=None):
        argv = [sys.executable, "-u", os.path.join(PROJECT_DIR, "FCN.py"), "--mode=train"] + command_flags(flags)
        self.process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                        env=dict(os.environ, **(env or {})))
        self.lines = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.process.stdout:
            self.lines.put(line)
        self.lines.put("")

    def wait_for(self, pattern, timeout=180):
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                line = self.lines.get(timeout=1)
            except queue.Empty:
                continue
            match = re.search(pattern, line)
            if match:
                return match
            assert line, "training ended without printing %r" % pattern
        raise AssertionError("no %r within %d s" % (pattern, timeout))


class _TruncatingHandler(http.server.SimpleHTTPRequestHandler):
    """Serves files; for names starting with 'cut_' it announces the full size but sends half."""

    def log_message(self, *args):
        pass

    def copyfile(self, source, outputfile):
        if os.path.basename(self.path).startswith("cut_"):
            data = source.read()
            outputfile.write(data[:len(data) // 2])
        else:
            super().copyfile(source, outputfile)


@contextlib.contextmanager
def serve_directory(directory):
    """An HTTP server on 127.0.0.1 (a free port) serving `directory`; yields its base URL."""
    handler = functools.partial(_TruncatingHandler, directory=directory)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield "http://127.0.0.1:%d" % server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def silent_server():
    """A server on 127.0.0.1 that accepts connections and never answers; yields its base URL."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    try:
        yield "http://127.0.0.1:%d" % listener.getsockname()[1]
    finally:
        listener.close()


def checkpoint_steps(logs_dir):
    state = tf.train.get_checkpoint_state(logs_dir)
    return sorted(int(path.rsplit("-", 1)[1]) for path in state.all_model_checkpoint_paths)


def validation_folder(flags, kind):
    return os.path.join(flags["data_dir"], "ADEChallengeData2016", kind, "validation")


def read_metrics(flags):
    with open(os.path.join(flags["logs_dir"], "metrics.json")) as metrics_file:
        return json.load(metrics_file)


def write_mixed_images(folder):
    """JPEG RGB, grayscale, RGBA and palette PNGs of odd sizes; returns {stem: (height, width)}."""
    rng = np.random.RandomState(0)
    os.makedirs(folder, exist_ok=True)
    pictures = {"rgb.jpg": Image.fromarray(rng.randint(0, 255, (37, 53, 3)).astype(np.uint8)),
                "gray.png": Image.fromarray(rng.randint(0, 255, (41, 30)).astype(np.uint8), "L"),
                "rgba.png": Image.fromarray(rng.randint(0, 255, (20, 70, 4)).astype(np.uint8), "RGBA"),
                "palette.png": Image.fromarray(rng.randint(0, 255, (64, 33, 3)).astype(np.uint8)).convert("P")}
    for name, picture in pictures.items():
        picture.save(os.path.join(folder, name))
    return {os.path.splitext(name)[0]: picture.size[::-1] for name, picture in pictures.items()}


def spoil_training_images(data_dir, count=3):
    """Empty the first `count` training images (3: more than 2 bad pairs, enough to stop a run); returns them."""
    paths = sorted(glob.glob(os.path.join(data_dir, "ADEChallengeData2016", "images", "training", "*.jpg")))[:count]
    for path in paths:
        open(path, "wb").close()
    return paths


def empty_validation_split(data_dir):
    for path in glob.glob(os.path.join(data_dir, "ADEChallengeData2016", "*", "validation", "*")):
        os.remove(path)


def checkpoint_is_finite(path):
    reader = tf.train.load_checkpoint(path)
    return all(np.all(np.isfinite(reader.get_tensor(name))) for name, dtype in
               reader.get_variable_to_dtype_map().items() if dtype.is_floating)


def spoil_checkpoint(logs_dir, step, how="truncate"):
    """Damage model.ckpt-<step> as a full disk or a cut copy would; returns its path."""
    path = os.path.join(logs_dir, "model.ckpt-%d" % step)
    data_file = path + ".data-00000-of-00001"
    with open(data_file, "rb") as whole:
        data = whole.read()
    with open(data_file, "wb") as cut:
        cut.write(data[:64] if how == "truncate" else os.urandom(len(data)))
    return path


def printed_scores(out):
    """(pixel accuracy, mean IoU, images) of each validation line."""
    return [(float(accuracy), float(iou), int(images)) for accuracy, iou, images in
            re.findall(r"---> Validation_loss: \S+, pixel_accuracy: (\S+), mean_iou: (\S+) \((\d+) images\)", out)]


def train_losses(out):
    return [line.split("Train_loss:")[1].split()[0] for line in out.splitlines() if "Train_loss:" in line]
