"""FCN.py: the graph the original users know, and train -> checkpoint -> resume -> visualize on tiny data."""
import glob
import os

import numpy as np
import pytest
import tensorflow as tf

import FCN
import demo_data

MODEL_URL = "http://127.0.0.1:9/imagenet-vgg-verydeep-19.mat"  # never fetched: the file is there
FULL_VGG_SHAPES = {}
_in = 3
for _block, (_convs, _width) in enumerate(zip(demo_data.VGG19_BLOCKS, demo_data.FULL_WIDTHS), start=1):
    for _conv in range(1, _convs + 1):
        FULL_VGG_SHAPES["conv%d_%d" % (_block, _conv)] = (3, 3, _in, _width)
        _in = _width


def full_width_weights():
    """Weights with the real VGG19 shapes (zeros are enough to build the graph)."""
    return {name: (np.zeros(shape, np.float32), np.zeros(shape[3], np.float32))
            for name, shape in FULL_VGG_SHAPES.items()}


def test_variables_match_the_original_at_full_width():
    with tf.Graph().as_default():
        FCN.build_model(full_width_weights(), np.array(demo_data.MEAN_PIXEL))
        trainable = {var.op.name: var.shape.as_list() for var in tf.compat.v1.trainable_variables()}
        graph = tf.compat.v1.get_default_graph()
        for name in ("input_image", "annotation", "keep_probabilty", "inference/prediction"):
            graph.get_operation_by_name(name)
        graph_bytes = graph.as_graph_def().ByteSize()
    expected = {"inference/%s_%s" % (name, kind): list(shape if kind == "w" else shape[3:])
                for name, shape in FULL_VGG_SHAPES.items() for kind in ("w", "b")}
    expected.update({
        "inference/W6": [7, 7, 512, 4096], "inference/b6": [4096],
        "inference/W7": [1, 1, 4096, 4096], "inference/b7": [4096],
        "inference/W8": [1, 1, 4096, 151], "inference/b8": [151],
        "inference/W_t1": [4, 4, 512, 151], "inference/b_t1": [512],
        "inference/W_t2": [4, 4, 256, 512], "inference/b_t2": [256],
        "inference/W_t3": [16, 16, 151, 256], "inference/b_t3": [151],
    })
    assert trainable == expected
    assert len([name for name in trainable if name.endswith("_w")]) == 16
    assert graph_bytes < 10 * 2 ** 20  # weights are fed, never baked into the GraphDef


def test_any_batch_and_size_divisible_by_32(vgg_mat):
    with tf.Graph().as_default():
        weights, mean_pixel = FCN.load_vgg(vgg_mat, MODEL_URL)
        model = FCN.build_model(weights, mean_pixel, fc_width=8)
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            for shape in ((1, 32, 64, 3), (3, 96, 32, 3)):
                pred, logits = sess.run([model.pred_annotation, model.logits],
                                        {model.image: np.zeros(shape), model.keep_probability: 1.0})
                assert pred.shape == shape[:3] + (1,)
                assert logits.shape == shape[:3] + (151,)


def test_pretrained_weights_are_loaded_from_the_file(vgg_mat):
    with tf.Graph().as_default():
        weights, mean_pixel = FCN.load_vgg(vgg_mat, MODEL_URL, transpose_kernels=False)
        model = FCN.build_model(weights, mean_pixel, fc_width=8)
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            model.pretrained.load(sess)
            conv = [v for v in tf.compat.v1.global_variables() if v.op.name == "inference/conv2_1_w"][0]
            np.testing.assert_array_equal(sess.run(conv), weights["conv2_1"][0])
    np.testing.assert_allclose(mean_pixel, demo_data.MEAN_PIXEL, rtol=1e-5)


def test_original_transposes_kernels(vgg_mat):
    plain, _ = FCN.load_vgg(vgg_mat, MODEL_URL, transpose_kernels=False)
    swapped, _ = FCN.load_vgg(vgg_mat, MODEL_URL)
    np.testing.assert_array_equal(swapped["conv1_1"][0], np.transpose(plain["conv1_1"][0], (1, 0, 2, 3)))


def checkpoint_steps(logs_dir):
    state = tf.train.get_checkpoint_state(logs_dir)
    return sorted(int(path.rsplit("-", 1)[1]) for path in state.all_model_checkpoint_paths)


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
    assert "Saved image: 1" in out
    for k in (5, 6):
        for prefix in ("inp", "gt", "pred", "compare"):
            assert os.path.exists(os.path.join(logs_dir, "%s_%d.png" % (prefix, k)))
    assert len(glob.glob(os.path.join(logs_dir, "train", "events.out.tfevents.*"))) == 2


def train_then_loss(vgg_mat, steps, convs_as_matmul, optimised, initial=None):
    """Loss on a fixed batch after `steps` Adam steps from the same start (dropout off so runs compare).

    optimised: make_session and train_step (loss fetched with the update) as --mode=train does now;
    otherwise a default session and the original loop (the loss run a second time every step)."""
    rng = np.random.RandomState(0)
    images = rng.randint(0, 256, (2, 32, 32, 3)).astype(np.uint8)
    annotations = rng.randint(0, 151, (2, 32, 32, 1)).astype(np.uint8)
    with tf.Graph().as_default():
        tf.compat.v1.set_random_seed(0)
        weights, mean_pixel = FCN.load_vgg(vgg_mat, MODEL_URL)
        model = FCN.build_model(weights, mean_pixel, fc_width=16, convs_as_matmul=convs_as_matmul)
        with (FCN.make_session() if optimised else tf.compat.v1.Session()) as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            model.pretrained.load(sess)
            variables = tf.compat.v1.trainable_variables()
            if initial is None:
                initial = sess.run(variables)
            for variable, value in zip(variables, initial):
                variable.load(value, sess)
            feed = FCN._feed(model, images, annotations, keep_prob=1.0)
            for _ in range(steps):
                if optimised:
                    FCN.train_step(sess, model, feed, with_summary=True)
                else:
                    sess.run(model.train_op, feed_dict=feed)
                    sess.run([model.loss, model.train_summary], feed_dict=feed)
            return sess.run(model.loss, feed_dict=feed), initial


def test_default_training_matches_the_original_graph_and_loop(vgg_mat):
    original, initial = train_then_loss(vgg_mat, 5, convs_as_matmul=False, optimised=False)
    default, _ = train_then_loss(vgg_mat, 5, convs_as_matmul=True, optimised=True, initial=initial)
    first, _ = train_then_loss(vgg_mat, 0, convs_as_matmul=False, optimised=False, initial=initial)
    assert abs(first - original) > 1e-3  # the steps do change the loss
    np.testing.assert_allclose(default, original, rtol=1e-4)


def test_xla_compiles_the_training_step(vgg_mat):
    with tf.Graph().as_default():
        weights, mean_pixel = FCN.load_vgg(vgg_mat, MODEL_URL)
        model = FCN.build_model(weights, mean_pixel, fc_width=8)
        with FCN.make_session(xla=True) as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            feed = FCN._feed(model, np.zeros((2, 32, 32, 3)), np.zeros((2, 32, 32, 1)), 0.85)
            metadata = tf.compat.v1.RunMetadata()
            loss, _ = FCN.train_step(sess, model, feed, with_summary=True)
            sess.run(model.train_op, feed, run_metadata=metadata,
                     options=tf.compat.v1.RunOptions(trace_level=tf.compat.v1.RunOptions.FULL_TRACE))
    kernels = set(node.timeline_label.split(" = ")[-1].split("(")[0]
                  for device in metadata.step_stats.dev_stats for node in device.node_stats)
    assert "_XlaRun" in kernels
    assert np.isfinite(loss)


@pytest.mark.parametrize("flag", ["xla", "mixed_precision"])
def test_gpu_options_train_with_finite_loss(flag, fcn_flags, run_fcn, capsys):
    run_fcn("train", max_iteration=3, save_every=10, **{flag: True}, **fcn_flags)
    out = capsys.readouterr().out
    losses = [float(line.split("Train_loss:")[1].split()[0]) for line in out.splitlines() if "Train_loss:" in line]
    assert len(losses) == 3 and np.all(np.isfinite(losses))
    if flag == "mixed_precision":
        saved = dict(tf.train.list_variables(tf.train.latest_checkpoint(fcn_flags["logs_dir"])))
        assert "current_loss_scale" in saved and saved["inference/W6"] == [7, 7, 16, 16]
