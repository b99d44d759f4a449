"""console.py: progress on a terminal and in a log file, and native start-up noise kept off stderr."""
import io
import os
import subprocess
import sys

from fcn_tensorflow import console
from tests.helpers import PROJECT_DIR


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_rewrites_one_line_on_a_terminal():
    out = Terminal()
    assert list(console.progress(range(3), 3, "Evaluating", out=out)) == [0, 1, 2]
    text = out.getvalue()
    assert text.count("\r") == 3 and text.endswith("\n") and "Evaluating 3/3 (" in text


def test_progress_in_a_log_file_is_a_line_every_tenth():
    out = io.StringIO()
    list(console.progress(range(200), 200, "Evaluating", out=out))
    lines = out.getvalue().splitlines()
    assert "\r" not in out.getvalue()
    assert [line.split()[1] for line in lines] == ["%d/200" % done for done in range(20, 201, 20)]


def test_progress_of_a_download_in_megabytes():
    out = io.StringIO()
    reporter = console.Progress(">> Downloading x.mat, MB", 5e6, "MB", out, scale=1e6)
    for done in range(0, 5000001, 500000):
        reporter.update(done)
    reporter.close()
    assert out.getvalue().splitlines()[-1].startswith(">> Downloading x.mat, MB 5.0/5.0 (")


def test_native_noise_is_dropped_and_other_native_lines_kept(capsys):
    with console.native_stderr_filtered():
        os.write(2, b"I0000 port.cc:153] oneDNN custom operations are on.\nE0000 something real broke\n")
        os.write(2, b"E0000 cuda_platform.cc:52] failed call to cuInit: UNKNOWN ERROR (303)\n")
    assert capsys.readouterr().err == "E0000 something real broke\n"


def test_importing_the_project_changes_no_process_setting():
    """No module switches eager execution off or edits the environment when imported (TensorFlow's own import
    sets a few variables, so it comes first)."""
    code = ("import os, sys\nimport tensorflow as tf\nbefore = dict(os.environ)\n"
            "import FCN, TensorflowUtils, BatchDatsetReader, read_MITSceneParsingData\n"
            "from fcn_tensorflow import metrics\nfrom fcn_tensorflow.run import modes, session\n"
            "print(tf.executing_eagerly(), dict(os.environ) == before)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            cwd=PROJECT_DIR)
    assert result.stdout.split() == ["True", "True"], result.stderr[-2000:]
