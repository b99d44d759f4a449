"""Shared fixtures: a narrow beta16-layout VGG19 file, tiny SceneParsing-layout data, a trained tiny model,
FCN.py run in this process or as a command, and HTTP servers on 127.0.0.1."""
import contextlib
import functools
import http.server
import os
import queue
import re
import shutil
import socket
import subprocess
import sys
import threading
import time

import pytest

PROJECT_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, PROJECT_DIR)

import demo_data  # noqa: E402
import matconvnet  # noqa: E402

NARROW_WIDTHS = (4, 8, 8, 16, 16)
NARROW_FC = 16
IMAGE_SIZE = 32
UNREACHABLE = "http://127.0.0.1:9/"  # the discard port: nothing listens, a connection is refused at once
MODEL_FILE = matconvnet.MODEL_FILE
MODEL_URL = UNREACHABLE + MODEL_FILE  # never fetched when the file is there
DATA_URL = UNREACHABLE + "ADEChallengeData2016.zip"  # never fetched when the data is there


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: takes more than ~5 s (make test leaves these out, make test-all and CI run them)")


@pytest.fixture(scope="session")
def vgg_mat(tmp_path_factory):
    """Model_zoo-like folder holding a narrow VGG19 file in the beta16 layout; returns the folder."""
    model_dir = tmp_path_factory.mktemp("Model_zoo")
    demo_data.write_vgg_mat(str(model_dir / MODEL_FILE), NARROW_WIDTHS, NARROW_FC,
                            num_imagenet_classes=10)
    return str(model_dir)


@pytest.fixture(scope="session")
def scene_data(tmp_path_factory):
    """Data_zoo-like folder holding ADEChallengeData2016/ with 8 training and 4 validation pairs."""
    data_dir = tmp_path_factory.mktemp("MIT_SceneParsing")
    demo_data.write_scene_dataset(str(data_dir), num_training=8, num_validation=4, min_size=32, max_size=64)
    return str(data_dir)


def tiny_flags(vgg_mat, scene_data, logs_dir):
    """Command-line flags for a tiny FCN run."""
    return {"model_dir": vgg_mat, "data_dir": scene_data, "logs_dir": str(logs_dir) + "/", "model_url": MODEL_URL,
            "data_url": DATA_URL, "fc_width": NARROW_FC, "image_size": IMAGE_SIZE, "batch_size": 2, "log_every": 1}


@pytest.fixture
def fcn_flags(vgg_mat, scene_data, tmp_path):
    """Flags for a tiny FCN run writing to a fresh logs_dir."""
    return tiny_flags(vgg_mat, scene_data, tmp_path / "logs")


def run_main(mode, **flags):
    """FCN.py's main in this process with these flags (then reset); returns main's exit status."""
    import FCN

    argv = ["FCN.py", "--mode=" + mode] + ["--%s=%s" % item for item in flags.items()]
    FCN.FLAGS.unparse_flags()
    FCN.parse_flags(argv)
    try:
        return FCN.main([])
    finally:
        FCN.FLAGS.unparse_flags()


@pytest.fixture
def run_fcn():
    """run_fcn(mode, **flags): FCN.py's main in this process; errors end in SystemExit as on the command line."""
    return run_main


@pytest.fixture(scope="module")
def trained_logs(vgg_mat, scene_data, tmp_path_factory):
    """A logs_dir holding the checkpoint of a tiny model trained for two steps, made once per test module."""
    flags = tiny_flags(vgg_mat, scene_data, tmp_path_factory.mktemp("trained") / "logs")
    run_main("train", max_iteration=2, save_every=10, **flags)
    return flags["logs_dir"]


@pytest.fixture
def trained_flags(fcn_flags, trained_logs):
    """fcn_flags whose logs_dir is a copy of the trained model's."""
    shutil.copytree(trained_logs, fcn_flags["logs_dir"])
    return fcn_flags


def fcn_command(*args, env=None, timeout=300):
    """python FCN.py args... as a new process, in this environment but for TF_CPP_MIN_LOG_LEVEL (which FCN.py
    run in this process sets) and `env`; returns the CompletedProcess (text stdout and stderr)."""
    environment = {name: value for name, value in os.environ.items() if name != "TF_CPP_MIN_LOG_LEVEL"}
    environment.update(env or {})
    return subprocess.run([sys.executable, os.path.join(PROJECT_DIR, "FCN.py")] + list(args), env=environment,
                          capture_output=True, text=True, timeout=timeout)


def command_flags(flags):
    return ["--%s=%s" % item for item in flags.items()]


class Training(object):
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
