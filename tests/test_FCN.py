"""FCN.py: the graph the original users know, train -> checkpoint -> resume -> visualize, and the
evaluate / predict / export modes on tiny data."""
import glob
import json
import os
import queue
import random
import re
import signal
import subprocess
import sys
import threading
import time

import imageio.v2 as imageio
import numpy as np
from PIL import Image
import pytest
import tensorflow as tf
from absl import app
from absl import flags

import BatchDatsetReader
import FCN
import TensorflowUtils as utils
import demo_data
from conftest import NARROW_FC

MODEL_URL = "http://127.0.0.1:9/imagenet-vgg-verydeep-19.mat"  # never fetched: the file is there
DATA_URL = "http://127.0.0.1:9/ADEChallengeData2016.zip"  # never fetched: the mode must not need the data
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
        weights, mean_pixel = FCN.load_vgg(fcn_flags["model_dir"], MODEL_URL)
        FCN.build_model(weights, mean_pixel, fc_width=fcn_flags["fc_width"])
        original_vars = [v for v in tf.compat.v1.global_variables() if v.op.name != "global_step"]
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            sess.run(original_vars[0].assign(tf.fill(original_vars[0].shape, 0.5)))
            tf.compat.v1.train.Saver(original_vars).save(sess, os.path.join(logs_dir, "model.ckpt"), global_step=500)
    assert "global_step" not in dict(tf.train.list_variables(tf.train.latest_checkpoint(logs_dir)))
    run_fcn("train", max_iteration=1, save_every=1, learning_rate=0.0, **fcn_flags)
    out = capsys.readouterr().out
    assert "Model restored..." in out
    assert "Initialised fresh (not in the checkpoint): global_step" in out
    assert "Step: 0, Train_loss:" in out
    reader = tf.train.load_checkpoint(os.path.join(logs_dir, "model.ckpt-0"))
    np.testing.assert_allclose(reader.get_tensor(original_vars[0].op.name), 0.5)

# ---------------------------------------------------------------- evaluate, predict, export

METRICS_KEYS = {"pixel_accuracy", "mean_accuracy", "mean_iou", "frequency_weighted_iou", "challenge_score",
                "num_images", "class_iou", "checkpoint"}


@pytest.fixture
def trained_flags(fcn_flags, run_fcn):
    """fcn_flags whose logs_dir holds a checkpoint after two training steps."""
    run_fcn("train", max_iteration=2, save_every=10, **fcn_flags)
    return fcn_flags


def validation_folder(flags, kind):
    return os.path.join(flags["data_dir"], "ADEChallengeData2016", kind, "validation")


def read_metrics(flags):
    with open(os.path.join(flags["logs_dir"], "metrics.json")) as metrics_file:
        return json.load(metrics_file)


def test_evaluate_scores_the_whole_split_and_saved_predictions_alike(trained_flags, run_fcn, tmp_path, capsys):
    capsys.readouterr()
    run_fcn("evaluate", **trained_flags)
    captured = capsys.readouterr()
    assert "Evaluating 4/4" in captured.err
    assert "Validation pixel accuracy:" in captured.out and "on 4 images" in captured.out
    assert "wall" in captured.out and "challenge_score" in captured.out
    scores = read_metrics(trained_flags)
    assert set(scores) == METRICS_KEYS
    assert scores["num_images"] == 4 and scores["checkpoint"].endswith("model.ckpt-1")
    assert len(scores["class_iou"]) == 151 and scores["class_iou"][0] is None
    assert None in scores["class_iou"]  # classes the tiny data never has
    for name in METRICS_KEYS - {"num_images", "class_iou", "checkpoint"}:
        assert 0.0 <= scores[name] <= 1.0
    assert scores["challenge_score"] == pytest.approx((scores["pixel_accuracy"] + scores["mean_iou"]) / 2)

    # predict mode's label maps have the annotations' sizes, and scoring them needs no network
    predictions = str(tmp_path / "submission")
    run_fcn("predict", input=validation_folder(trained_flags, "images"), output_dir=predictions, **trained_flags)
    no_network = dict(trained_flags, model_dir=str(tmp_path / "no_model"), model_url=MODEL_URL)
    run_fcn("evaluate", predictions_dir=predictions, **no_network)
    assert read_metrics(trained_flags) == dict(scores, checkpoint=None)


def test_evaluate_names_a_missing_or_mis_sized_prediction(fcn_flags, run_fcn, tmp_path):
    predictions = tmp_path / "submission"
    predictions.mkdir()
    annotations = sorted(glob.glob(os.path.join(validation_folder(fcn_flags, "annotations"), "*.png")))
    for path in annotations[1:]:
        imageio.imwrite(str(predictions / os.path.basename(path)), imageio.imread(path))
    missing = str(predictions / os.path.basename(annotations[0]))
    with pytest.raises(SystemExit, match="FCN.py: error: Prediction %s is missing" % missing):
        run_fcn("evaluate", predictions_dir=str(predictions), **fcn_flags)
    imageio.imwrite(missing, np.ones((7, 9), np.uint8))
    with pytest.raises(SystemExit, match=missing + " is 7x9"):
        run_fcn("evaluate", predictions_dir=str(predictions), **fcn_flags)


def write_mixed_images(folder):
    """JPEG RGB, grayscale, RGBA and palette PNGs of odd sizes; returns {stem: (height, width)}."""
    rng = np.random.RandomState(0)
    os.makedirs(folder, exist_ok=True)
    pictures = {"rgb.jpg": Image.fromarray(rng.randint(0, 255, (37, 53, 3)).astype(np.uint8)),
                "gray.png": Image.fromarray(rng.randint(0, 255, (41, 30)).astype(np.uint8), "L"),
                "rgba.png": Image.fromarray(rng.randint(0, 255, (20, 70, 4)).astype(np.uint8), "RGBA"),
                "palette.png": Image.fromarray(rng.randint(0, 255, (64, 33, 3)).astype(np.uint8)).convert("P")}
    for name, picture in pictures.items():
        picture.save(os.path.join(folder, name))
    return {os.path.splitext(name)[0]: picture.size[::-1] for name, picture in pictures.items()}


@pytest.mark.parametrize("infer_size", [None, 0])
def test_predict_writes_label_colour_and_overlay_at_the_input_size(fcn_flags, run_fcn, tmp_path, infer_size):
    sizes = write_mixed_images(str(tmp_path / "photos"))
    no_dataset = dict(fcn_flags, data_dir=str(tmp_path / "no_data"), data_url=DATA_URL)
    if infer_size is not None:
        no_dataset["infer_size"] = infer_size
    run_fcn("predict", input=str(tmp_path / "photos"), **no_dataset)
    output_dir = os.path.join(fcn_flags["logs_dir"], "predictions")
    palette = utils.ade20k_palette()
    for stem, size in sizes.items():
        labels = imageio.imread(os.path.join(output_dir, stem + ".png"))
        assert labels.shape == size and labels.dtype == np.uint8
        color = imageio.imread(os.path.join(output_dir, stem + "_color.png"))
        np.testing.assert_array_equal(color, palette[labels])
        assert imageio.imread(os.path.join(output_dir, stem + "_overlay.png")).shape == size + (3,)
    assert not os.path.exists(no_dataset["data_dir"])

    run_fcn("predict", input=str(tmp_path / "photos" / "gray.png"), output_dir=str(tmp_path / "one"), **no_dataset)
    assert sorted(os.listdir(str(tmp_path / "one"))) == ["gray.png", "gray_color.png", "gray_overlay.png"]


def test_infer_size_sees_what_training_sees_and_resizes_scores_back(trained_flags):
    """Predicting at infer_size = the training size: the training graph's scores on the image the reader
    makes (nearest resize), resized back bilinearly, then the argmax."""
    image = np.random.RandomState(0).randint(0, 255, (37, 53, 3)).astype(np.uint8)
    weights, mean_pixel = FCN.load_vgg(trained_flags["model_dir"], MODEL_URL)

    def restored(build):
        graph = tf.Graph()
        with graph.as_default():
            built = build()
            sess = tf.compat.v1.Session(graph=graph)
            FCN.restore_or_initialize(sess, built.pretrained, tf.compat.v1.train.Saver(), trained_flags["logs_dir"])
        return sess, built

    sess, predictor = restored(lambda: FCN.build_predictor(weights, mean_pixel, 32, fc_width=NARROW_FC))
    labels = FCN.predict_labels(sess, predictor, image)
    sess, model = restored(lambda: FCN.build_model(weights, mean_pixel, fc_width=NARROW_FC))
    seen = BatchDatsetReader.resize_nearest(image, 32)[np.newaxis]
    logits = sess.run(model.logits, {model.image: seen, model.keep_probability: 1.0})
    with tf.Graph().as_default(), tf.compat.v1.Session() as resize:
        expected = resize.run(tf.argmax(tf.image.resize(logits, [37, 53], method="bilinear"), axis=3))[0]
    assert labels.shape == (37, 53)
    np.testing.assert_array_equal(labels, expected)


def test_a_trained_model_predicts_without_the_vgg_file(trained_flags, run_fcn, tmp_path, capsys):
    photos = str(tmp_path / "photos")
    sizes = write_mixed_images(photos)
    run_fcn("predict", input=photos, output_dir=str(tmp_path / "with_file"), **trained_flags)
    without_file = dict(trained_flags, model_dir=str(tmp_path / "no_model"), model_url=MODEL_URL)
    run_fcn("predict", input=photos, output_dir=str(tmp_path / "without_file"), **without_file)
    assert "VGG shapes from" in capsys.readouterr().out
    assert not os.path.exists(without_file["model_dir"])
    for stem in sizes:
        np.testing.assert_array_equal(imageio.imread(str(tmp_path / "with_file" / (stem + ".png"))),
                                      imageio.imread(str(tmp_path / "without_file" / (stem + ".png"))))
    with pytest.raises(SystemExit, match="VGG weights not found"):  # nothing to restore: the file is needed
        run_fcn("predict", input=photos, **dict(without_file, logs_dir=str(tmp_path / "untrained")))


def test_convs_as_matmul_off_predicts_the_same_labels(trained_flags, run_fcn, tmp_path):
    photos = str(tmp_path / "photos")
    sizes = write_mixed_images(photos)
    run_fcn("predict", input=photos, output_dir=str(tmp_path / "matmul"), **trained_flags)
    run_fcn("predict", input=photos, output_dir=str(tmp_path / "original"), convs_as_matmul=False, **trained_flags)
    for stem in sizes:
        np.testing.assert_array_equal(imageio.imread(str(tmp_path / "matmul" / (stem + ".png"))),
                                      imageio.imread(str(tmp_path / "original" / (stem + ".png"))))


LOAD_AND_RUN = """
import sys
import numpy as np
import tensorflow as tf
serve = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
images = np.load(sys.argv[2])
outputs = serve(images=tf.constant(images))
np.save(sys.argv[3], outputs["labels"].numpy())
assert outputs["probabilities"].shape == images.shape[:3] + (151,)
"""


def test_export_serves_the_labels_predict_mode_writes(trained_flags, run_fcn, tmp_path):
    photos = str(tmp_path / "photos")
    sizes = write_mixed_images(photos)
    run_fcn("predict", input=photos, output_dir=str(tmp_path / "predicted"), **trained_flags)
    export_dir = str(tmp_path / "exported")
    run_fcn("export", export_dir=export_dir, **trained_flags)

    image = BatchDatsetReader.read_image(os.path.join(photos, "rgb.jpg"))
    expected = imageio.imread(str(tmp_path / "predicted" / "rgb.png"))
    np.save(str(tmp_path / "images.npy"), np.stack([image, image]))
    subprocess.run([sys.executable, "-c", LOAD_AND_RUN, export_dir, str(tmp_path / "images.npy"),
                    str(tmp_path / "labels.npy")], check=True)
    labels = np.load(str(tmp_path / "labels.npy"))
    assert labels.shape == (2,) + sizes["rgb"]
    np.testing.assert_array_equal(labels[0], expected)
    np.testing.assert_array_equal(labels[1], expected)

    subprocess.run([sys.executable, "-m", "tensorflow.python.tools.saved_model_cli", "run", "--dir", export_dir,
                    "--tag_set", "serve", "--signature_def", "serving_default",
                    "--inputs", "images=" + str(tmp_path / "images.npy"), "--outdir", str(tmp_path / "cli")],
                   check=True, capture_output=True)
    np.testing.assert_array_equal(np.load(str(tmp_path / "cli" / "labels.npy"))[0], expected)


# ---------------------------------------------------------------- faults: bad setup, NaN, failed saves, kills

UNREACHABLE = "http://127.0.0.1:9/"


def spoil_first_training_image(data_dir):
    path = sorted(glob.glob(os.path.join(data_dir, "ADEChallengeData2016", "images", "training", "*.jpg")))[0]
    open(path, "wb").close()
    return path


def empty_validation_split(data_dir):
    for path in glob.glob(os.path.join(data_dir, "ADEChallengeData2016", "*", "validation", "*")):
        os.remove(path)


@pytest.mark.parametrize("fault, words", [
    ("missing weights", "VGG weights not found at .* Download the file by hand"),
    ("missing data", "No data at .* or pass --data_dir"),
    ("empty split", "No image/annotation pairs in the validation split"),
    ("bad images", "1 of 4 image/annotation pairs are bad, more than 1%; the first is .*ADE_train_00000001.jpg"),
])
def test_setup_faults_exit_with_a_message_not_a_traceback(fcn_flags, run_fcn, tmp_path, fault, words):
    flags = dict(fcn_flags, model_url=UNREACHABLE + "imagenet-vgg-verydeep-19.mat",
                 data_url=UNREACHABLE + "ADEChallengeData2016.zip")
    if fault == "missing weights":
        flags["model_dir"] = str(tmp_path / "no_model")
    elif fault == "missing data":
        flags["data_dir"] = str(tmp_path / "no_data")
    else:
        flags["data_dir"] = str(tmp_path / "data")
        demo_data.write_scene_dataset(flags["data_dir"], num_training=4, num_validation=2, min_size=32, max_size=32)
        (empty_validation_split if fault == "empty split" else spoil_first_training_image)(flags["data_dir"])
    with pytest.raises(SystemExit) as exit_info:
        run_fcn("train", max_iteration=3, **flags)
    assert str(exit_info.value.code).startswith("FCN.py: error: ")
    assert re.search(words, exit_info.value.code)


def checkpoint_is_finite(path):
    reader = tf.train.load_checkpoint(path)
    return all(np.all(np.isfinite(reader.get_tensor(name))) for name, dtype in
               reader.get_variable_to_dtype_map().items() if dtype.is_floating)


def test_nan_loss_stops_naming_the_step_and_keeps_the_last_good_checkpoint(fcn_flags, run_fcn):
    with pytest.raises(SystemExit) as exit_info:  # Adam moves every weight by about 1e30 at once
        run_fcn("train", max_iteration=20, save_every=1, learning_rate=1e30, **fcn_flags)
    failed_step = int(re.match(r"FCN.py: error: Step (\d+): the training loss is (nan|inf)", exit_info.value.code)
                      .group(1))
    state = tf.train.get_checkpoint_state(fcn_flags["logs_dir"])
    assert state.model_checkpoint_path.endswith("model.ckpt-%d" % (failed_step - 1))
    assert all(checkpoint_is_finite(path) for path in state.all_model_checkpoint_paths)


def test_non_finite_weights_are_never_saved(vgg_mat, tmp_path):
    with tf.Graph().as_default():
        weights, mean_pixel = FCN.load_vgg(vgg_mat, MODEL_URL)
        model = FCN.build_model(weights, mean_pixel, fc_width=8)
        saver = tf.compat.v1.train.Saver()
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            assert FCN.save_checkpoint(sess, model, saver, str(tmp_path), 1)
            b8 = [var for var in tf.compat.v1.global_variables() if var.op.name == "inference/b8"][0]
            sess.run(b8.assign(tf.fill(b8.shape, np.inf)))
            with pytest.raises(FloatingPointError, match="Step 2: the weights are no longer finite"):
                FCN.save_checkpoint(sess, model, saver, str(tmp_path), 2)
    assert FCN.list_checkpoints(str(tmp_path)) == [os.path.join(str(tmp_path), "model.ckpt-1")]


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
    real_next_batch = FCN.dataset.BatchDatset.next_batch
    calls = []

    def interrupted_next_batch(reader, batch_size):
        calls.append(batch_size)
        if len(calls) == 3:
            os.kill(os.getpid(), signal.SIGINT)
        return real_next_batch(reader, batch_size)
    monkeypatch.setattr(FCN.dataset.BatchDatset, "next_batch", interrupted_next_batch)
    run_fcn("train", max_iteration=100, save_every=1000, **fcn_flags)
    out = capsys.readouterr().out
    stopped_at = int(re.search(r"SIGINT: stopping after step (\d+)", out).group(1))
    assert stopped_at < 5 and "Run the same command again to resume" in out
    assert checkpoint_steps(fcn_flags["logs_dir"]) == [0, stopped_at]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored after training


class Training(object):
    """FCN.py --mode=train in a subprocess whose output lines can be awaited."""

    def __init__(self, flags):
        argv = [sys.executable, "-u", FCN.__file__, "--mode=train"] + ["--%s=%s" % item for item in flags.items()]
        self.process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.process.stdout:
            self.lines.put(line)
        self.lines.put("")

    def wait_for(self, pattern, timeout=180):
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                line = self.lines.get(timeout=1)
            except queue.Empty:
                continue
            match = re.search(pattern, line)
            if match:
                return match
            assert line, "training ended without printing %r" % pattern
        raise AssertionError("no %r within %d s" % (pattern, timeout))


def test_kill_9_at_random_moments_then_sigterm_resumes_and_exits_0(fcn_flags):
    flags = dict(fcn_flags, max_iteration=100000, save_every=1)
    logs_dir = flags["logs_dir"]
    moments = random.Random(9)  # random, but the same moments on every run
    for _ in range(3):
        training = Training(flags)
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
                             for path in FCN.list_checkpoints(logs_dir))

    training = Training(flags)
    assert training.wait_for(r"^Model restored\.\.\. ")
    assert int(training.wait_for(r"^Step: (\d+)").group(1)) == newest_global_step
    training.process.send_signal(signal.SIGTERM)
    stopped_at = int(training.wait_for(r"^SIGTERM: stopping after step (\d+)").group(1))
    assert training.process.wait(timeout=120) == 0
    assert tf.train.latest_checkpoint(logs_dir).endswith("model.ckpt-%d" % stopped_at)


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


def test_batch_larger_than_the_validation_split(fcn_flags, run_fcn, capsys):
    """4 validation pairs, batch 6: training validates on the 4, visualize draws 6 with replacement."""
    big_batch = dict(fcn_flags, batch_size=6)
    run_fcn("train", max_iteration=1, save_every=1, **big_batch)
    run_fcn("visualize", **big_batch)
    out = capsys.readouterr().out
    assert "---> Validation_loss:" in out and "Saved image: 5" in out


def test_export_needs_a_checkpoint_and_a_new_folder(fcn_flags, trained_flags, run_fcn, tmp_path):
    with pytest.raises(app.UsageError, match="No checkpoint in .* to export"):
        run_fcn("export", export_dir=str(tmp_path / "a"), **dict(fcn_flags, logs_dir=str(tmp_path / "empty")))
    (tmp_path / "taken").mkdir()
    with pytest.raises(app.UsageError, match="taken exists"):
        run_fcn("export", export_dir=str(tmp_path / "taken"), **trained_flags)


def test_predict_refuses_to_write_into_its_input_folder(fcn_flags, run_fcn, tmp_path):
    photos = str(tmp_path / "photos")
    write_mixed_images(photos)
    with pytest.raises(app.UsageError, match="would overwrite"):
        run_fcn("predict", input=photos, output_dir=photos, **fcn_flags)


@pytest.mark.parametrize("flag, value", [("log_every", 0), ("save_every", 0), ("batch_size", 0),
                                         ("image_size", 0), ("keep_prob", 0), ("keep_prob", 1.5)])
def test_out_of_range_flags_are_refused(fcn_flags, run_fcn, flag, value):
    with pytest.raises(flags.IllegalFlagValueError):
        run_fcn("train", **dict(fcn_flags, **{flag: value}))


def test_saved_prediction_with_labels_past_150_names_the_file(fcn_flags, run_fcn, tmp_path):
    predictions = tmp_path / "submission"
    predictions.mkdir()
    for path in sorted(glob.glob(os.path.join(validation_folder(fcn_flags, "annotations"), "*.png"))):
        imageio.imwrite(str(predictions / os.path.basename(path)), np.full_like(imageio.imread(path), 255))
    with pytest.raises(SystemExit, match=r"Prediction .*ADE_val_0000000\d\.png holds label 255"):
        run_fcn("evaluate", predictions_dir=str(predictions), **fcn_flags)
