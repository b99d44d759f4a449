"""training.py through FCN.py: train -> checkpoint -> resume -> visualize on tiny data, TensorBoard, validation curves,
seeds, and how training ends when something goes wrong (NaN, a failed save, Ctrl-C, kill -9, a second training)."""
import glob
import os
import random
import re
import signal
import time

import numpy as np
import pytest
import tensorflow as tf

from fcn_tensorflow import metrics
from fcn_tensorflow.data import matconvnet
from fcn_tensorflow.data import reader as data_reader
from fcn_tensorflow.data import scene_parsing
from fcn_tensorflow.net import graphs
from fcn_tensorflow.net.spec import Net
from fcn_tensorflow.run import checkpoints
from fcn_tensorflow.run import training
from tests.helpers import (MODEL_URL, NARROW_FC, TrainingProcess, checkpoint_steps, checkpoint_is_finite, printed_scores, train_losses)


def test_train_checkpoint_resume_visualize(fcn_flags, run_fcn, capsys):
    logs_dir = fcn_flags["logs_dir"]
    run_fcn("train", max_iteration=3, save_every=2, **fcn_flags)
    out = capsys.readouterr().out
    assert "Step: 0, Train_loss:" in out and "images/s" in out
    assert "---> Validation_loss:" in out
    assert checkpoint_steps(logs_dir) == [0, 2]
    saved = dict(tf.train.list_variables(tf.train.latest_checkpoint(logs_dir)))
    assert "global_step" in saved and "inference/W_t3/Adam" in saved and "beta1_power" in saved
    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(logs_dir))
    assert reader.get_tensor("global_step") == 3

    run_fcn("train", max_iteration=5, save_every=2, **fcn_flags)
    out = capsys.readouterr().out
    assert "Model restored..." in out
    assert "Step: 3, Train_loss:" in out and "Step: 0," not in out
    assert checkpoint_steps(logs_dir) == [0, 2, 4]

    run_fcn("visualize", **fcn_flags)
    out = capsys.readouterr().out
    assert "compare_6.png in" in out
    for k in (5, 6):
        for prefix in ("inp", "gt", "pred", "compare"):
            assert os.path.exists(os.path.join(logs_dir, "%s_%d.png" % (prefix, k)))
    assert len(glob.glob(os.path.join(logs_dir, "train", "events.out.tfevents.*"))) == 2


def test_tensorboard_event_files_hold_the_tags(fcn_flags, run_fcn):
    from tensorboard.backend.event_processing import event_accumulator

    run_fcn("train", max_iteration=2, save_every=1, debug=True, **fcn_flags)

    def tags(run):
        accumulator = event_accumulator.EventAccumulator(
            os.path.join(fcn_flags["logs_dir"], run), size_guidance={event_accumulator.IMAGES: 0})
        return accumulator.Reload().Tags(), accumulator

    train_tags, train = tags("train")
    assert "entropy" in train_tags["scalars"]
    assert train_tags["graph"]
    assert any(tag.endswith("/activation") for tag in train_tags["histograms"])
    assert any(tag.endswith("/gradient") for tag in train_tags["histograms"])
    assert any(tag.endswith("/sparsity") for tag in train_tags["scalars"])
    assert [event.step for event in train.Scalars("entropy")] == [0, 1]

    validation_tags, validation = tags("validation")
    assert "entropy" in validation_tags["scalars"]
    for name in ("input_image", "ground_truth", "pred_annotation"):  # TF1 tags: name/image/<index>
        assert {name + "/image/0", name + "/image/1"} <= set(validation_tags["images"])
    picture = validation.Images("ground_truth/image/0")[0]
    assert (picture.width, picture.height) == (32, 32)


def test_checkpoint_of_the_original_restores(fcn_flags, run_fcn, capsys):
    """Same variable names, Adam slots, no global_step: restores, and says what starts fresh."""
    logs_dir = fcn_flags["logs_dir"]
    os.makedirs(logs_dir)
    with tf.Graph().as_default():
        weights, mean_pixel = matconvnet.load_vgg(fcn_flags["model_dir"], MODEL_URL)
        graphs.build_model(weights, mean_pixel, Net(fc_width=fcn_flags["fc_width"]))
        original_vars = [v for v in tf.compat.v1.global_variables() if v.op.name != "global_step"]
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            sess.run(original_vars[0].assign(tf.fill(original_vars[0].shape, 0.5)))
            tf.compat.v1.train.Saver(original_vars).save(sess, os.path.join(logs_dir, "model.ckpt"), global_step=500)
    assert "global_step" not in dict(tf.train.list_variables(tf.train.latest_checkpoint(logs_dir)))
    run_fcn("train", max_iteration=1, save_every=1, learning_rate=1e-30, **fcn_flags)
    out = capsys.readouterr().out
    assert "Model restored..." in out
    assert "Initialised fresh (not in the checkpoint): global_step" in out
    assert "Step: 0, Train_loss:" in out
    reader = tf.train.load_checkpoint(os.path.join(logs_dir, "model.ckpt-0"))
    np.testing.assert_allclose(reader.get_tensor(original_vars[0].op.name), 0.5)

# ---------------------------------------------------------------- evaluate, predict, export


def test_nan_loss_stops_naming_the_step_and_keeps_the_last_good_checkpoint(fcn_flags, run_fcn):
    with pytest.raises(SystemExit) as exit_info:  # Adam moves every weight by about 1e30 at once
        run_fcn("train", max_iteration=20, save_every=1, learning_rate=1e30, **fcn_flags)
    failed_step = int(re.match(r"FCN.py: error: Step (\d+): the training loss is (nan|inf)", exit_info.value.code)
                      .group(1))
    state = tf.train.get_checkpoint_state(fcn_flags["logs_dir"])
    assert state.model_checkpoint_path.endswith("model.ckpt-%d" % (failed_step - 1))
    assert all(checkpoint_is_finite(path) for path in state.all_model_checkpoint_paths)


def test_failed_save_is_reported_and_resume_skips_its_leftovers(fcn_flags, run_fcn, monkeypatch, capsys):
    logs_dir = fcn_flags["logs_dir"]
    real_save = tf.compat.v1.train.Saver.save

    def disk_full_after_the_first(saver, sess, save_path, global_step):
        if global_step == 0:
            return real_save(saver, sess, save_path, global_step=global_step)
        for suffix in (".index", ".data-00000-of-00001"):  # half-written files, as a full disk leaves them
            with open(os.path.join(logs_dir, "model.ckpt-0" + suffix), "rb") as whole:
                data = whole.read()
            with open("%s-%d%s" % (save_path, global_step, suffix), "wb") as partial:
                partial.write(data[:len(data) // 2])
        raise tf.errors.ResourceExhaustedError(None, None, "No space left on device")
    monkeypatch.setattr(tf.compat.v1.train.Saver, "save", disk_full_after_the_first)
    run_fcn("train", max_iteration=3, save_every=1, **fcn_flags)
    out = capsys.readouterr().out
    assert "Could not save the checkpoint of step 1 (No space left on device)" in out
    assert "Step: 2, Train_loss:" in out
    assert checkpoint_steps(logs_dir) == [0]

    monkeypatch.setattr(tf.compat.v1.train.Saver, "save", real_save)
    leftover = os.path.join(logs_dir, "model.ckpt-2.data-00000-of-00001.tempstate123")  # from a save cut by kill -9
    open(leftover, "w").close()
    run_fcn("train", max_iteration=3, save_every=1, **fcn_flags)
    out = capsys.readouterr().out
    assert not os.path.exists(leftover)
    assert "Skipping checkpoint %smodel.ckpt-2: it cannot be read" % logs_dir in out
    assert "Model restored... %smodel.ckpt-0" % logs_dir in out
    assert "Step: 1, Train_loss:" in out
    assert checkpoint_steps(logs_dir) == [0, 1, 2]


def test_ctrl_c_saves_the_current_step_and_returns(fcn_flags, run_fcn, monkeypatch, capsys):
    before = signal.getsignal(signal.SIGINT)  # Python's default_int_handler, or SIG_IGN in a background job
    real_next_batch = data_reader.BatchDatset.next_batch
    calls = []

    def interrupted_next_batch(reader, batch_size):
        calls.append(batch_size)
        if len(calls) == 3:
            os.kill(os.getpid(), signal.SIGINT)
        return real_next_batch(reader, batch_size)
    monkeypatch.setattr(data_reader.BatchDatset, "next_batch", interrupted_next_batch)
    run_fcn("train", max_iteration=100, save_every=1000, **fcn_flags)
    out = capsys.readouterr().out
    stopped_at = int(re.search(r"SIGINT: stopping after step (\d+)", out).group(1))
    assert stopped_at < 5 and "Run the same command again to resume" in out
    assert checkpoint_steps(fcn_flags["logs_dir"]) == [0, stopped_at]
    assert signal.getsignal(signal.SIGINT) is before  # restored after training


@pytest.mark.slow
def test_kill_9_at_random_moments_then_sigterm_resumes_and_exits_0(fcn_flags):
    flags = dict(fcn_flags, max_iteration=100000, save_every=1)
    logs_dir = flags["logs_dir"]
    moments = random.Random(9)  # random, but the same moments on every run
    for _ in range(3):
        training = TrainingProcess(flags)
        for _ in range(2):  # the second step comes after the first one's checkpoint
            training.wait_for(r"^Step: \d+")
        time.sleep(moments.uniform(0, 1.5))
        training.process.kill()
        training.process.wait(timeout=60)
    state = tf.train.get_checkpoint_state(logs_dir)
    for path in state.all_model_checkpoint_paths:
        reader = tf.train.load_checkpoint(path)
        for name in reader.get_variable_to_shape_map():
            reader.get_tensor(name)
    newest_global_step = max(tf.train.load_checkpoint(path).get_tensor("global_step")
                             for path in checkpoints.list_checkpoints(logs_dir))

    training = TrainingProcess(flags)
    assert training.wait_for(r"^Model restored\.\.\. ")
    assert int(training.wait_for(r"^Step: (\d+)").group(1)) == newest_global_step
    training.process.send_signal(signal.SIGTERM)
    stopped_at = int(training.wait_for(r"^SIGTERM: stopping after step (\d+)").group(1))
    assert training.process.wait(timeout=120) == 0
    assert tf.train.latest_checkpoint(logs_dir).endswith("model.ckpt-%d" % stopped_at)


def test_batch_larger_than_the_validation_split(fcn_flags, run_fcn, capsys):
    """4 validation pairs, batch 6: training validates on the 4, visualize draws 6 with replacement."""
    big_batch = dict(fcn_flags, batch_size=6)
    run_fcn("train", max_iteration=1, save_every=1, **big_batch)
    run_fcn("visualize", **big_batch)
    out = capsys.readouterr().out
    assert "---> Validation_loss:" in out and "compare_10.png in" in out


def test_training_already_at_max_iteration_says_so_and_writes_nothing(trained_flags, run_fcn, capsys):
    logs_dir = trained_flags["logs_dir"]
    before = sorted(os.listdir(logs_dir))
    assert run_fcn("train", max_iteration=2, **trained_flags) in (None, 0)
    assert "Already at step 2 (>= --max_iteration=2): nothing to train" in capsys.readouterr().out
    assert sorted(os.listdir(logs_dir)) == sorted(set(before) | {checkpoints.LOCK_FILE})


def test_a_second_training_on_the_same_logs_dir_is_refused_and_a_killed_one_s_lock_taken_over(fcn_flags, run_fcn,
                                                                                             capsys):
    first = TrainingProcess(dict(fcn_flags, max_iteration=100000, save_every=1000))
    try:
        first.wait_for(r"^Step: \d+")
        with pytest.raises(SystemExit) as exit_info:
            run_fcn("train", max_iteration=1, **fcn_flags)
        assert exit_info.value.code == ("FCN.py: error: another training (PID %d) is using %s; wait for it to end, "
                                        "stop it, or pass another --logs_dir" % (first.process.pid, fcn_flags["logs_dir"]))
    finally:
        first.process.kill()
        first.process.wait(timeout=60)
    capsys.readouterr()
    run_fcn("train", max_iteration=1, save_every=1, **fcn_flags)
    out = capsys.readouterr().out
    assert "Taking over %s from PID %d, which ended without releasing it" % (
        os.path.join(fcn_flags["logs_dir"], checkpoints.LOCK_FILE), first.process.pid) in out
    assert "Step: 0, Train_loss:" in out


# ---------------------------------------------------------------- predict: bad files


def test_validation_points_score_the_first_val_images_for_the_curves(fcn_flags, run_fcn, capsys):
    from tensorboard.backend.event_processing import event_accumulator

    run_fcn("train", max_iteration=2, save_every=1, val_images=3, **fcn_flags)
    scores = printed_scores(capsys.readouterr().out)
    assert len(scores) == 2 and [images for _, _, images in scores] == [3, 3]
    validation = event_accumulator.EventAccumulator(os.path.join(fcn_flags["logs_dir"], "validation")).Reload()
    for tag, index in (("validation/pixel_accuracy", 0), ("validation/mean_iou", 1)):
        events = validation.Scalars(tag)
        assert [event.step for event in events] == [0, 1]
        assert [round(event.value, 4) for event in events] == [score[index] for score in scores]

    with tf.Graph().as_default():  # the last point, computed here from its checkpoint and the first 3 pairs
        weights, mean_pixel = matconvnet.load_vgg(fcn_flags["model_dir"], MODEL_URL)
        model = graphs.build_model(weights, mean_pixel, Net(fc_width=NARROW_FC))
        with tf.compat.v1.Session() as sess:
            tf.compat.v1.train.Saver().restore(sess, os.path.join(fcn_flags["logs_dir"], "model.ckpt-1"))
            records = scene_parsing.read_dataset(fcn_flags["data_dir"])[1][:3]
            with data_reader.BatchDatset(records, {"resize": True, "resize_size": 32}) as reader:
                images, annotations = reader.get_records()
            predictions = sess.run(model.pred_annotation, training.feed(model, images))
    confusion = metrics.confusion_matrix(annotations, predictions, 151)
    assert scores[-1][:2] == (round(metrics.pixel_accuracy(confusion), 4), round(metrics.mean_iou(confusion), 4))

    run_fcn("train", max_iteration=3, save_every=1, val_images=0, **fcn_flags)
    out = capsys.readouterr().out
    assert "---> Validation_loss:" in out and printed_scores(out) == []
    run_fcn("train", max_iteration=4, save_every=1, **fcn_flags)  # the default, 100, is more than the split holds
    assert [images for _, _, images in printed_scores(capsys.readouterr().out)] == [4]


@pytest.mark.slow
def test_a_seed_repeats_a_training_run_augmentation_included(fcn_flags, run_fcn, tmp_path, capsys):
    losses = []
    for run, seed in enumerate((7, 7, 8)):
        flags = dict(fcn_flags, logs_dir=str(tmp_path / str(run)) + "/")
        run_fcn("train", max_iteration=6, save_every=10, seed=seed, augment=True, keep_prob=0.5, **flags)
        losses.append(train_losses(capsys.readouterr().out))
    assert len(losses[0]) == 6 and losses[0] == losses[1] and losses[0] != losses[2]


def test_visualize_names_the_pictures_it_saved(trained_flags, run_fcn, capsys):
    run_fcn("visualize", **trained_flags)
    saved = [line for line in capsys.readouterr().out.splitlines() if line.startswith("Saved")]
    assert saved == ["Saved images inp_%d.png, gt_%d.png, pred_%d.png and compare_%d.png in %s"
                     % (k, k, k, k, trained_flags["logs_dir"]) for k in (5, 6)]
