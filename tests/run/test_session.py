"""session.py: restoring the newest readable checkpoint, short reasons for those that do not read, finite saves,
stop requests from signals, the bfloat16 rewrite, and what each mode does when checkpoints do not read."""
import collections
import glob
import os
import signal

import numpy as np
import pytest
import tensorflow as tf

from fcn_tensorflow.data import matconvnet
from fcn_tensorflow.net import graphs
from fcn_tensorflow.net.spec import Net
from fcn_tensorflow.run import checkpoints
from fcn_tensorflow.run import precision
from fcn_tensorflow.run import session
from tests.helpers import (command_flags, fcn_command,
                           write_mixed_images, spoil_checkpoint)


class FakePretrained(object):
    """Stands in for the VGG loader: records whether it was used."""

    def __init__(self):
        self.loaded = self.released = False

    def load(self, sess):
        self.loaded = True

    def release(self):
        self.released = True


Tiny = collections.namedtuple("Tiny", ["variable", "weights_finite"])


def tiny_graph():
    variable = tf.Variable(tf.zeros([3, 4]), name="inference/W")
    return Tiny(variable, tf.reduce_all(tf.math.is_finite(variable)))


def save_steps(logs_dir, steps):
    """Checkpoints of tiny_graph at these steps, the variable holding the step number."""
    with tf.Graph().as_default():
        tiny = tiny_graph()
        saver = tf.compat.v1.train.Saver(max_to_keep=10)
        with tf.compat.v1.Session() as sess:
            for step in steps:
                sess.run(tiny.variable.assign(tf.fill([3, 4], float(step))))
                saver.save(sess, os.path.join(logs_dir, "model.ckpt"), global_step=step)


def restore(logs_dir):
    """(path restored, the variable's value, the FakePretrained) in a new graph."""
    with tf.Graph().as_default():
        tiny = tiny_graph()
        pretrained = FakePretrained()
        with tf.compat.v1.Session() as sess:
            path = session.restore_or_initialize(sess, pretrained, tf.compat.v1.train.Saver(),
                                                 checkpoints.list_checkpoints(logs_dir))
            return path, sess.run(tiny.variable)[0, 0], pretrained


def test_restores_the_newest_and_without_checkpoints_loads_the_pretrained_weights(tmp_path):
    path, value, pretrained = restore(str(tmp_path))
    assert path is None and pretrained.loaded and pretrained.released
    save_steps(str(tmp_path), [1, 2])
    path, value, pretrained = restore(str(tmp_path))
    assert path.endswith("model.ckpt-2") and value == 2 and not pretrained.loaded and pretrained.released


def test_skips_unreadable_ones_with_a_short_reason_and_raises_when_none_reads(tmp_path, capsys):
    logs_dir = str(tmp_path)
    save_steps(logs_dir, [1, 2])
    open(os.path.join(logs_dir, "model.ckpt-2.index"), "wb").write(b"not an index" * 10)
    path, value, _ = restore(logs_dir)
    assert path.endswith("model.ckpt-1") and value == 1
    assert capsys.readouterr().out.splitlines()[0] == ("Skipping checkpoint %s: it cannot be read (not an sstable "
                                                        "(bad magic number))" % os.path.join(logs_dir, "model.ckpt-2"))
    os.remove(os.path.join(logs_dir, "model.ckpt-1.data-00000-of-00001"))
    with pytest.raises(session.UnreadableCheckpoints) as error:
        restore(logs_dir)
    assert str(error.value) == ("no readable checkpoint in %s (model.ckpt-2: not an sstable (bad magic number); "
                                "model.ckpt-1: %s; No such file or directory)"
                                % (logs_dir, os.path.join(logs_dir, "model.ckpt-1.data-00000-of-00001")))


def test_newest_listable_gives_the_saved_shapes(tmp_path):
    save_steps(str(tmp_path), [3])
    path, shapes = session.newest_listable(checkpoints.list_checkpoints(str(tmp_path)))
    assert path.endswith("model.ckpt-3") and shapes == {"inference/W": [3, 4]}
    open(path + ".index", "wb").write(b"garbage" * 10)
    with pytest.raises(session.UnreadableCheckpoints, match=r"model.ckpt-3: not an sstable"):
        session.newest_listable([path])


def test_non_finite_weights_are_never_saved(tmp_path):
    with tf.Graph().as_default():
        tiny = tiny_graph()
        saver = tf.compat.v1.train.Saver()
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            assert session.save_checkpoint(sess, tiny, saver, str(tmp_path), 1)
            sess.run(tiny.variable.assign(tf.fill([3, 4], np.inf)))
            with pytest.raises(FloatingPointError, match="Step 2: the weights are no longer finite"):
                session.save_checkpoint(sess, tiny, saver, str(tmp_path), 2)
    assert checkpoints.list_checkpoints(str(tmp_path)) == [os.path.join(str(tmp_path), "model.ckpt-1")]


def test_a_signal_is_a_stop_request_once_then_acts_as_usual():
    before = signal.getsignal(signal.SIGINT)  # Python's default_int_handler, or SIG_IGN in a background job
    with session.stop_requests() as stop:
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop == ["SIGTERM"]
        assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # a second one would end the process
    assert signal.getsignal(signal.SIGINT) is before


def executed_types(sess, fetches, feed):
    """{op type: set of dtypes of its T attribute} over the graph the session really ran."""
    metadata = tf.compat.v1.RunMetadata()
    sess.run(fetches, feed, run_metadata=metadata,
             options=tf.compat.v1.RunOptions(trace_level=tf.compat.v1.RunOptions.FULL_TRACE,
                                             output_partition_graphs=True))
    types = collections.defaultdict(set)
    for graph in metadata.partition_graphs:
        for node in graph.node:
            if "T" in node.attr and node.attr["T"].WhichOneof("value") == "type":
                types[node.op].add(tf.dtypes.as_dtype(node.attr["T"].type).name)
    return types


@pytest.mark.skipif(precision.mixed_precision_type(False)[0] != "bfloat16",
                    reason="this CPU has neither avx512_bf16 nor amx_bf16")
def test_a_bfloat16_session_computes_convolutions_and_matmuls_in_bfloat16(vgg_mat):
    weights, mean_pixel = matconvnet.load_vgg(vgg_mat, "file:///imagenet-vgg-verydeep-19.mat")
    with tf.Graph().as_default():
        model = graphs.build_model(weights, mean_pixel, Net(fc_width=16))
        feed = {model.image: np.zeros((2, 32, 32, 3)), model.annotation: np.zeros((2, 32, 32, 1)),
                model.keep_probability: 0.85}
        with session.make_session(precision="bfloat16") as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            types = executed_types(sess, [model.train_op, model.loss], feed)
            loss = sess.run(model.loss, feed)
        variable_types = {var.dtype.base_dtype for var in tf.compat.v1.global_variables()}
    convolutions = [op for op in types if "Conv2D" in op or "MatMul" in op]
    assert len(convolutions) >= 4 and all(types[op] == {"bfloat16"} for op in convolutions), dict(types)
    assert types["SparseSoftmaxCrossEntropyWithLogits"] == {"float32"} and types["ResourceApplyAdam"] == {"float32"}
    # the patches of conv6 in bfloat16; their gradient's patches of indices stay float32 (bfloat16 would round them)
    assert types["ExtractImagePatches"] == {"bfloat16", "float32"}
    assert loss.dtype == np.float32 and np.isfinite(loss)
    assert variable_types == {tf.float32, tf.int64}


@pytest.mark.parametrize("mode", ["evaluate", "predict", "export"])
def test_no_readable_checkpoint_stops_evaluate_predict_and_export(trained_flags, run_fcn, tmp_path, capsys, mode):
    spoil_checkpoint(trained_flags["logs_dir"], 0)
    spoil_checkpoint(trained_flags["logs_dir"], 1)
    extra = {"predict": {"input": str(tmp_path / "photos")}, "export": {"export_dir": str(tmp_path / "exported")}}
    write_mixed_images(str(tmp_path / "photos"))
    with pytest.raises(SystemExit) as exit_info:
        run_fcn(mode, **dict(trained_flags, **extra.get(mode, {})))
    assert exit_info.value.code == ("FCN.py: error: no readable checkpoint in %s (model.ckpt-1: Read less bytes than "
                                    "requested; model.ckpt-0: Read less bytes than requested)"
                                    % trained_flags["logs_dir"].rstrip("/"))
    out = capsys.readouterr().out
    assert "Skipping checkpoint" in out and "Detected at node" not in out and "Traceback" not in out
    assert not os.path.exists(tmp_path / "exported") and not os.path.exists(os.path.join(trained_flags["logs_dir"],
                                                                                            "metrics.json"))


def test_an_unreadable_checkpoint_is_one_line_on_the_console(trained_flags, tmp_path):
    """As a user sees it: one line on stderr, exit status 1, no TensorFlow dump anywhere."""
    os.remove(os.path.join(trained_flags["logs_dir"], "model.ckpt-0.index"))
    spoil_checkpoint(trained_flags["logs_dir"], 1, how="garbage")
    write_mixed_images(str(tmp_path / "photos"))
    result = fcn_command("--mode=predict", "--input=%s" % (tmp_path / "photos"), *command_flags(trained_flags))
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "FCN.py: error: no readable checkpoint in %s (model.ckpt-1: TensorBundle at %smodel.ckpt-1 shard 0"
        % (trained_flags["logs_dir"].rstrip("/"), trained_flags["logs_dir"])) and "Checksum does not match" in lines[0]
    assert "Detected at node" not in result.stdout + result.stderr


def test_train_refuses_to_start_afresh_over_unreadable_checkpoints(trained_flags, run_fcn):
    os.remove(os.path.join(trained_flags["logs_dir"], "model.ckpt-0.index"))
    os.remove(os.path.join(trained_flags["logs_dir"], checkpoints.LOCK_FILE))  # checkpoints from elsewhere: no lock
    path = spoil_checkpoint(trained_flags["logs_dir"], 1)
    before = {name: os.path.getmtime(name) for name in glob.glob(path + "*")}
    with pytest.raises(SystemExit) as exit_info:
        run_fcn("train", max_iteration=4, **trained_flags)
    assert exit_info.value.code.startswith("FCN.py: error: no readable checkpoint in %s (model.ckpt-1: "
                                           % trained_flags["logs_dir"].rstrip("/"))
    assert "move them out of %s to start afresh" % trained_flags["logs_dir"] in exit_info.value.code
    assert {name: os.path.getmtime(name) for name in glob.glob(path + "*")} == before
    assert checkpoints.list_checkpoints(trained_flags["logs_dir"]) == [path]
    assert not os.path.exists(os.path.join(trained_flags["logs_dir"], checkpoints.LOCK_FILE))  # old code added one


def test_train_resumes_from_an_older_readable_checkpoint_with_one_line_for_the_newer(fcn_flags, run_fcn, capsys):
    run_fcn("train", max_iteration=3, save_every=1, **fcn_flags)
    spoil_checkpoint(fcn_flags["logs_dir"], 2)
    capsys.readouterr()
    run_fcn("train", max_iteration=4, save_every=1, **fcn_flags)
    lines = capsys.readouterr().out.splitlines()
    assert [line for line in lines if "model.ckpt-2" in line] == [
        "Skipping checkpoint %smodel.ckpt-2: it cannot be read (Read less bytes than requested)" % fcn_flags["logs_dir"]]
    assert "Model restored... %smodel.ckpt-1" % fcn_flags["logs_dir"] in lines
    assert any(line.startswith("Step: 2, Train_loss:") for line in lines)
