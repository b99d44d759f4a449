"""caffe_import.py and --mode=import: released-FCN files of each VOC topology in each encoding, and SIFT Flow's, are
imported and predicted from their folder alone exactly as Caffe's forward pass labels them (tests/caffe_reference.py,
NumPy, Caffe's own arithmetic), at odd image sizes; bad files and folders get one line and leave nothing behind."""
import json
import os

import imageio.v2 as imageio
import numpy as np
import pytest

from fcn_tensorflow.data import released_fcns
from fcn_tensorflow.data import synthetic_caffe
from fcn_tensorflow.run import caffe_import
from fcn_tensorflow.run import checkpoints
from tests import caffe_reference
from tests.helpers import UNREACHABLE, fcn_command, run_main, serve_directory

WIDTHS, FC_WIDTH = (4, 8, 8, 16, 16), 24
SIZES = ((37, 53), (101, 75))  # odd sizes: no multiple of 32, no padding hides a wrong offset
AGREEMENT = 0.999  # the share of pixels with Caffe's label (float sums in another order may flip a near tie)
VOC_NETS = ("voc-fcn32s", "voc-fcn16s", "voc-fcn8s", "voc-fcn8s-atonce")


def write_file(folder, net, encoding="layer", seed=3):
    """A narrow caffemodel of `net` with random weights in `encoding`; returns (path, its blobs)."""
    blobs = synthetic_caffe.random_blobs(net, WIDTHS, FC_WIDTH, seed=seed)
    path = os.path.join(str(folder), released_fcns.KNOWN[net].file)
    synthetic_caffe.write_caffemodel(path, net, blobs, encoding)
    return path, blobs


def write_images(folder, seed=0):
    """PNG images of SIZES in folder/images/; returns {stem: RGB array}."""
    rng = np.random.RandomState(seed)
    os.makedirs(os.path.join(str(folder), "images"))
    images = {}
    for index, size in enumerate(SIZES):
        stem = "image%d" % index
        images[stem] = rng.randint(0, 256, size + (3,)).astype(np.uint8)
        imageio.imwrite(os.path.join(str(folder), "images", stem + ".png"), images[stem])
    return images


def assert_agrees_with_caffe(tmp_path, net, encoding, output="semantic"):
    """Import a file of `net` with FCN.py, predict the images from the folder, compare with Caffe's labels. The
    model_dir holds an ImageNet VGG16 file, whose mean pixel the model must not take."""
    path, blobs = write_file(tmp_path, net, encoding)
    images = write_images(tmp_path)
    logs_dir, zoo = str(tmp_path / "imported"), tmp_path / "zoo"
    zoo.mkdir()
    synthetic_caffe.write_vgg16_caffemodel(str(zoo / "VGG_ILSVRC_16_layers.caffemodel"), WIDTHS, FC_WIDTH)
    assert not run_main("import", caffemodel=path, logs_dir=logs_dir, caffe_output=output)
    assert not run_main("predict", logs_dir=logs_dir, input=str(tmp_path / "images"), output_dir=str(tmp_path / "out"),
                        model_dir=str(zoo), model_url=UNREACHABLE + "imagenet-vgg-verydeep-16.mat")
    for stem, image in images.items():
        caffe = caffe_reference.labels(net, blobs, image, released_fcns.KNOWN[net].bgr_mean, output)
        ours = imageio.imread(str(tmp_path / "out" / (stem + ".png")))
        assert ours.shape == image.shape[:2]
        assert len(np.unique(caffe)) > 1  # several classes, so agreeing means something
        assert np.mean(ours == caffe) >= AGREEMENT, (stem, np.mean(ours == caffe))


@pytest.mark.parametrize("encoding", synthetic_caffe.ENCODINGS)
@pytest.mark.parametrize("net", VOC_NETS)
def test_each_voc_topology_in_each_encoding_predicts_as_caffe(tmp_path, net, encoding):
    assert_agrees_with_caffe(tmp_path, net, encoding)


@pytest.mark.parametrize("output", ["semantic", "geometric"])
def test_both_sift_flow_heads_predict_as_caffe(tmp_path, output):
    assert_agrees_with_caffe(tmp_path, "siftflow-fcn8s", "layer", output)


def test_the_import_writes_a_step_0_checkpoint_and_model_json_and_says_so_in_one_line(tmp_path, capsys):
    path, _ = write_file(tmp_path, "voc-fcn8s")
    logs_dir = str(tmp_path / "new" / "voc")
    caffe_import.import_mode(path, logs_dir)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Imported voc-fcn8s (fcn8s head, VGG16, published: 65.5 mean IU "
                                                   "on seg11valid) from fcn8s-heavy-pascal.caffemodel")
    assert "21-class voc model (background, aeroplane" in lines[0] and "--infer_size=0" in lines[0]
    assert [os.path.basename(found) for found in checkpoints.list_checkpoints(logs_dir)] == ["model.ckpt-0"]
    with open(os.path.join(logs_dir, "model.json")) as record_file:
        record = json.load(record_file)
    assert (record["dataset"], record["head"], record["backbone"], record["geometry"], record["num_classes"],
            record["fc_width"], record["learn_upsampling"]) == ("voc", "fcn8s", "vgg16", "caffe", 21, FC_WIDTH, False)
    assert record["class_names"][:2] == ["background", "aeroplane"] and record["ignore_label"] == 255
    np.testing.assert_allclose(record["mean_pixel"], released_fcns.KNOWN["voc-fcn8s"].bgr_mean[::-1])
    assert record["caffemodel"]["net"] == "voc-fcn8s"


def one_line_failure(*args):
    """FCN.py run as a process: exit status 1 and exactly one line, stdout and stderr together."""
    result = fcn_command(*args)
    lines = (result.stdout + result.stderr).strip().splitlines()
    assert result.returncode == 1 and len(lines) == 1, result.stdout + result.stderr
    return lines[0]


def test_a_file_of_another_net_a_cut_file_and_a_used_folder_get_one_line_and_nothing_is_written(tmp_path):
    vgg16 = str(tmp_path / "VGG_ILSVRC_16_layers.caffemodel")
    synthetic_caffe.write_vgg16_caffemodel(vgg16, WIDTHS, FC_WIDTH)
    path, _ = write_file(tmp_path, "voc-fcn8s")
    cut = str(tmp_path / "cut.caffemodel")
    with open(path, "rb") as whole, open(cut, "wb") as part:
        part.write(whole.read()[:os.path.getsize(path) // 2])
    logs_dir = str(tmp_path / "logs")
    line = one_line_failure("--mode=import", "--caffemodel=" + vgg16, "--logs_dir=" + logs_dir)
    assert vgg16 in line and "score_fr" in line
    line = one_line_failure("--mode=import", "--caffemodel=" + cut, "--logs_dir=" + logs_dir)
    assert cut in line and "truncated or corrupt" in line
    assert not os.path.exists(logs_dir)
    os.makedirs(logs_dir)
    assert fcn_command("--mode=import", "--caffemodel=" + path, "--logs_dir=" + logs_dir).returncode == 0
    written = sorted(os.listdir(logs_dir))
    line = one_line_failure("--mode=import", "--caffemodel=" + path, "--logs_dir=" + logs_dir)
    assert line == "FCN.py: error: %s holds checkpoints already: import into a new --logs_dir" % logs_dir
    assert sorted(os.listdir(logs_dir)) == written


def test_every_mode_runs_from_the_imported_folder_alone_and_fine_tuning_keeps_what_fits(tmp_path, voc_dir,
                                                                                      scene_data, capsys):
    path, _ = write_file(tmp_path, "voc-fcn8s")
    imported = str(tmp_path / "imported")
    assert not run_main("import", caffemodel=path, logs_dir=imported)
    no_vgg = {"model_dir": str(tmp_path / "no_vgg"), "model_url": "http://127.0.0.1:9/none.mat"}
    voc = dict(no_vgg, dataset="voc", data_dir=voc_dir[0])
    assert not run_main("evaluate", logs_dir=imported, **voc)
    with open(os.path.join(imported, "metrics.json")) as metrics:
        assert len(json.load(metrics)["class_iou"]) == 21
    assert not run_main("visualize", logs_dir=imported, batch_size=1, **voc)
    capsys.readouterr()
    assert not run_main("export", logs_dir=imported, export_dir=str(tmp_path / "exported"),
                        export_formats="saved_model,tflite", **voc)
    assert os.path.exists(str(tmp_path / "exported" / "saved_model.pb"))
    assert "model.tflite: 100.0 % of labels as the SavedModel" in capsys.readouterr().out
    tuned = dict(voc, max_iteration=2, save_every=2, log_every=1, batch_size=1, image_size=0, val_images=1)
    assert not run_main("train", logs_dir=str(tmp_path / "voc_tuned"), init_checkpoint=imported, **tuned)
    out = capsys.readouterr().out
    assert "Initialised 39 of 39 network variables from %s" % os.path.join(imported, "model.ckpt-0") in out
    with open(str(tmp_path / "voc_tuned" / "model.json")) as record_file:
        record = json.load(record_file)
    assert (record["backbone"], record["geometry"], record["head"], record["fc_width"]) == ("vgg16", "caffe", "fcn8s",
                                                                                           FC_WIDTH)
    ade20k = dict(no_vgg, data_dir=scene_data, max_iteration=1, save_every=1, batch_size=1, image_size=64,
                  val_images=1)
    assert not run_main("train", logs_dir=str(tmp_path / "ade_tuned"), init_checkpoint=imported, **ade20k)
    out = capsys.readouterr().out
    assert "Initialised 30 of 39 network variables" in out and "inference/score_fr/kernel" in out


def test_a_known_name_takes_the_file_from_model_dir_or_downloads_it_and_says_where_to_put_it(tmp_path, capsys):
    served = tmp_path / "served"
    served.mkdir()
    write_file(served, "voc-fcn16s")
    zoo = str(tmp_path / "zoo")
    with serve_directory(str(served)) as url:
        assert not run_main("import", caffemodel="voc-fcn16s", model_dir=zoo, logs_dir=str(tmp_path / "a"),
                            caffemodel_url=url + "/fcn16s-heavy-pascal.caffemodel")
    assert os.path.exists(os.path.join(zoo, "fcn16s-heavy-pascal.caffemodel"))
    assert not run_main("import", caffemodel="voc-fcn16s", model_dir=zoo, logs_dir=str(tmp_path / "b"),
                        caffemodel_url=UNREACHABLE + "fcn16s-heavy-pascal.caffemodel")  # in model_dir: no download
    assert "Imported voc-fcn16s" in capsys.readouterr().out
    result = fcn_command("--mode=import", "--caffemodel=voc-fcn8s", "--model_dir=" + zoo, "--download_timeout=5",
                         "--caffemodel_url=%sfcn8s-heavy-pascal.caffemodel" % UNREACHABLE,
                         "--logs_dir=" + str(tmp_path / "c"))
    line = result.stderr.strip().splitlines()[-1]  # after the line of the download tried
    assert result.returncode == 1 and "download %sfcn8s-heavy-pascal.caffemodel by hand and put it at %s" % (
        UNREACHABLE, os.path.join(zoo, "fcn8s-heavy-pascal.caffemodel")) in line
    assert not os.path.exists(str(tmp_path / "c"))
