"""FCN.py: the graph the original's users know, the same training as the original's loop, and the command line
(one-line errors, flags checked before TensorFlow loads, TensorFlow's start-up noise hidden)."""
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

import FCN
import graphs
import matconvnet
import modes
import session
import training
from conftest import MODEL_URL, PROJECT_DIR, command_flags, fcn_command


def full_width_weights():
    """Weights with the real VGG19 shapes (zeros are enough to build the graph)."""
    return {name: (np.zeros(shape, np.float32), np.zeros(shape[3], np.float32))
            for name, shape in matconvnet.conv_shapes().items() if name.startswith("conv")}


def test_variables_match_the_original_at_full_width():
    with tf.Graph().as_default():
        graphs.build_model(full_width_weights(), np.array(matconvnet.IMAGENET_MEAN_PIXEL))
        trainable = {var.op.name: var.shape.as_list() for var in tf.compat.v1.trainable_variables()}
        graph = tf.compat.v1.get_default_graph()
        for name in ("input_image", "annotation", "keep_probabilty", "inference/prediction"):
            graph.get_operation_by_name(name)
        graph_bytes = graph.as_graph_def().ByteSize()
    expected = {"inference/%s_%s" % (name, kind): list(shape if kind == "w" else shape[3:])
                for name, shape in matconvnet.conv_shapes().items() if name.startswith("conv") for kind in ("w", "b")}
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
        weights, mean_pixel = matconvnet.load_vgg(vgg_mat, MODEL_URL)
        model = graphs.build_model(weights, mean_pixel, fc_width=8)
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            for shape in ((1, 32, 64, 3), (3, 96, 32, 3)):
                pred, logits = sess.run([model.pred_annotation, model.logits],
                                        {model.image: np.zeros(shape), model.keep_probability: 1.0})
                assert pred.shape == shape[:3] + (1,)
                assert logits.shape == shape[:3] + (151,)


def test_pretrained_weights_are_loaded_from_the_file(vgg_mat):
    with tf.Graph().as_default():
        weights, mean_pixel = matconvnet.load_vgg(vgg_mat, MODEL_URL, transpose_kernels=False)
        model = graphs.build_model(weights, mean_pixel, fc_width=8)
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            model.pretrained.load(sess)
            conv = [v for v in tf.compat.v1.global_variables() if v.op.name == "inference/conv2_1_w"][0]
            np.testing.assert_array_equal(sess.run(conv), weights["conv2_1"][0])
    np.testing.assert_allclose(mean_pixel, matconvnet.IMAGENET_MEAN_PIXEL, rtol=1e-5)


def test_original_transposes_kernels(vgg_mat):
    plain, _ = matconvnet.load_vgg(vgg_mat, MODEL_URL, transpose_kernels=False)
    swapped, _ = matconvnet.load_vgg(vgg_mat, MODEL_URL)
    np.testing.assert_array_equal(swapped["conv1_1"][0], np.transpose(plain["conv1_1"][0], (1, 0, 2, 3)))


def train_then_loss(vgg_mat, steps, convs_as_matmul, optimised, initial=None):
    """Loss on a fixed batch after `steps` Adam steps from the same start (dropout off so runs compare).

    optimised: session.make_session and training.train_step (loss fetched with the update) as --mode=train does;
    otherwise a default session and the original loop (the loss run a second time every step)."""
    rng = np.random.RandomState(0)
    images = rng.randint(0, 256, (2, 32, 32, 3)).astype(np.uint8)
    annotations = rng.randint(0, 151, (2, 32, 32, 1)).astype(np.uint8)
    with tf.Graph().as_default():
        tf.compat.v1.set_random_seed(0)
        weights, mean_pixel = matconvnet.load_vgg(vgg_mat, MODEL_URL)
        model = graphs.build_model(weights, mean_pixel, fc_width=16, convs_as_matmul=convs_as_matmul)
        with (session.make_session() if optimised else tf.compat.v1.Session()) as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            model.pretrained.load(sess)
            variables = tf.compat.v1.trainable_variables()
            if initial is None:
                initial = sess.run(variables)
            for variable, value in zip(variables, initial):
                variable.load(value, sess)
            feed = training.feed(model, images, annotations, keep_prob=1.0)
            for _ in range(steps):
                if optimised:
                    training.train_step(sess, model, feed, with_summary=True)
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


def test_the_loss_leaves_the_ignore_label_out_and_never_sees_it_as_a_class():
    rng = np.random.RandomState(0)
    logits = rng.normal(size=(2, 4, 4, 3)).astype(np.float32)
    labels = rng.randint(0, 3, (2, 4, 4, 1))
    labels[0, :2] = 255
    with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
        annotation = tf.compat.v1.placeholder(tf.int32, [None, None, None, 1])
        losses = {ignore: FCN.segmentation_loss(tf.constant(logits), annotation, ignore) for ignore in (None, 255, 0)}
        with_255 = sess.run(losses[255], {annotation: labels})
        all_ignored = sess.run(losses[255], {annotation: np.full_like(labels, 255)})
        without_0 = sess.run(losses[0], {annotation: np.where(labels == 255, 1, labels)})
        everything = sess.run(losses[None], {annotation: np.where(labels == 255, 1, labels)})
    log_softmax = logits - np.log(np.exp(logits).sum(axis=3, keepdims=True))

    def mean_cross_entropy(labels, counted):
        picked = np.take_along_axis(log_softmax, np.minimum(labels, 2), axis=3)
        return -picked[counted].mean()
    np.testing.assert_allclose(with_255, mean_cross_entropy(labels, labels != 255), rtol=1e-5)
    assert all_ignored == 0.0
    relabelled = np.where(labels == 255, 1, labels)
    np.testing.assert_allclose(without_0, mean_cross_entropy(relabelled, relabelled != 0), rtol=1e-5)
    np.testing.assert_allclose(everything, mean_cross_entropy(relabelled, relabelled >= 0), rtol=1e-5)


def one_sgd_step(vgg_mat, weight_decay, initial=None, head="original"):
    """Trainable values after one step of SGD (momentum 0, rate 0.1) from `initial` (or a fresh start)."""
    rng = np.random.RandomState(0)
    with tf.Graph().as_default():
        weights, mean_pixel = matconvnet.load_vgg(vgg_mat, MODEL_URL)
        model = graphs.build_model(weights, mean_pixel, learning_rate=0.1, fc_width=16, head=head, optimizer="momentum",
                                momentum=0.0, weight_decay=weight_decay)
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            variables = tf.compat.v1.trainable_variables()
            for variable, value in zip(variables, initial or sess.run(variables)):
                variable.load(value, sess)
            before = sess.run(variables)
            sess.run(model.train_op, training.feed(model, rng.randint(0, 256, (2, 32, 32, 3)),
                                                rng.randint(0, 151, (2, 32, 32, 1)), keep_prob=1.0))
            slots = [var.op.name for var in tf.compat.v1.global_variables() if var.op.name.endswith("/Momentum")]
            return {var.op.name: (old, new) for var, old, new in zip(variables, before, sess.run(variables))}, slots


@pytest.mark.parametrize("head", ["original", "fcn8s"])
def test_weight_decay_pulls_every_trainable_kernel_and_no_bias(vgg_mat, head):
    plain, slots = one_sgd_step(vgg_mat, 0.0, head=head)
    decayed, _ = one_sgd_step(vgg_mat, 0.01, [old for old, _ in plain.values()], head)
    assert "inference/W6/Momentum" in slots
    kernels = [name for name, (old, _) in plain.items() if old.ndim == 4]
    assert "inference/conv1_1_w" in kernels and ("inference/score_fr/kernel" in kernels) == (head == "fcn8s")
    for name, (old, new) in plain.items():
        expected = new - 0.1 * 0.01 * old if name in kernels else new
        np.testing.assert_allclose(decayed[name][1], expected, rtol=1e-5, atol=1e-7, err_msg=name)


XLA_STEP = """
import sys
import numpy as np
import tensorflow as tf
sys.path.insert(0, sys.argv[1])
import graphs, matconvnet, session, training
tf.compat.v1.disable_eager_execution()
weights, mean_pixel = matconvnet.load_vgg(sys.argv[2], sys.argv[3])
model = graphs.build_model(weights, mean_pixel, fc_width=8)
with session.make_session(xla=True) as sess:
    sess.run(tf.compat.v1.global_variables_initializer())
    feed = training.feed(model, np.zeros((2, 32, 32, 3)), np.zeros((2, 32, 32, 1)), 0.85)
    metadata = tf.compat.v1.RunMetadata()
    loss, _ = training.train_step(sess, model, feed, with_summary=True)
    sess.run(model.train_op, feed, run_metadata=metadata,
             options=tf.compat.v1.RunOptions(trace_level=tf.compat.v1.RunOptions.FULL_TRACE))
kernels = set(node.timeline_label.split(" = ")[-1].split("(")[0]
              for device in metadata.step_stats.dev_stats for node in device.node_stats)
print("_XlaRun" in kernels, np.isfinite(loss))
"""


@pytest.mark.slow
def test_xla_compiles_the_training_step(vgg_mat):
    """In a new process: the XLA flags make_session sets are read once, by the first session of a process."""
    result = subprocess.run([sys.executable, "-c", XLA_STEP, PROJECT_DIR, vgg_mat, MODEL_URL], capture_output=True, text=True,
                            timeout=300)
    assert result.stdout.split() == ["True", "True"], result.stderr[-2000:]


@pytest.mark.slow
def test_xla_trains_with_finite_loss(fcn_flags, run_fcn, capsys):
    """--mixed_precision: see tests/test_precision.py."""
    run_fcn("train", max_iteration=3, save_every=10, xla=True, **fcn_flags)
    out = capsys.readouterr().out
    losses = [float(line.split("Train_loss:")[1].split()[0]) for line in out.splitlines() if "Train_loss:" in line]
    assert len(losses) == 3 and np.all(np.isfinite(losses))


# ---------------------------------------------------------------- the command line

def test_the_mode_table_is_the_flag_s_choices():
    assert list(modes.MODES) == list(FCN.MODE_HELP) == FCN.FLAGS["mode"].parser.enum_values


USAGE_ERRORS = [  # flags -> words of the one line
    (["--image_size=100"], "--image_size must be a multiple of 32"),
    (["--infer_size=50"], "--infer_size must be 0 or a positive multiple of 32"),
    (["--learning_rate=0"], "--learning_rate must be > 0"),
    (["--keep_prob=0"], "--keep_prob must be in (0, 1]"),
    (["--keep_prob=1.5"], "--keep_prob must be in (0, 1]"),
    (["--batch_size=0"], "--batch_size=0"),
    (["--no_such_flag=1"], "no_such_flag"),
    (["--mode=predict"], "--mode=predict needs --input"),
    (["--mode=predict", "--input=/no/such/photos"], "--input=/no/such/photos does not exist"),
    (["--num_classes=1"], "--num_classes=1"),
    (["--ignore_label=256"], "--ignore_label=256"),
    (["--dataset=folder", "--sbd_dir=/tmp"], "--sbd_dir is for --dataset=voc, not folder"),
    (["--dataset=folder", "--train_list=/no/such/list.txt"], "--train_list=/no/such/list.txt does not exist"),
    (["--head=fcn4s"], "--head"),
    (["--momentum=1"], "--momentum must be in [0, 1)"),
    (["--scale_range=2,0.5"], "--scale_range must be two numbers 0 < smallest <= largest"),
    (["--scale_range=0.5"], "--scale_range must be two numbers"),
]


@pytest.mark.parametrize("argv, words", USAGE_ERRORS, ids=[" ".join(argv) for argv, _ in USAGE_ERRORS])
def test_a_usage_error_is_one_line_before_tensorflow_loads(argv, words, tmp_path):
    """`-X importtime` lists every module the process imported: TensorFlow must not be among them."""
    result = subprocess.run([sys.executable, "-X", "importtime", os.path.join(PROJECT_DIR, "FCN.py"),
                             "--logs_dir=%s" % (tmp_path / "logs")] + argv, capture_output=True, text=True, timeout=120)
    lines = [line for line in result.stderr.splitlines() if not line.startswith("import time:")]
    assert result.returncode == 1
    assert len(lines) == 1 and lines[0].startswith("FCN.py: error: ") and words in lines[0], result.stderr[-3000:]
    assert result.stdout == ""
    imported = [line.split("|")[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")]
    assert not [name for name in imported if name == "tensorflow" or name.startswith("tensorflow.")]


def test_export_and_predict_usage_errors_are_one_line(trained_flags, tmp_path):
    empty = dict(trained_flags, logs_dir=str(tmp_path / "empty"))
    (tmp_path / "taken").mkdir()
    (tmp_path / "photo.jpg").write_bytes(b"")
    cases = [(["--mode=export", "--export_dir=%s" % (tmp_path / "a")] + command_flags(empty),
              "no checkpoint in %s to export: train first, or pass --logs_dir" % empty["logs_dir"]),
             (["--mode=predict", "--input=%s" % (tmp_path / "photo.jpg")] + command_flags(empty),
              "no checkpoint in %s to predict" % empty["logs_dir"]),
             (["--mode=export", "--export_dir=%s" % (tmp_path / "taken")] + command_flags(trained_flags),
              "%s exists: --mode=export writes a new folder" % (tmp_path / "taken"))]
    for argv, words in cases:
        result = fcn_command(*argv)
        lines = result.stderr.splitlines()
        assert result.returncode == 1 and len(lines) == 1 and lines[0].startswith("FCN.py: error: " + words), lines
    assert not os.path.exists(tmp_path / "a")


def test_tensorflow_start_up_noise_is_hidden_unless_asked_for(trained_flags, tmp_path):
    photo = str(tmp_path / "photo.png")
    from PIL import Image
    Image.new("RGB", (40, 30), (90, 120, 200)).save(photo)
    argv = ["--mode=predict", "--input=" + photo] + command_flags(trained_flags)
    quiet = fcn_command(*argv)
    assert quiet.returncode == 0 and quiet.stderr == "", quiet.stderr
    verbose = fcn_command(*argv, env={"TF_CPP_MIN_LOG_LEVEL": "0"})
    assert verbose.returncode == 0 and "oneDNN custom operations" in verbose.stderr
