"""What FCN.py prints besides results: progress of long work, and TensorFlow's start-up noise kept out.

No TensorFlow import here: the tools that list or download data use it too.
"""
import contextlib
import os
import re
import sys
import tempfile
import time

# Lines TensorFlow's native code prints while it loads and looks for devices: they say nothing about this
# run (a CPU-only machine is not an error), and are shown when the user sets TF_CPP_MIN_LOG_LEVEL.
TENSORFLOW_NOISE = re.compile(r"absl::InitializeLog|oneDNN custom operations|cudart_stub|cuInit|cuda_platform|"
                              r"cpu_feature_guard|This TensorFlow binary is optimized|To enable the following "
                              r"instructions|Unable to register cu(DNN|FFT|BLAS) factory|computation placer")


class Progress(object):
    """`label done/total (rate unit/s)`: rewritten in place on a terminal, a line every 10% in a log file."""

    def __init__(self, label, total, unit="images", out=None, scale=1.0):
        self.label, self.total, self.unit, self.scale = label, total, unit, scale
        self.out = out or sys.stderr
        self.interactive = hasattr(self.out, "isatty") and self.out.isatty()
        self.started = time.time()
        self.next_tenth = 1

    def update(self, done):
        rate = done / self.scale / max(time.time() - self.started, 1e-6)
        if self.total:
            text = "%s %s/%s (%.2f %s/s)" % (self.label, self._amount(done), self._amount(self.total), rate, self.unit)
        else:
            text = "%s %s (%.2f %s/s)" % (self.label, self._amount(done), rate, self.unit)
        if self.interactive:
            self.out.write("\r" + text)
            self.out.flush()
        elif self.total and done * 10 >= self.next_tenth * self.total:
            self.out.write(text + "\n")
            self.next_tenth = done * 10 // self.total + 1

    def close(self):
        if self.interactive:
            self.out.write("\n")
        self.out.flush()

    def _amount(self, count):
        return "%d" % count if self.scale == 1 else "%.1f" % (count / self.scale)


def progress(items, total, label, out=None, unit="images"):
    """Yield items while reporting `label done/total (rate unit/s)` on out (stderr)."""
    reporter = Progress(label, total, unit=unit, out=out)
    for done, item in enumerate(items, start=1):
        yield item
        reporter.update(done)
    reporter.close()


@contextlib.contextmanager
def native_stderr_filtered(noise=TENSORFLOW_NOISE):
    """Within it, what native code writes to file descriptor 2 is held back, then written to sys.stderr
    without the lines matching `noise`."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            for line in captured.read().decode("utf-8", "replace").splitlines(True):
                if not noise.search(line):
                    sys.stderr.write(line)
            sys.stderr.flush()


def import_tensorflow_quietly():
    """Import TensorFlow and find the devices, hiding the start-up noise unless the user set
    TF_CPP_MIN_LOG_LEVEL (then they see everything, as they asked). Returns the module."""
    quiet = "TF_CPP_MIN_LOG_LEVEL" not in os.environ
    if quiet:
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"  # later INFO and WARNING lines of the C++ code
    with native_stderr_filtered() if quiet else contextlib.nullcontext():
        import tensorflow as tf
        tf.config.list_physical_devices()  # the device search prints its noise here, not at the first session
    tf.compat.v1.logging.set_verbosity(tf.compat.v1.logging.ERROR)  # deprecation notes of the compat.v1 API
    return tf
