"""network.py, the paper's FCNs: the backbone, fc6/fc7 transferred, zero skips, bilinear
upsampling (fixed or learned), and each head through the command line, staged as the paper trains them."""
import json
import os
import subprocess
import sys

import imageio.v2 as imageio
import numpy as np
import pytest
import scipy.io
import tensorflow as tf

from fcn_tensorflow.data import matconvnet
from fcn_tensorflow.net import graphs
from fcn_tensorflow.net import network
from fcn_tensorflow.net.spec import Net, Training
from fcn_tensorflow.run import checkpoints
from fcn_tensorflow.run import model_record
from fcn_tensorflow.run import session
from tests.helpers import MODEL_URL, NARROW_FC, command_flags, fcn_command

HEADS = ("fcn32s", "fcn16s", "fcn8s")
IMAGE_SHAPE = (2, 64, 96, 3)


def mat_layer(vgg_mat, name):
    """(kernel, bias) of a layer as stored in the .mat, read here without the project's code."""
    layers = scipy.io.loadmat(os.path.join(vgg_mat, "imagenet-vgg-verydeep-19.mat"))["layers"][0]
    for layer in layers:
        if layer[0][0]["name"][0] == name:
            kernel, bias = layer[0][0]["weights"][0]
            return kernel, bias.ravel()
    raise KeyError(name)


def paper_graph(vgg_mat, head, learning_rate=1e-4, **options):
    """(model, session) of a paper head built from the narrow .mat, variables initialised and the .mat loaded."""
    weights, mean_pixel = matconvnet.load_vgg(vgg_mat, MODEL_URL, transpose_kernels=False, fc_width=NARROW_FC)
    model = graphs.build_model(weights, mean_pixel, Net(fc_width=NARROW_FC, head=head, **options),
                               Training(learning_rate=learning_rate))
    sess = tf.compat.v1.Session()
    sess.run(tf.compat.v1.global_variables_initializer())
    model.pretrained.load(sess)
    return model, sess


def value(sess, name):
    """The value of the variable called `name` in the default graph."""
    return sess.run([var for var in tf.compat.v1.global_variables() if var.op.name == name][0])


def random_feed(model, seed=0, keep_prob=1.0):
    rng = np.random.RandomState(seed)
    return {model.image: rng.randint(0, 256, IMAGE_SHAPE), model.keep_probability: keep_prob,
            model.annotation: rng.randint(0, 151, IMAGE_SHAPE[:3] + (1,))}


def test_bilinear_filters_are_the_reference_code_s():
    np.testing.assert_allclose(network.bilinear_filter(4), np.outer(*[[0.25, 0.75, 0.75, 0.25]] * 2))
    np.testing.assert_allclose(network.bilinear_filter(3), np.outer(*[[0.5, 1, 0.5]] * 2))
    taps = np.array([1, 3, 5, 7, 9, 11, 13, 15, 15, 13, 11, 9, 7, 5, 3, 1]) / 16.0
    np.testing.assert_allclose(network.bilinear_filter(16), np.outer(taps, taps))


@pytest.mark.parametrize("as_matmul", [True, False])
def test_fixed_upsampling_interpolates_each_class_linearly(as_matmul):
    """A ramp along the width stays a ramp (away from the borders), a constant stays constant; classes apart."""
    ramp = np.arange(6, dtype=np.float32)
    scores = np.stack([np.tile(ramp, (4, 1)), np.full((4, 6), 3.0, np.float32)], axis=-1)[np.newaxis]
    with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
        upsampled = network.fixed_upsampling(tf.constant(scores), tf.constant([1, 32, 48, 3]), 8, "upscore8",
                                                 as_matmul)
        sess.run(tf.compat.v1.global_variables_initializer())
        result = sess.run(upsampled)
    assert result.shape == (1, 32, 48, 2)
    inside = result[0, 8:-8, 8:-8]
    np.testing.assert_allclose(inside[..., 1], 3.0, rtol=1e-6)
    columns = np.arange(8, 40)
    np.testing.assert_allclose(inside[..., 0], np.tile((columns - 3.5) / 8, (16, 1)), atol=1e-5)  # centres at 8q+3.5


def layer_name(op):
    """The name of a relu op, or for a BiasAdd the name of its bias variable."""
    if op.type == "BiasAdd":
        return op.inputs[1].op.inputs[0].op.name.rsplit("/", 1)[-1]
    return op.name


def test_paper_backbone_max_pools_and_takes_pool5_after_relu5_4(vgg_mat):
    def pools(head):
        with tf.Graph().as_default() as graph:
            weights, mean_pixel = matconvnet.load_vgg(vgg_mat, MODEL_URL, fc_width=NARROW_FC)
            graphs.build_model(weights, mean_pixel, Net(fc_width=NARROW_FC, head=head))
            ops = [op for op in graph.get_operations() if op.type in ("MaxPool", "AvgPool")
                   and not op.name.startswith("gradients")]
            return [(op.type, layer_name(op.inputs[0].op)) for op in ops]

    assert pools("fcn8s") == [("MaxPool", "inference/relu%d_%d" % (block, convs)) for block, convs in
                              ((1, 2), (2, 2), (3, 4), (4, 4), (5, 4))]
    original = pools("original")
    assert [kind for kind, _ in original] == ["AvgPool"] * 4 + ["MaxPool"]
    assert original[-1][1] == "conv5_3_b"  # the original's pool5 is taken before relu5_3


def test_conv6_and_conv7_start_as_the_mat_s_fc6_and_fc7(vgg_mat):
    with tf.Graph().as_default():
        _, sess = paper_graph(vgg_mat, "fcn32s")
        for layer, names in (("fc6", ("W6", "b6")), ("fc7", ("W7", "b7"))):
            for stored, name in zip(mat_layer(vgg_mat, layer), names):
                np.testing.assert_array_equal(value(sess, "inference/" + name), stored)


def test_another_fc_width_starts_conv6_and_conv7_at_random_and_says_so(vgg_mat, capsys):
    weights, _ = matconvnet.load_vgg(vgg_mat, MODEL_URL, fc_width=2 * NARROW_FC)
    assert "conv6 and conv7 start at random: --fc_width=32 is not the width 16 of fc6 and fc7" in capsys.readouterr().out
    assert "fc6" not in weights and "fc7" not in weights and "conv5_4" in weights


def test_upsampling_is_bilinear_and_skip_scores_zero_at_step_0(vgg_mat):
    with tf.Graph().as_default():
        model, sess = paper_graph(vgg_mat, "fcn8s")
        for name in ("upscore2", "upscore_pool4"):
            kernel = value(sess, "inference/%s/kernel" % name)
            assert kernel.shape == (4, 4, 151, 151)
            np.testing.assert_array_equal(kernel, network.bilinear_filter(4)[:, :, None, None] * np.eye(151))
        np.testing.assert_array_equal(value(sess, "inference/upscore8/kernel")[:, :, 0, 0],
                                      network.bilinear_filter(16))
        feed = random_feed(model)
        graph = tf.compat.v1.get_default_graph()
        skips = sess.run({name: graph.get_tensor_by_name("inference/%s:0" % name)
                          for name in ("score_pool4", "score_pool3", "upscore2", "fuse_pool4", "score_fr")}, feed)
    assert skips["score_pool4"].shape == (2, 4, 6, 151) and skips["score_pool3"].shape == (2, 8, 12, 151)
    assert not skips["score_pool4"].any() and not skips["score_pool3"].any()
    np.testing.assert_array_equal(skips["fuse_pool4"], skips["upscore2"])


@pytest.mark.parametrize("learn_upsampling", [True, False])
def test_fixed_layers_stay_bilinear_while_training(vgg_mat, learn_upsampling):
    kernels = ["inference/%s/kernel" % name for name in ("upscore2", "upscore_pool4", "upscore8", "score_pool3")]
    with tf.Graph().as_default():
        model, sess = paper_graph(vgg_mat, "fcn8s", learning_rate=1e-2, learn_upsampling=learn_upsampling)
        before = [value(sess, name) for name in kernels]
        for step in range(3):
            sess.run(model.train_op, random_feed(model, step))
        after = [value(sess, name) for name in kernels]
    changed = [not np.array_equal(old, new) for old, new in zip(before, after)]
    assert changed == [learn_upsampling, learn_upsampling, False, True]


def test_each_head_s_logits_are_the_same_with_and_without_matmuls(vgg_mat):
    for head in HEADS:
        logits = []
        for as_matmul in (True, False):
            with tf.Graph().as_default():
                tf.compat.v1.set_random_seed(0)
                model, sess = paper_graph(vgg_mat, head, convs_as_matmul=as_matmul)
                for name in ("score_fr", "score_pool4", "score_pool3"):  # non-zero scores, so the upsampling shows
                    for variable in tf.compat.v1.global_variables("inference/" + name + "/"):
                        variable.load(np.random.RandomState(1).normal(size=variable.shape.as_list()), sess)
                logits.append(sess.run(model.logits, random_feed(model)))
        assert logits[0].shape == IMAGE_SHAPE[:3] + (151,) and np.abs(logits[0]).max() > 0.1
        np.testing.assert_allclose(logits[0], logits[1], rtol=1e-4, atol=1e-4)


# ---------------------------------------------------------------- through the command line

LOAD_EXPORTED = """
import sys
import numpy as np
import tensorflow as tf
serve = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
outputs = serve(images=tf.constant(np.zeros((1, 40, 50, 3), np.uint8)))
print(outputs["labels"].shape, outputs["probabilities"].shape)
"""


@pytest.mark.slow
@pytest.mark.parametrize("head", HEADS)
def test_each_head_trains_evaluates_predicts_and_exports(head, fcn_flags, run_fcn, tmp_path, capsys):
    logs_dir = fcn_flags["logs_dir"]
    trained = fcn_command("--mode=train", "--max_iteration=2", "--save_every=10", "--head=" + head,
                          *command_flags(fcn_flags))  # a process of its own: the real command line
    assert trained.returncode == 0 and trained.stderr == "", trained.stderr[-2000:]
    assert "Step: 1, Train_loss:" in trained.stdout and "fresh" not in trained.stdout
    record = model_record.read(logs_dir)
    assert (record["head"], record["transpose_vgg_kernels"], record["learn_upsampling"]) == (head, False, True)
    saved = dict(tf.train.list_variables(tf.train.latest_checkpoint(logs_dir)))
    assert "inference/score_fr/kernel" in saved and "inference/W8" not in saved

    run_fcn("evaluate", **fcn_flags)  # the head comes from model.json
    out = capsys.readouterr().out
    assert "Model restored..." in out and "Initialised fresh" not in out
    assert json.load(open(os.path.join(logs_dir, "metrics.json")))["num_images"] == 4
    photo = os.path.join(fcn_flags["data_dir"], "ADEChallengeData2016", "images", "validation", "ADE_val_00000001.jpg")
    assert run_fcn("predict", input=photo, output_dir=str(tmp_path / "out"), **fcn_flags) == 0
    without_file = dict(fcn_flags, model_dir=str(tmp_path / "no_model"))
    assert run_fcn("predict", input=photo, output_dir=str(tmp_path / "bare"), **without_file) == 0
    np.testing.assert_array_equal(imageio.imread(str(tmp_path / "out" / "ADE_val_00000001.png")),
                                  imageio.imread(str(tmp_path / "bare" / "ADE_val_00000001.png")))
    capsys.readouterr()
    run_fcn("visualize", **without_file)  # the checkpoint brings every weight: no VGG file is read
    out = capsys.readouterr().out
    assert "VGG shapes from" in out and "Initialised fresh" not in out
    assert os.path.exists(os.path.join(logs_dir, "compare_5.png")) and not os.path.exists(without_file["model_dir"])
    run_fcn("export", export_dir=str(tmp_path / "exported"), **fcn_flags)
    loaded = subprocess.run([sys.executable, "-c", LOAD_EXPORTED, str(tmp_path / "exported")], capture_output=True,
                            text=True, timeout=300)
    assert loaded.stdout.split("\n")[0] == "(1, 40, 50) (1, 40, 50, 151)", loaded.stderr[-2000:]
    with pytest.raises(SystemExit, match="records --head=%s but the command line says original" % head):
        run_fcn("evaluate", head="original", **fcn_flags)
    os.remove(os.path.join(logs_dir, model_record.MODEL_RECORD))  # then the class count comes from score_fr
    with pytest.raises(SystemExit, match="model.ckpt-1 is a model of 151 classes, but this run builds 21"):
        run_fcn("evaluate", head=head, num_classes=21, **fcn_flags)


def initialised_from(vgg_mat, head, checkpoint):
    """{variable name: value} of a `head` graph started as training starts with --init_checkpoint=checkpoint."""
    with tf.Graph().as_default():
        model, sess = paper_graph(vgg_mat, head)
        session.restore_or_initialize(sess, model.pretrained, tf.compat.v1.train.Saver(), [], checkpoint)
        return {var.op.name: value for var, value in zip(tf.compat.v1.global_variables(),
                                                         sess.run(tf.compat.v1.global_variables()))}


@pytest.mark.slow
def test_staged_training_starts_each_finer_net_from_the_coarser_one(fcn_flags, run_fcn, tmp_path, capsys):
    """32s -> 16s -> 8s through --init_checkpoint: the new skips start at zero, the rest is carried over."""
    stages = {head: dict(fcn_flags, logs_dir=str(tmp_path / head) + "/", head=head, learning_rate=1e-2)
              for head in HEADS}
    run_fcn("train", max_iteration=2, save_every=10, **stages["fcn32s"])
    for coarse, fine, fresh, skip in (
            ("fcn32s", "fcn16s", "upscore2/kernel, score_pool4/kernel, score_pool4/bias, upscore16/kernel",
             "score_pool4"),
            ("fcn16s", "fcn8s", "upscore_pool4/kernel, score_pool3/kernel, score_pool3/bias, upscore8/kernel",
             "score_pool3")):
        source = checkpoints.list_checkpoints(stages[coarse]["logs_dir"])[-1]
        capsys.readouterr()
        run_fcn("train", max_iteration=2, save_every=10, init_checkpoint=stages[coarse]["logs_dir"], **stages[fine])
        out = capsys.readouterr().out
        assert "; fresh (absent there, or of another shape): inference/%s\n" % fresh.replace(", ", ", inference/") in out
        assert "Step: 1, Train_loss:" in out

        start, saved = initialised_from(fcn_flags["model_dir"], fine, source), tf.train.load_checkpoint(source)
        assert not start["inference/%s/kernel" % skip].any() and not start["inference/%s/bias" % skip].any()
        carried = ["inference/score_fr/kernel", "inference/W6", "inference/conv1_1_w"] + (
            ["inference/upscore2/kernel", "inference/score_pool4/kernel"] if fine == "fcn8s" else [])
        for name in carried:
            np.testing.assert_array_equal(start[name], saved.get_tensor(name))
        assert start["inference/score_fr/kernel"].any()
