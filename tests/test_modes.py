"""modes.py: train -> checkpoint -> resume -> visualize, evaluate / predict / export on tiny data, and how each
mode ends when something goes wrong (bad checkpoints, bad inputs, a second training, interruptions)."""
import glob
import json
import os
import random
import re
import signal
import subprocess
import sys
import time

import imageio.v2 as imageio
import numpy as np
from PIL import Image
import pytest
import tensorflow as tf

import BatchDatsetReader
import checkpoints
import datasets
import demo_data
import FCN
import graphs
import matconvnet
import metrics
import modes
import predictions
import read_MITSceneParsingData as scene_parsing
import session
import training
from conftest import DATA_URL, MODEL_URL, NARROW_FC, UNREACHABLE, Training, command_flags, fcn_command


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
        weights, mean_pixel = matconvnet.load_vgg(fcn_flags["model_dir"], MODEL_URL)
        graphs.build_model(weights, mean_pixel, fc_width=fcn_flags["fc_width"])
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

METRICS_KEYS = {"pixel_accuracy", "mean_accuracy", "mean_iou", "frequency_weighted_iou", "challenge_score",
                "num_images", "class_iou", "checkpoint"}


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
def test_predict_writes_label_colour_and_overlay_at_the_input_size(trained_flags, run_fcn, tmp_path, infer_size):
    sizes = write_mixed_images(str(tmp_path / "photos"))
    no_dataset = dict(trained_flags, data_dir=str(tmp_path / "no_data"), data_url=DATA_URL)
    if infer_size is not None:
        no_dataset["infer_size"] = infer_size
    run_fcn("predict", input=str(tmp_path / "photos"), **no_dataset)
    output_dir = os.path.join(trained_flags["logs_dir"], "predictions")
    palette = scene_parsing.ade20k_palette()
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
    weights, mean_pixel = matconvnet.load_vgg(trained_flags["model_dir"], MODEL_URL)

    def restored(build):
        graph = tf.Graph()
        with graph.as_default():
            built = build()
            sess = tf.compat.v1.Session(graph=graph)
            session.restore_or_initialize(sess, built.pretrained, tf.compat.v1.train.Saver(),
                                          checkpoints.list_checkpoints(trained_flags["logs_dir"]))
        return sess, built

    sess, predictor = restored(lambda: graphs.build_predictor(weights, mean_pixel, 32, fc_width=NARROW_FC))
    labels = predictions.predict_labels(sess, predictor, image)
    sess, model = restored(lambda: graphs.build_model(weights, mean_pixel, fc_width=NARROW_FC))
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

def spoil_first_training_image(data_dir):
    path = sorted(glob.glob(os.path.join(data_dir, "ADEChallengeData2016", "images", "training", "*.jpg")))[0]
    open(path, "wb").close()
    return path


def empty_validation_split(data_dir):
    for path in glob.glob(os.path.join(data_dir, "ADEChallengeData2016", "*", "validation", "*")):
        os.remove(path)


@pytest.mark.parametrize("fault, words", [
    ("missing weights", "VGG weights not found at .*no_model.* Download %s by hand and put it at that path" % MODEL_URL),
    ("missing data", "No data at .* or pass --data_dir"),
    ("empty split", "No image/annotation pairs in the validation split"),
    ("bad images", "1 of 4 image/annotation pairs are bad, more than 1%; the first is .*ADE_train_00000001.jpg"),
])
def test_setup_faults_exit_with_a_message_not_a_traceback(fcn_flags, run_fcn, tmp_path, fault, words):
    flags = dict(fcn_flags, model_url=MODEL_URL,
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
    real_next_batch = BatchDatsetReader.BatchDatset.next_batch
    calls = []

    def interrupted_next_batch(reader, batch_size):
        calls.append(batch_size)
        if len(calls) == 3:
            os.kill(os.getpid(), signal.SIGINT)
        return real_next_batch(reader, batch_size)
    monkeypatch.setattr(BatchDatsetReader.BatchDatset, "next_batch", interrupted_next_batch)
    run_fcn("train", max_iteration=100, save_every=1000, **fcn_flags)
    out = capsys.readouterr().out
    stopped_at = int(re.search(r"SIGINT: stopping after step (\d+)", out).group(1))
    assert stopped_at < 5 and "Run the same command again to resume" in out
    assert checkpoint_steps(fcn_flags["logs_dir"]) == [0, stopped_at]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored after training


@pytest.mark.slow
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
                             for path in checkpoints.list_checkpoints(logs_dir))

    training = Training(flags)
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
    assert "---> Validation_loss:" in out and "Saved image: 5" in out


def test_predict_refuses_to_write_into_its_input_folder(trained_flags, run_fcn, tmp_path):
    photos = str(tmp_path / "photos")
    write_mixed_images(photos)
    with pytest.raises(SystemExit, match="FCN.py: error: --output_dir is the --input folder: .* would overwrite"):
        run_fcn("predict", input=photos, output_dir=photos, **trained_flags)


def test_saved_prediction_with_labels_past_150_names_the_file(fcn_flags, run_fcn, tmp_path):
    predictions = tmp_path / "submission"
    predictions.mkdir()
    for path in sorted(glob.glob(os.path.join(validation_folder(fcn_flags, "annotations"), "*.png"))):
        imageio.imwrite(str(predictions / os.path.basename(path)), np.full_like(imageio.imread(path), 255))
    with pytest.raises(SystemExit, match=r"Prediction .*ADE_val_0000000\d\.png holds label 255"):
        run_fcn("evaluate", predictions_dir=str(predictions), **fcn_flags)


# ---------------------------------------------------------------- checkpoints that do not read, a second training

def spoil_checkpoint(logs_dir, step, how="truncate"):
    """Damage model.ckpt-<step> as a full disk or a cut copy would; returns its path."""
    path = os.path.join(logs_dir, "model.ckpt-%d" % step)
    data_file = path + ".data-00000-of-00001"
    with open(data_file, "rb") as whole:
        data = whole.read()
    with open(data_file, "wb") as cut:
        cut.write(data[:64] if how == "truncate" else os.urandom(len(data)))
    return path


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
    path = spoil_checkpoint(trained_flags["logs_dir"], 1)
    before = {name: os.path.getmtime(name) for name in glob.glob(path + "*")}
    with pytest.raises(SystemExit) as exit_info:
        run_fcn("train", max_iteration=4, **trained_flags)
    assert exit_info.value.code.startswith("FCN.py: error: no readable checkpoint in %s (model.ckpt-1: "
                                           % trained_flags["logs_dir"].rstrip("/"))
    assert "move them out of %s to start afresh" % trained_flags["logs_dir"] in exit_info.value.code
    assert {name: os.path.getmtime(name) for name in glob.glob(path + "*")} == before
    assert checkpoints.list_checkpoints(trained_flags["logs_dir"]) == [path]


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


def test_evaluate_without_a_checkpoint_says_it_scores_the_untrained_network(fcn_flags, run_fcn, capsys):
    run_fcn("evaluate", **fcn_flags)
    out = capsys.readouterr().out
    assert "No checkpoint in %s: evaluating the untrained network (VGG weights and a random head)" \
        % fcn_flags["logs_dir"] in out
    assert json.load(open(os.path.join(fcn_flags["logs_dir"], "metrics.json")))["checkpoint"] is None


def test_training_already_at_max_iteration_says_so_and_writes_nothing(trained_flags, run_fcn, capsys):
    logs_dir = trained_flags["logs_dir"]
    before = sorted(os.listdir(logs_dir))
    assert run_fcn("train", max_iteration=2, **trained_flags) in (None, 0)
    assert "Already at step 2 (>= --max_iteration=2): nothing to train" in capsys.readouterr().out
    assert sorted(os.listdir(logs_dir)) == sorted(set(before) | {checkpoints.LOCK_FILE})


def test_a_second_training_on_the_same_logs_dir_is_refused_and_a_killed_one_s_lock_taken_over(fcn_flags, run_fcn,
                                                                                             capsys):
    first = Training(dict(fcn_flags, max_iteration=100000, save_every=1000))
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

def test_predict_skips_files_it_cannot_read_writes_the_others_and_exits_2(trained_flags, tmp_path):
    photos = tmp_path / "photos"
    sizes = write_mixed_images(str(photos))
    (photos / "notes.jpg").write_text("not an image")
    (photos / "empty.png").write_bytes(b"")
    whole = (photos / "rgb.jpg").read_bytes()
    (photos / "truncated.jpg").write_bytes(whole[:len(whole) // 2])
    output_dir = tmp_path / "out"
    result = fcn_command("--mode=predict", "--input=%s" % photos, "--output_dir=%s" % output_dir,
                         *command_flags(trained_flags))
    assert result.returncode == 2, result.stderr
    skipped = [line for line in result.stdout.splitlines() if line.startswith("Skipping")]
    assert [line.split(":")[0] for line in skipped] == ["Skipping %s" % (photos / name)
                                                         for name in ("empty.png", "notes.jpg", "truncated.jpg")]
    assert "truncated" in skipped[2]
    assert sorted(os.listdir(output_dir)) == sorted(stem + suffix for stem in sizes
                                                    for suffix in (".png", "_color.png", "_overlay.png"))
    assert "Predicted 4 of 7 images into %s; skipped 3: " % output_dir in result.stdout


# ---------------------------------------------------------------- model.json and --init_checkpoint

def test_training_records_the_model_and_later_modes_rebuild_it_from_that(trained_flags, run_fcn, tmp_path, capsys):
    record = json.load(open(os.path.join(trained_flags["logs_dir"], checkpoints.MODEL_RECORD)))
    assert record == {"dataset": "ade20k", "num_classes": 151, "fc_width": NARROW_FC, "image_size": 32,
                      "head": "original", "transpose_vgg_kernels": True, "learn_upsampling": True,
                      "mean_pixel": pytest.approx(matconvnet.IMAGENET_MEAN_PIXEL, rel=1e-5), "ignore_label": None,
                      "class_names": scene_parsing.ade20k_class_names(),
                      "palette": scene_parsing.ade20k_palette().tolist()}
    photos = str(tmp_path / "photos")
    write_mixed_images(photos)
    bare = {"logs_dir": trained_flags["logs_dir"], "model_dir": str(tmp_path / "no_model"), "model_url": MODEL_URL}
    assert run_fcn("predict", input=photos, **bare) == 0  # no --fc_width, --image_size nor VGG file
    with pytest.raises(SystemExit, match=r"FCN.py: error: .*model.json records --fc_width=16 but the command line "
                                         r"says 64: drop the flag, or pass another --logs_dir"):
        run_fcn("predict", input=photos, fc_width=64, **bare)


def test_init_checkpoint_starts_a_new_model_from_another_s_matching_variables(trained_flags, run_fcn, tmp_path, capsys):
    capsys.readouterr()
    wider = dict(trained_flags, logs_dir=str(tmp_path / "wider") + "/", fc_width=2 * NARROW_FC)
    run_fcn("train", max_iteration=1, save_every=1, learning_rate=1e-30, init_checkpoint=trained_flags["logs_dir"],
            **wider)
    out = capsys.readouterr().out
    source = checkpoints.list_checkpoints(trained_flags["logs_dir"])[-1]
    assert ("Initialised 39 of 44 network variables from %s; fresh (absent there, or of another shape): inference/W6, "
            "inference/b6, inference/W7, inference/b7, inference/W8" % source) in out
    assert "Step: 0, Train_loss:" in out
    new, old = (tf.train.load_checkpoint(path) for path in (wider["logs_dir"] + "model.ckpt-0", source))
    np.testing.assert_array_equal(new.get_tensor("inference/W_t3"), old.get_tensor("inference/W_t3"))
    assert new.get_tensor("global_step") == 1

    run_fcn("train", max_iteration=2, save_every=1, init_checkpoint=source, **wider)  # its own checkpoint wins
    out = capsys.readouterr().out
    assert "Using the checkpoints in %s: --init_checkpoint=%s is not used" % (wider["logs_dir"], source) in out
    assert "Step: 1, Train_loss:" in out
    with pytest.raises(SystemExit, match="--init_checkpoint=%s is neither a checkpoint" % (tmp_path / "nothing")):
        run_fcn("train", init_checkpoint=str(tmp_path / "nothing"), **wider)


# ---------------------------------------------------------------- validation curves, seeds, augmentation

def printed_scores(out):
    """(pixel accuracy, mean IoU, images) of each validation line."""
    return [(float(accuracy), float(iou), int(images)) for accuracy, iou, images in
            re.findall(r"---> Validation_loss: \S+, pixel_accuracy: (\S+), mean_iou: (\S+) \((\d+) images\)", out)]


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
        model = graphs.build_model(weights, mean_pixel, fc_width=NARROW_FC)
        with tf.compat.v1.Session() as sess:
            tf.compat.v1.train.Saver().restore(sess, os.path.join(fcn_flags["logs_dir"], "model.ckpt-1"))
            records = scene_parsing.read_dataset(fcn_flags["data_dir"])[1][:3]
            with BatchDatsetReader.BatchDatset(records, {"resize": True, "resize_size": 32}) as reader:
                images, annotations = reader.get_records()
            predictions = sess.run(model.pred_annotation, training.feed(model, images))
    confusion = metrics.confusion_matrix(annotations, predictions, 151)
    assert scores[-1][:2] == (round(metrics.pixel_accuracy(confusion), 4), round(metrics.mean_iou(confusion), 4))

    run_fcn("train", max_iteration=3, save_every=1, val_images=0, **fcn_flags)
    out = capsys.readouterr().out
    assert "---> Validation_loss:" in out and printed_scores(out) == []
    run_fcn("train", max_iteration=4, save_every=1, **fcn_flags)  # the default, 100, is more than the split holds
    assert [images for _, _, images in printed_scores(capsys.readouterr().out)] == [4]


def train_losses(out):
    return [line.split("Train_loss:")[1].split()[0] for line in out.splitlines() if "Train_loss:" in line]


@pytest.mark.slow
def test_a_seed_repeats_a_training_run_augmentation_included(fcn_flags, run_fcn, tmp_path, capsys):
    losses = []
    for run, seed in enumerate((7, 7, 8)):
        flags = dict(fcn_flags, logs_dir=str(tmp_path / str(run)) + "/")
        run_fcn("train", max_iteration=6, save_every=10, seed=seed, augment=True, keep_prob=0.5, **flags)
        losses.append(train_losses(capsys.readouterr().out))
    assert len(losses[0]) == 6 and losses[0] == losses[1] and losses[0] != losses[2]


def test_only_the_training_split_is_augmented(fcn_flags):
    flags = FCN.FLAGS
    flags.unparse_flags()
    FCN.parse_flags(["FCN.py", "--augment", "--seed=5", "--scale_range=0.75,1.5"] + command_flags(fcn_flags))
    try:
        classes = datasets.Classes(151, None, None, None)
        options = modes.reader_options(flags, classes)
        training = modes.training_reader_options(flags, options, np.array([1.0, 2.0, 3.0]))
        assert "augment" not in options
    finally:
        flags.unparse_flags()
    augmentation = training["augment"]
    assert (augmentation.crop_size, augmentation.scale_range, augmentation.seed) == (32, (0.75, 1.5), 5)


def test_evaluate_runs_images_of_the_same_padded_size_as_one_batch(trained_flags, tmp_path, monkeypatch):
    """At --infer_size=0 the three images pad to 64x64 and run together; the labels are those of one image at a
    time but where the mean-pixel padding (rounded for the batch) tips a near tie."""
    rng = np.random.RandomState(1)
    records = []
    for index, (height, width) in enumerate([(40, 50), (64, 64), (50, 33), (20, 20)]):
        path = str(tmp_path / ("image%d.png" % index))
        imageio.imwrite(path, rng.randint(0, 256, (height, width, 3)).astype(np.uint8))
        records.append({"image": path, "annotation": path})
    weights, mean_pixel = matconvnet.load_vgg(trained_flags["model_dir"], MODEL_URL)
    with tf.Graph().as_default():
        predictor = graphs.build_predictor(weights, mean_pixel, 0, fc_width=NARROW_FC)
        with tf.compat.v1.Session() as sess:
            session.restore_or_initialize(sess, predictor.pretrained, tf.compat.v1.train.Saver(),
                                          checkpoints.list_checkpoints(trained_flags["logs_dir"]))
            alone = [predictions.predict_labels(sess, predictor, BatchDatsetReader.read_image(record["image"]))
                     for record in records]
            batch_sizes = []
            real_run = sess.run
            monkeypatch.setattr(sess, "run", lambda fetches, feed_dict: batch_sizes.append(
                len(feed_dict[predictor.images])) or real_run(fetches, feed_dict))
            options = {"num_classes": None, "ignore_label": None, "label_colors": None}
            together = [labels for _, labels in predictions.network_predictions(sess, predictor, records, options,
                                                                          native_size=True)]
    assert batch_sizes == [1, 3]  # 32x32 first, then the three of 64x64
    expected = [alone[3], alone[0], alone[1], alone[2]]
    assert [labels.shape for labels in together] == [labels.shape for labels in expected]
    assert np.mean(np.concatenate([(a == b).ravel() for a, b in zip(together, expected)])) > 0.99
    np.testing.assert_array_equal(together[2], expected[2])  # the largest image has no padding of its own
