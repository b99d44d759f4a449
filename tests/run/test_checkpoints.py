"""checkpoints.py: the checkpoint list without TensorFlow, and the one-training-per-logs_dir lock."""
import os
import subprocess
import sys

import pytest

from fcn_tensorflow.run import checkpoints
from tests.helpers import PROJECT_DIR, TENSORFLOW_LOADED, run_python


def touch_checkpoint(logs_dir, name):
    for suffix in (".index", ".data-00000-of-00001"):
        open(os.path.join(logs_dir, name + suffix), "w").close()


def write_state(logs_dir, *paths):
    with open(os.path.join(logs_dir, checkpoints.STATE_FILE), "w") as state:
        state.write('model_checkpoint_path: "%s"\n' % paths[-1])
        for path in paths:
            state.write('all_model_checkpoint_paths: "%s"\n' % path)


def test_lists_checkpoints_on_disk_and_in_the_state_file_by_step(tmp_path):
    logs_dir = str(tmp_path)
    for step in (10, 2, 300):
        touch_checkpoint(logs_dir, "model.ckpt-%d" % step)
    touch_checkpoint(logs_dir, "best-7")  # another prefix: only the state file names it
    write_state(logs_dir, "/elsewhere/model.ckpt-2", "best-7", "model.ckpt-300")
    assert checkpoints.list_checkpoints(logs_dir) == [os.path.join(logs_dir, name) for name in
                                                      ("model.ckpt-2", "best-7", "model.ckpt-10", "model.ckpt-300")]


def test_state_file_paths_are_taken_inside_logs_dir_and_missing_ones_left_out(tmp_path):
    """A logs_dir copied elsewhere keeps the original's absolute paths in its state file."""
    logs_dir = str(tmp_path / "copy")
    os.makedirs(logs_dir)
    touch_checkpoint(logs_dir, "model.ckpt-4")
    write_state(logs_dir, str(tmp_path / "original" / "model.ckpt-4"), "model.ckpt-9")
    assert checkpoints.list_checkpoints(logs_dir) == [os.path.join(logs_dir, "model.ckpt-4")]


@pytest.mark.parametrize("state", [None, b"\x00\xff garbage", b'model_checkpoint_path: "unterminated'])
def test_a_missing_or_damaged_state_file_still_finds_what_is_on_disk(tmp_path, state):
    touch_checkpoint(str(tmp_path), "model.ckpt-5")
    if state is not None:
        (tmp_path / checkpoints.STATE_FILE).write_bytes(state)
    assert checkpoints.list_checkpoints(str(tmp_path)) == [os.path.join(str(tmp_path), "model.ckpt-5")]
    assert checkpoints.list_checkpoints(str(tmp_path / "no_such_dir")) == []


def test_listing_checkpoints_does_not_load_tensorflow():
    words, stderr = run_python("from fcn_tensorflow.run import checkpoints, model_record; "
                               "checkpoints.list_checkpoints('.'); model_record.read('.')" + TENSORFLOW_LOADED)
    assert words == ["False"], stderr


def test_remove_partial_saves(tmp_path, capsys):
    leftover = tmp_path / "model.ckpt-3.data-00000-of-00001.tempstate123"
    leftover.write_bytes(b"x")
    touch_checkpoint(str(tmp_path), "model.ckpt-2")
    checkpoints.remove_partial_saves(str(tmp_path))
    assert not leftover.exists() and (tmp_path / "model.ckpt-2.index").exists()
    assert "Removed %s, left by a save that was cut short" % leftover in capsys.readouterr().out


def test_one_lock_per_logs_dir(tmp_path):
    with checkpoints.TrainingLock(str(tmp_path)):
        assert (tmp_path / checkpoints.LOCK_FILE).read_text() == "%d\n" % os.getpid()
        with pytest.raises(checkpoints.LockedError, match=r"another training \(PID %d\) is using %s; wait for it "
                                                          r"to end" % (os.getpid(), tmp_path)):
            with checkpoints.TrainingLock(str(tmp_path)):
                pass
    assert (tmp_path / checkpoints.LOCK_FILE).read_text() == ""  # released cleanly
    with checkpoints.TrainingLock(str(tmp_path)):  # and free again
        pass


def test_a_lock_given_up_by_a_failure_before_anything_was_written_leaves_nothing_behind(tmp_path):
    """Old code: the lock needed its folder made beforehand, and left training.lock behind in any case."""
    new_dir = tmp_path / "new" / "logs"
    with pytest.raises(RuntimeError):
        with checkpoints.TrainingLock(str(new_dir)):
            assert (new_dir / checkpoints.LOCK_FILE).exists()
            raise RuntimeError("no data")
    assert not (tmp_path / "new").exists()
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "model.ckpt-1.index").write_bytes(b"")
    with pytest.raises(RuntimeError):
        with checkpoints.TrainingLock(str(tmp_path / "old")):
            os.remove(str(tmp_path / "old" / "model.ckpt-1.index"))  # removing (a partial save) adds nothing
            raise RuntimeError("unreadable checkpoints")
    assert os.listdir(str(tmp_path / "old")) == []
    with pytest.raises(RuntimeError):
        with checkpoints.TrainingLock(str(new_dir)):
            (new_dir / "model.json").write_text("{}")
            raise RuntimeError("failed while training")
    assert sorted(os.listdir(str(new_dir))) == ["model.json", checkpoints.LOCK_FILE]  # training had started
    assert (new_dir / checkpoints.LOCK_FILE).read_text() == ""


def test_the_lock_of_a_killed_process_is_taken_over(tmp_path, capsys):
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time\nfrom fcn_tensorflow.run import checkpoints\n"
                               "lock = checkpoints.TrainingLock(sys.argv[1]).__enter__()\nprint('locked', flush=True)\n"
                               "time.sleep(600)", str(tmp_path)], stdout=subprocess.PIPE, text=True, cwd=PROJECT_DIR)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(checkpoints.LockedError, match="PID %d" % holder.pid):
            checkpoints.TrainingLock(str(tmp_path)).__enter__()
    finally:
        holder.kill()
        holder.wait(timeout=60)
    with checkpoints.TrainingLock(str(tmp_path)):
        assert (tmp_path / checkpoints.LOCK_FILE).read_text() == "%d\n" % os.getpid()
    assert "Taking over %s from PID %d, which ended without releasing it" % (
        tmp_path / checkpoints.LOCK_FILE, holder.pid) in capsys.readouterr().out


def test_resolve_checkpoint_from_a_file_or_a_folder(tmp_path):
    touch_checkpoint(str(tmp_path), "model.ckpt-3")
    touch_checkpoint(str(tmp_path), "model.ckpt-12")
    newest = os.path.join(str(tmp_path), "model.ckpt-12")
    assert checkpoints.resolve_checkpoint(str(tmp_path)) == newest
    assert checkpoints.resolve_checkpoint(os.path.join(str(tmp_path), "model.ckpt-3")).endswith("model.ckpt-3")
    assert checkpoints.resolve_checkpoint(str(tmp_path / "model.ckpt-4")) is None
    assert checkpoints.resolve_checkpoint(str(tmp_path / "empty_dir_missing")) is None
