"""predictions.py: how evaluate groups images into batches of one size and skips bad pairs; evaluate, predict and
export through FCN.py on tiny data, at any size, with or without the VGG file, and their bad inputs."""
import glob
import os
import re
import subprocess
import sys

import imageio.v2 as imageio
import numpy as np
from PIL import Image
import pytest
import tensorflow as tf

from fcn_tensorflow import pictures
from fcn_tensorflow.data import matconvnet
from fcn_tensorflow.data import reader as data_reader
from fcn_tensorflow.data import reader as dataset
from fcn_tensorflow.data import scene_parsing
from fcn_tensorflow.net import graphs
from fcn_tensorflow.net.spec import Net
from fcn_tensorflow.run import checkpoints
from fcn_tensorflow.run import predictions
from fcn_tensorflow.run import session
from tests.helpers import (DATA_URL, MODEL_URL, NARROW_FC, command_flags, fcn_command,
                           validation_folder, read_metrics, write_mixed_images)


def test_batches_group_images_of_a_padded_size_and_leave_unreadable_ones_alone(tmp_path):
    records = []
    for name, size in (("broken", None), ("a", (40, 30)), ("b", (33, 40)), ("c", (64, 64)), ("d", (40, 30))):
        path = str(tmp_path / (name + ".png"))
        if size:
            Image.new("RGB", size).save(path)
        else:
            open(path, "wb").close()
        records.append({"image": path, "annotation": path, "filename": name})
    names = [[record["filename"] for record in batch] for batch in predictions.batches_of_a_size(records, 32)]
    assert names == [["a", "d"], ["b", "c"], ["broken"]]  # 64x32 (width x height) before 64x64; the broken one last
    exact = [[record["filename"] for record in batch] for batch in predictions.batches_of_a_size(records, 1)]
    assert exact == [["b"], ["a", "d"], ["c"], ["broken"]]
    assert [len(batch) for batch in predictions.batches_of_a_size(records[1:] * 3, 32, max_pixels=2 * 64 * 32)] \
        == [2, 2, 2, 1, 1, 1, 1, 1, 1]


def test_evaluate_skips_a_bad_pair_but_stops_at_more_than_one_percent_as_training_does(tmp_path, capsys):
    image, annotation = str(tmp_path / "good.png"), str(tmp_path / "good_labels.png")
    Image.new("RGB", (8, 6)).save(image)
    Image.fromarray(np.full((6, 8), 3, np.uint8)).save(annotation)
    good = {"image": image, "annotation": annotation, "filename": "good"}
    bad = [{"image": str(tmp_path / ("bad%d.jpg" % index)), "annotation": annotation, "filename": "bad%d" % index}
           for index in range(3)]
    for record in bad:
        open(record["image"], "wb").close()
    options = {"num_classes": 151, "ignore_label": None, "label_colors": None}

    def usable(records):
        bad_pairs = []
        return [predictions.usable_pair(record, options, bad_pairs, len(records)) for record in records]

    pairs = usable([good] * 198 + bad[:2])  # 2 of 200 is 1%: skipped, each with a line naming the file
    assert sum(pair is None for pair in pairs) == 2 and pairs[0][1].shape == (6, 8)
    skipped = [line for line in capsys.readouterr().out.splitlines() if line.startswith("Skipping")]
    assert [line.split(":")[0] for line in skipped] == ["Skipping " + bad[0]["image"], "Skipping " + bad[1]["image"]]
    with pytest.raises(dataset.DataError, match="3 of 200 .*the first is %s" % re.escape(bad[0]["image"])):
        usable(bad + [good] * 197)


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


METRICS_KEYS = {"pixel_accuracy", "mean_accuracy", "mean_iou", "frequency_weighted_iou", "challenge_score",
                "num_images", "class_iou", "checkpoint"}


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
        np.testing.assert_array_equal(color[:size[0], :size[1]], palette[labels])  # a legend under the picture
        assert imageio.imread(os.path.join(output_dir, stem + "_overlay.png")).shape[0] > size[0]
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

    sess, predictor = restored(lambda: graphs.build_predictor(weights, mean_pixel, 32, Net(fc_width=NARROW_FC)))
    labels = predictions.predict_labels(sess, predictor, image)
    sess, model = restored(lambda: graphs.build_model(weights, mean_pixel, Net(fc_width=NARROW_FC)))
    seen = data_reader.resize(image, 32)[np.newaxis]
    logits = sess.run(model.logits, {model.image: seen, model.keep_probability: 1.0})
    with tf.Graph().as_default(), tf.compat.v1.Session() as resize:
        expected = resize.run(tf.argmax(tf.image.resize(logits, [37, 53], method="bilinear"), axis=3))[0]
    assert labels.shape == (37, 53)
    np.testing.assert_array_equal(labels, expected)


def assert_same_label_maps(run_fcn, tmp_path, first, second):
    """Predict the same mixed images with the flags `first`, then `second`: the label maps are the same."""
    photos = str(tmp_path / "photos")
    sizes = write_mixed_images(photos)
    for name, flags in (("first", first), ("second", second)):
        run_fcn("predict", input=photos, output_dir=str(tmp_path / name), **flags)
    for stem in sizes:
        np.testing.assert_array_equal(imageio.imread(str(tmp_path / "first" / (stem + ".png"))),
                                      imageio.imread(str(tmp_path / "second" / (stem + ".png"))))


def test_a_trained_model_predicts_without_the_vgg_file(trained_flags, run_fcn, tmp_path, capsys):
    without_file = dict(trained_flags, model_dir=str(tmp_path / "no_model"), model_url=MODEL_URL)
    assert_same_label_maps(run_fcn, tmp_path, trained_flags, without_file)
    assert "VGG shapes from" in capsys.readouterr().out
    assert not os.path.exists(without_file["model_dir"])


def test_convs_as_matmul_off_predicts_the_same_labels(trained_flags, run_fcn, tmp_path):
    assert_same_label_maps(run_fcn, tmp_path, trained_flags, dict(trained_flags, convs_as_matmul=False))


def test_export_serves_the_labels_predict_mode_writes(trained_flags, run_fcn, tmp_path):
    photos = str(tmp_path / "photos")
    sizes = write_mixed_images(photos)
    run_fcn("predict", input=photos, output_dir=str(tmp_path / "predicted"), **trained_flags)
    export_dir = str(tmp_path / "exported")
    run_fcn("export", export_dir=export_dir, **trained_flags)

    image = data_reader.read_image(os.path.join(photos, "rgb.jpg"))
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
        predictor = graphs.build_predictor(weights, mean_pixel, 0, Net(fc_width=NARROW_FC))
        with tf.compat.v1.Session() as sess:
            session.restore_or_initialize(sess, predictor.pretrained, tf.compat.v1.train.Saver(),
                                          checkpoints.list_checkpoints(trained_flags["logs_dir"]))
            alone = [predictions.predict_labels(sess, predictor, data_reader.read_image(record["image"]))
                     for record in records]
            batch_sizes = []
            real_run = sess.run
            monkeypatch.setattr(sess, "run", lambda fetches, feed_dict: batch_sizes.append(
                len(feed_dict[predictor.images])) or real_run(fetches, feed_dict))
            options = {"num_classes": None, "ignore_label": None, "label_colors": None}
            together = [labels for _, labels in predictions.network_predictions(sess, predictor, records, options,
                                                                          native_size=True)]
            exact = [labels for _, labels in predictions.network_predictions(  # the caffe geometry's batches
                sess, predictor, records, options, native_size=True, exact_sizes=True)]
    assert batch_sizes == [1, 3, 1, 1, 1, 1]  # 32x32 first, then the three of 64x64; exact sizes: one each
    assert all(np.array_equal(a, b) for a, b in zip(sorted(exact, key=np.size), sorted(alone, key=np.size)))
    expected = [alone[3], alone[0], alone[1], alone[2]]
    assert [labels.shape for labels in together] == [labels.shape for labels in expected]
    assert np.mean(np.concatenate([(a == b).ravel() for a, b in zip(together, expected)])) > 0.99
    np.testing.assert_array_equal(together[2], expected[2])  # the largest image has no padding of its own


def test_predict_pictures_have_a_legend_of_the_classes_in_that_image(trained_flags, run_fcn, tmp_path, capsys):
    height, width = write_mixed_images(str(tmp_path / "photos"))["rgb"]
    output_dir = str(tmp_path / "out")
    run_fcn("predict", input=str(tmp_path / "photos" / "rgb.jpg"), output_dir=output_dir, **trained_flags)
    assert "Saved rgb.png, rgb_color.png and rgb_overlay.png in %s" % output_dir in capsys.readouterr().out
    palette, names = scene_parsing.ade20k_palette(), scene_parsing.ade20k_class_names()
    labels = imageio.imread(os.path.join(output_dir, "rgb.png"))
    coloured = {label for label in np.unique(labels).tolist() if len(set(palette[label])) > 1}  # not grey
    for suffix in ("_color", "_overlay"):
        picture = imageio.imread(os.path.join(output_dir, "rgb%s.png" % suffix))
        assert picture.shape[0] > height + 10 and picture.shape[1] >= width
        expected = pictures.with_legend(pictures.colorize(labels, palette) if suffix == "_color" else
                                        picture[:height, :width], [labels], palette, names)
        np.testing.assert_array_equal(picture, expected)
        colours = {tuple(colour) for colour in np.unique(picture[height:].reshape(-1, 3), axis=0)}
        assert {label for label in range(len(palette)) if len(set(palette[label])) > 1
                and tuple(palette[label]) in colours} == coloured  # the swatches of the classes present, only
