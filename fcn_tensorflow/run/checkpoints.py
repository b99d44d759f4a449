"""What a logs_dir holds, read without TensorFlow: the checkpoint list and the training lock (model.json:
model_record.py).

So FCN.py can answer "nothing to export" or "another training runs here" before it loads TensorFlow.
"""
import codecs
import glob
import os
import re

from fcn_tensorflow.data import downloads

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None
    import msvcrt

CHECKPOINT_NAME = "model.ckpt"
STATE_FILE = "checkpoint"  # TensorFlow's list of the checkpoints it keeps
LOCK_FILE = "training.lock"


def list_checkpoints(logs_dir):
    """The checkpoints in logs_dir, oldest first: every model.ckpt-<step> with its index file, and any other the
    `checkpoint` state file names that has files there.

    Looking on disk finds checkpoints when the state file is missing or damaged; names in the state file are
    taken inside logs_dir, so a logs_dir copied elsewhere restores its own checkpoints, not the originals."""
    on_disk = [index[:-len(".index")] for index in glob.glob(os.path.join(logs_dir, CHECKPOINT_NAME + "-*.index"))]
    listed = [os.path.join(logs_dir, name) for name in _names_in_state_file(logs_dir)]
    listed = [path for path in listed if os.path.exists(path + ".index") or os.path.isfile(path)]  # V2 or V1 files
    by_path = {os.path.normpath(path): path for path in on_disk + listed}
    return sorted(by_path.values(), key=checkpoint_step)


def _names_in_state_file(logs_dir):
    """The file names of the checkpoints the text-format state file TensorFlow writes lists."""
    try:
        with open(os.path.join(logs_dir, STATE_FILE), "rb") as state:
            text = state.read()
    except OSError:
        return []
    quoted = re.findall(rb'^\s*(?:all_)?model_checkpoint_paths?:\s*"((?:[^"\\]|\\.)*)"', text, re.MULTILINE)
    return [os.path.basename(codecs.escape_decode(path)[0].decode("utf-8", "replace").replace("\\", "/"))
            for path in quoted]


def checkpoint_step(path):
    """The step in a model.ckpt-<step> path, -1 when it has none."""
    match = re.search(r"-(\d+)$", path)
    return int(match.group(1)) if match else -1


def resolve_checkpoint(path):
    """A checkpoint path from a checkpoint (model.ckpt-500) or a folder of them (its newest); None if neither."""
    if os.path.isdir(path):
        found = list_checkpoints(path)
        return found[-1] if found else None
    return path if os.path.exists(path + ".index") else None


def remove_partial_saves(logs_dir):
    """Delete what a save cut short left behind (TF writes the data to <name>.tempstate<random> first)."""
    for path in glob.glob(os.path.join(logs_dir, CHECKPOINT_NAME + "-*.tempstate*")):
        os.remove(path)
        print("Removed %s, left by a save that was cut short" % path)


class LockedError(RuntimeError):
    """Another process trains in the same logs_dir."""


class TrainingLock(object):
    """One training per logs_dir: an OS lock on logs_dir/training.lock, which holds the owner's PID.

    The OS releases the lock when its process ends, however it ends; a PID left in the file by a killed
    run is reported and taken over. logs_dir is made if missing; a run that fails before it wrote anything
    there takes back what it made (the lock file, the folders)."""

    def __init__(self, logs_dir):
        self.logs_dir = logs_dir
        self.path = os.path.join(logs_dir, LOCK_FILE)
        self._file = None

    def __enter__(self):
        self._made_folders = downloads.missing_folders(self.logs_dir)
        while True:
            os.makedirs(self.logs_dir, exist_ok=True)
            self._made_file = not os.path.exists(self.path)
            self._found = set(os.listdir(self.logs_dir))
            lock_file = _open_locked(self.path, self.logs_dir)
            if lock_file:
                break
        lock_file.seek(0)
        left = lock_file.read().strip()
        if left:
            print("Taking over %s from PID %s, which ended without releasing it" % (self.path, left))
        lock_file.seek(0)
        lock_file.truncate()
        lock_file.write("%d\n" % os.getpid())
        lock_file.flush()
        self._file = lock_file
        return self

    def __exit__(self, exc_type, *exc_info):
        self._file.seek(0)
        self._file.truncate()  # an empty file: ended cleanly
        self._file.flush()
        nothing_written = exc_type is not None and set(os.listdir(self.logs_dir)) <= self._found | {LOCK_FILE}
        if nothing_written and self._made_file and fcntl:
            os.remove(self.path)  # while locked: whoever opened it before fails to lock it, or sees it gone
        _unlock(self._file)
        self._file.close()
        if nothing_written and self._made_file and not fcntl and os.path.exists(self.path):
            os.remove(self.path)  # Windows removes no open file
        if nothing_written:
            for folder in self._made_folders:
                if not os.listdir(folder):
                    os.rmdir(folder)


def _open_locked(path, logs_dir):
    """path opened and locked; None when it was removed meanwhile (by a run that failed before writing anything),
    so the caller makes it again; LockedError when another process holds it."""
    try:
        lock_file = open(path, "a+")
    except FileNotFoundError:  # logs_dir itself was taken back
        return None
    try:
        _lock(lock_file)
    except OSError:
        lock_file.seek(0)
        owner = lock_file.read().strip() or "unknown"
        lock_file.close()
        raise LockedError("another training (PID %s) is using %s; wait for it to end, stop it, or pass another "
                          "--logs_dir" % (owner, logs_dir))
    try:
        same = os.path.samestat(os.fstat(lock_file.fileno()), os.stat(path))
    except FileNotFoundError:
        same = False
    if not same:
        _unlock(lock_file)
        lock_file.close()
        return None
    return lock_file


def _lock(lock_file):
    if fcntl:
        fcntl.flock(lock_file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    else:
        lock_file.seek(0)
        msvcrt.locking(lock_file.fileno(), msvcrt.LK_NBLCK, 1)


def _unlock(lock_file):
    if fcntl:
        fcntl.flock(lock_file.fileno(), fcntl.LOCK_UN)
    else:
        lock_file.seek(0)
        msvcrt.locking(lock_file.fileno(), msvcrt.LK_UNLCK, 1)
