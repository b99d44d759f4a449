"""distribute.py: two replicas take the step one device takes on their whole batch; two workers on 127.0.0.1 train
together, stop together, resume from the chief's checkpoint and stop with an error when one of them dies; the
shards of an epoch cover the split once."""
import contextlib
import glob
import json
import os
import re
import signal
import socket

import numpy as np
from PIL import Image
import pytest
import tensorflow as tf

from fcn_tensorflow.data import demo
from fcn_tensorflow.data import reader as data_reader
from fcn_tensorflow.data import scene_parsing
from fcn_tensorflow.run import checkpoints
from fcn_tensorflow.run import distribute
from tests.helpers import TrainingProcess

WAIT = 300  # seconds any process of these tests may take to print what is awaited, or to end


def checkpoint_values(path):
    reader = tf.train.load_checkpoint(path)
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}


def first_loss(out):
    return float(re.search(r"^Step: 0, Train_loss:(\S+) ", out, re.MULTILINE).group(1))


@pytest.mark.slow
@pytest.mark.parametrize("head", ["original", "fcn8s"])
def test_two_replicas_take_the_step_one_device_takes_on_their_whole_batch(fcn_flags, trained_logs, run_fcn, capsys,
                                                                          head):
    one_step = dict(fcn_flags, max_iteration=1, save_every=1, keep_prob=1.0, init_checkpoint=trained_logs, head=head)
    one = dict(one_step, logs_dir=fcn_flags["logs_dir"] + "one/", batch_size=2)
    two = dict(one_step, logs_dir=fcn_flags["logs_dir"] + "two/", batch_size=1, replicas=2)
    run_fcn("train", **one)
    run_fcn("train", **two)
    assert "Training 2 replicas (/cpu:0, /cpu:1), global batch 2 = --batch_size 1 x 2" in capsys.readouterr().out
    start = checkpoint_values(checkpoints.list_checkpoints(trained_logs)[-1])
    after_one, after_two = (checkpoint_values(flags["logs_dir"] + "model.ckpt-0") for flags in (one, two))
    assert sorted(after_two) == sorted(after_one)  # the same variables: no copy of a replica's own
    moved = [name for name in after_one if name.startswith("inference/") and name in start
             and not np.array_equal(after_one[name], start[name])]
    assert len(moved) > 30
    for name in after_one:
        np.testing.assert_allclose(after_two[name], after_one[name], rtol=0, atol=1e-5, err_msg=name)

    run_fcn("train", **dict(two, max_iteration=2, replicas=1))  # N -> 1
    run_fcn("train", **dict(one, max_iteration=2, replicas=2))  # 1 -> N
    out = capsys.readouterr().out
    assert out.count("Model restored...") == 2 and out.count("Step: 1, Train_loss:") == 2


@pytest.mark.slow
@pytest.mark.parametrize("class_weights", [False, True])
def test_replicas_ignoring_different_numbers_of_pixels_still_weigh_them_as_one_device(fcn_flags, trained_logs, run_fcn,
                                                                                      tmp_path, capsys, class_weights):
    """The two images of the step count different numbers of pixels once label 3 is ignored (most of one image, none
    of the other): each replica's loss is weighted by its share, so the summed loss (whose gradient the step takes)
    is one device's on both images, with --class_weights too. Adam's first step is blind to such a scale (about lr x
    the sign of each gradient), so the losses are compared."""
    data_dir = str(tmp_path / "data")
    root = demo.write_scene_dataset(data_dir, num_training=2, num_validation=1, min_size=32, max_size=32)
    annotations = sorted(glob.glob(os.path.join(root, "annotations", "training", "*.png")))
    for path, share_of_3 in zip(annotations, (0.8, 0.0)):
        labels = np.full((32, 32), 4, np.uint8)
        labels[:int(32 * share_of_3)] = 3
        labels[:, 20:] = 5
        Image.fromarray(labels).save(path)
    one_step = dict(fcn_flags, data_dir=data_dir, max_iteration=1, save_every=1, keep_prob=1.0,
                    init_checkpoint=trained_logs, ignore_label=3)
    if class_weights:
        (tmp_path / "weights.txt").write_text("".join("%g\n" % (1 + index / 10) for index in range(151)))
        one_step["class_weights"] = str(tmp_path / "weights.txt")
    losses = []
    for name, batch_size, replicas in (("one", 2, 1), ("two", 1, 2)):
        run_fcn("train", **dict(one_step, logs_dir=fcn_flags["logs_dir"] + name + "/", batch_size=batch_size,
                                replicas=replicas))
        out = capsys.readouterr().out
        assert ("Class weights (%s): other 1, wall 1.1," % one_step.get("class_weights") in out) == class_weights
        losses.append(first_loss(out))
    assert losses[1] == pytest.approx(losses[0], rel=1e-5)


def test_the_shards_of_an_epoch_cover_the_split_once(scene_data):
    """2 workers x 2 replicas x batch 1 on 8 pairs: two steps an epoch, every pair read once per epoch."""
    records, _ = scene_parsing.read_dataset(scene_data)
    options = {"resize": True, "resize_size": 32}
    images = [data_reader.load_pair(record, 32)[0] for record in records]

    def pair_index(image):
        return [index for index, known in enumerate(images) if np.array_equal(known, image)]
    readers = [data_reader.BatchDatset(distribute.shard(records, worker, 2), options) for worker in range(2)]
    with contextlib.ExitStack() as stack:
        for reader in readers:
            stack.enter_context(reader)
        for _ in range(2):  # the first epoch in the listed order, the second shuffled
            read = []
            for _ in range(2):
                for reader in readers:
                    batch, _ = reader.next_batch(2)
                    for replica_images in np.split(batch, 2):  # as tf.split gives each replica its slice
                        read += pair_index(replica_images[0])
            assert sorted(read) == list(range(len(records)))


def test_replicas_and_tf_config_mistakes_are_one_line_errors():
    with pytest.raises(ValueError, match="with TF_CONFIG each worker trains one replica per visible GPU, or one on "
                                         "a machine without GPUs: here 1, not --replicas=2"):
        distribute.make_cluster(2, tf_config=tf_config(["127.0.0.1:1"], 0))
    with pytest.raises(ValueError, match=r"TF_CONFIG=\{\} does not name this machine's task"):
        distribute.make_cluster(None, tf_config="{}")
    with pytest.raises(ValueError, match="does not name this machine's task .*JSONDecodeError"):
        distribute.make_cluster(None, tf_config="worker 0")
    assert isinstance(distribute.make_cluster(None), distribute.OneDevice)
    assert type(distribute.make_cluster(1)) is distribute.OneDevice


# ---------------------------------------------------------------- two workers on 127.0.0.1

def tf_config(addresses, index):
    return json.dumps({"cluster": {"worker": addresses}, "task": {"type": "worker", "index": index}})


def free_addresses(count):
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    addresses = ["127.0.0.1:%d" % sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return addresses


@contextlib.contextmanager
def two_workers(chief_flags, worker_logs_dir, **flags):
    """FCN.py training as worker 0 (the chief) and worker 1 of one cluster; both are killed when the block ends."""
    addresses = free_addresses(2)
    workers = [TrainingProcess(dict(chief_flags, logs_dir=logs_dir, **flags), env={"TF_CONFIG": tf_config(addresses, index)})
               for index, logs_dir in enumerate((chief_flags["logs_dir"], worker_logs_dir))]
    try:
        yield workers
    finally:
        for worker in workers:
            if worker.process.poll() is None:
                worker.process.kill()
            worker.process.wait(timeout=WAIT)


@pytest.mark.slow
def test_two_workers_train_together_and_the_chief_s_checkpoint_restores_on_one_device(fcn_flags, tmp_path, run_fcn,
                                                                                      capsys):
    worker_logs = str(tmp_path / "worker_logs") + "/"
    with two_workers(fcn_flags, worker_logs, max_iteration=3, save_every=2) as (chief, worker):
        losses = [[float(process.wait_for(r"^Step: %d, Train_loss:(\S+) " % step).group(1)) for step in range(3)]
                  for process in (chief, worker)]
        assert [process.process.wait(timeout=WAIT) for process in (chief, worker)] == [0, 0]
    assert losses[0] == losses[1]  # the loss of the global batch, the same on both
    assert [int(path.rsplit("-", 1)[1]) for path in checkpoints.list_checkpoints(fcn_flags["logs_dir"])] == [0, 2]
    assert not os.path.exists(worker_logs)  # the other worker writes nothing

    with two_workers(fcn_flags, worker_logs, max_iteration=5, save_every=2) as (chief, worker):
        for process in (chief, worker):  # both resume from the chief's checkpoint
            process.wait_for(r"^Step: 3, Train_loss:")
        assert [process.process.wait(timeout=WAIT) for process in (chief, worker)] == [0, 0]
    assert not os.path.exists(worker_logs)

    run_fcn("train", **dict(fcn_flags, max_iteration=6, save_every=2))
    out = capsys.readouterr().out
    assert "Model restored... %smodel.ckpt-4" % fcn_flags["logs_dir"] in out and "Step: 5, Train_loss:" in out
    two_workers_saved, one_device_saved = (dict(tf.train.list_variables(fcn_flags["logs_dir"] + "model.ckpt-%d" % step))
                                           for step in (4, 5))
    assert two_workers_saved == one_device_saved  # the same names and shapes, nothing of a worker's own


@pytest.mark.slow
def test_sigterm_on_the_chief_stops_both_and_a_dead_worker_stops_the_other(fcn_flags, tmp_path):
    worker_logs = str(tmp_path / "worker_logs") + "/"
    endless = dict(max_iteration=100000, save_every=1000)
    with two_workers(fcn_flags, worker_logs, **endless) as (chief, worker):
        worker.wait_for(r"^Step: 2,")
        chief.process.send_signal(signal.SIGTERM)
        stopped_at = int(chief.wait_for(r"^SIGTERM: stopping after step (\d+)").group(1))
        worker.wait_for(r"^stop asked on another worker: stopping after step %d$" % stopped_at)
        assert [process.process.wait(timeout=WAIT) for process in (chief, worker)] == [0, 0]
    assert checkpoints.list_checkpoints(fcn_flags["logs_dir"])[-1].endswith("model.ckpt-%d" % stopped_at)

    with two_workers(fcn_flags, worker_logs, **endless) as (chief, worker):
        for process in (chief, worker):
            process.wait_for(r"^Step: %d," % (stopped_at + 1))
        worker.wait_for(r"^Step: %d," % (stopped_at + 2))
        worker.process.kill()
        chief.wait_for(r"^FCN.py: error: lost the other workers of TF_CONFIG's cluster \(\w+Error: .*Every "
                       r"worker stops: start all of them again")
        assert chief.process.wait(timeout=WAIT) == 1

    with two_workers(fcn_flags, worker_logs, max_iteration=stopped_at + 2) as (chief, worker):
        for process in (chief, worker):  # both resume from the newest checkpoint again
            process.wait_for(r"^Step: %d," % (stopped_at + 1))
        assert [process.process.wait(timeout=WAIT) for process in (chief, worker)] == [0, 0]


@pytest.mark.slow
def test_a_frozen_worker_stops_the_other_after_worker_timeout(fcn_flags, tmp_path):
    with two_workers(fcn_flags, str(tmp_path / "worker_logs") + "/", max_iteration=100000, worker_timeout=30) as (
            chief, worker):
        worker.wait_for(r"^Step: 1,")
        worker.process.send_signal(signal.SIGSTOP)
        chief.wait_for(r"^FCN.py: error: lost the other workers of TF_CONFIG's cluster \(DeadlineExceededError: "
                       r"Operation timed out.*--worker_timeout=30 s counts as lost\)")
        assert chief.process.wait(timeout=WAIT) == 1
