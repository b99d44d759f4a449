"""FCN.py, the command line: the original's names, one read-only Settings from the flags, one-line errors, flags
checked before TensorFlow loads, TensorFlow's start-up noise hidden."""
import inspect
import os
import subprocess
import sys

import numpy as np
import pytest

import FCN
from fcn_tensorflow.net import network
from fcn_tensorflow.run import modes
from fcn_tensorflow.run.settings import Settings
from tests.helpers import PROJECT_DIR, command_flags, fcn_command


def test_the_original_s_names_stay_importable_from_its_scripts():
    import BatchDatsetReader
    import read_MITSceneParsingData

    assert FCN.inference is network.inference and FCN.vgg_net is network.vgg_net and FCN.train is network.train
    assert FCN.NUM_OF_CLASSESS == 151 and callable(FCN.main)
    assert inspect.signature(network.train).parameters.keys() >= {"loss_val", "var_list"}
    assert BatchDatsetReader.BatchDatset.__name__ == "BatchDatset"
    assert list(inspect.signature(read_MITSceneParsingData.read_dataset).parameters)[0] == "data_dir"


def test_main_reads_the_flags_once_into_read_only_settings(tmp_path):
    FCN.FLAGS.unparse_flags()
    FCN.parse_flags(["FCN.py", "--logs_dir=%s/" % tmp_path, "--batch_size=3"])
    try:
        settings, _ = FCN.settings_from(FCN.FLAGS, {"logs_dir", "batch_size"})
    finally:
        FCN.FLAGS.unparse_flags()
    assert isinstance(settings, Settings) and set(settings.as_dict()) == set(FCN.FLAG_NAMES)
    assert settings.batch_size == 3 and settings.transpose_vgg_kernels is True  # the original head's default
    assert settings.output_dir == os.path.join("%s/" % tmp_path, "predictions")
    with pytest.raises(AttributeError, match="read-only"):
        settings.batch_size = 4
    assert "helpfull" not in FCN.FLAG_NAMES and "logtostderr" not in FCN.FLAG_NAMES


@pytest.mark.slow
def test_xla_trains_with_finite_loss(fcn_flags, run_fcn, capsys):
    """--mixed_precision: see tests/run/test_precision.py."""
    run_fcn("train", max_iteration=3, save_every=10, xla=True, **fcn_flags)
    out = capsys.readouterr().out
    losses = [float(line.split("Train_loss:")[1].split()[0]) for line in out.splitlines() if "Train_loss:" in line]
    assert len(losses) == 3 and np.all(np.isfinite(losses))


# ---------------------------------------------------------------- the command line

def test_the_help_names_the_paper_s_datasets_and_the_voc_val_list():
    words = " ".join(fcn_command("--help").stdout.split())  # absl's --help exits 1
    for name in ("pascal_context", "siftflow", "siftflow_geometric", "nyud"):
        assert name in FCN.FLAGS["dataset"].parser.enum_values and name in words
    assert "--val_list: the same for the validation pairs; voc: a file of image ids" in words
    assert "seg11valid: the reference's 736 VOC2011 ids" in words


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
    (["--val_list=/tmp"], "--val_list is for --dataset=voc, folder, pascal_context, siftflow, siftflow_geometric or "
                          "nyud, not ade20k"),
    (["--dataset=voc", "--train_list=/tmp"], "--train_list is for --dataset=folder, pascal_context"),
    (["--dataset=nyud", "--sbd_dir=/tmp"], "--sbd_dir is for --dataset=voc, not nyud"),
    (["--head=fcn4s"], "--head"),
    (["--momentum=1"], "--momentum must be in [0, 1)"),
    (["--scale_range=2,0.5"], "--scale_range must be two numbers 0 < smallest <= largest"),
    (["--scale_range=0.5"], "--scale_range must be two numbers"),
    (["--tta=rotate"], "--tta"),
    (["--scales=0.75,0"], "--scales must be numbers > 0"),
    (["--scales=big"], "--scales must be numbers > 0"),
    (["--tile_size=100"], "--tile_size must be 0 or a multiple of 32"),
    (["--tile_size=64", "--tile_overlap=64"], "--tile_overlap=64 must be less than --tile_size=64"),
    (["--mode=export", "--scales=0.5"], "--mode=export writes the plain network"),
    (["--mode=train", "--tta=flip"], "--tta, --scales and --tile_size are for evaluate and predict of the network, "
                                     "not for --mode=train"),
    (["--mode=evaluate", "--tile_size=64", "--predictions_dir=."], "not for --predictions_dir"),
    (["--geometry=caffe"], "--geometry=caffe is for the paper's heads: pass --head=fcn32s, fcn16s, fcn8s or "
                           "fcn8s_atonce"),
    (["--recipe=paper"], "--recipe=paper is for the paper's heads"),
    (["--head=fcn8s", "--recipe=paper", "--batch_size=2"], "--image_size=0 (--recipe=paper's) feeds each image at "
                                                           "its own size, one a batch: pass --batch_size=1"),
    (["--head=fcn8s", "--image_size=0", "--batch_size=1", "--augment"], "one a batch: leave out --augment"),
    (["--backbone=vgg11"], "--backbone"),
    (["--head=fcn8s", "--image_size=0", "--batch_size=1", "--replicas=2"], "one a batch: pass --replicas=1"),
    (["--mode=import"], "--mode=import needs --caffemodel=<a .caffemodel file, or one of voc-fcn32s, "),
    (["--mode=import", "--caffemodel=/tmp"], "nyud-fcn32s-color>: /tmp is neither"),
]


def assert_usage_error_before_tensorflow(argv, words):
    """FCN.py argv exits 1 with one line holding `words`, before TensorFlow loads: `-X importtime` lists every
    module the process imported, and TensorFlow must not be among them."""
    result = subprocess.run([sys.executable, "-X", "importtime", os.path.join(PROJECT_DIR, "FCN.py")] + argv,
                            capture_output=True, text=True, timeout=120)
    lines = [line for line in result.stderr.splitlines() if not line.startswith("import time:")]
    assert result.returncode == 1
    assert len(lines) == 1 and lines[0].startswith("FCN.py: error: ") and words in lines[0], lines
    assert result.stdout == ""
    imported = [line.split("|")[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")]
    assert not [name for name in imported if name == "tensorflow" or name.startswith("tensorflow.")]


@pytest.mark.parametrize("argv, words", USAGE_ERRORS, ids=[" ".join(argv) for argv, _ in USAGE_ERRORS])
def test_a_usage_error_is_one_line_before_tensorflow_loads(argv, words, tmp_path):
    assert_usage_error_before_tensorflow(["--logs_dir=%s" % (tmp_path / "logs")] + argv, words)


WRONG_KIND = [  # flags ({file} a file, {folder} a folder, {missing} nothing) -> the one line, after "FCN.py: error: "
    (["--logs_dir={file}"], "--logs_dir={file} is a file: it should be a folder (new, or holding the checkpoints)"),
    (["--dataset=folder", "--data_dir={folder}", "--train_list={folder}"],
     "--train_list={folder} is a folder: it should be a text file of `image_path annotation_path` lines"),
    (["--dataset=folder", "--data_dir={folder}", "--val_list={folder}"],
     "--val_list={folder} is a folder: it should be a text file of `image_path annotation_path` lines"),
    (["--dataset=voc", "--val_list={folder}"], "--val_list={folder} is a folder: it should be a text file of VOC image "
     "ids, one a line (as ImageSets/Segmentation/val.txt), or seg11valid"),
    (["--dataset=siftflow", "--data_dir={folder}", "--val_list={folder}"],
     "--val_list={folder} is a folder: it should be a text file of `image_path annotation_path` lines"),
    (["--mode=predict", "--input={folder}", "--output_dir={file}"],
     "--output_dir={file} is a file: it should be a folder (new or not) for the predicted pictures"),
    (["--dataset=folder", "--data_dir={missing}"],
     "--data_dir={missing} does not exist: it should be the folder of your images/ and annotations/ (--dataset=folder)"),
    (["--dataset=pascal_context", "--data_dir={missing}"], "--data_dir={missing} does not exist: it should be the "
     "folder of your images/ and annotations/ (--dataset=pascal_context)"),
    (["--dataset=arrays", "--data_dir={missing}"], "--data_dir={missing} does not exist: it should be the folder of "
     "train_images.npy, train_labels.npy, validation_images.npy and validation_labels.npy (--dataset=arrays)"),
    (["--dataset=arrays", "--mode=evaluate", "--data_dir={file}"], "--data_dir={file} is a file: it should be the "
     "folder of train_images.npy, train_labels.npy, validation_images.npy and validation_labels.npy (--dataset=arrays)"),
]


@pytest.mark.parametrize("argv, line", WRONG_KIND, ids=[" ".join(argv) for argv, _ in WRONG_KIND])
def test_a_path_of_the_wrong_kind_is_one_line_naming_the_flag_and_what_it_should_be(argv, line, tmp_path):
    """Old code: "model.json cannot be read (...): delete it" for a --logs_dir file, raw Errno lines after TensorFlow
    loaded for the others, and "No image/annotation pairs in the training split" for a missing --data_dir."""
    (tmp_path / "file").write_text("")
    (tmp_path / "folder").mkdir()
    paths = {name: str(tmp_path / name) for name in ("file", "folder", "missing")}
    argv = [arg.format(**paths) for arg in argv]
    if not any(arg.startswith("--logs_dir") for arg in argv):
        argv.append("--logs_dir=%s" % (tmp_path / "logs"))
    assert_usage_error_before_tensorflow(argv, "FCN.py: error: " + line.format(**paths))
    assert not os.path.exists(tmp_path / "logs")


@pytest.mark.parametrize("flags, words", [
    ({"label_values": "0,x"}, "flag --label_values=0,x: expected whole numbers separated by commas, e.g. 0,255"),
    ({"label_values": "255"}, "--label_values must be two or more different whole numbers >= 0"),
    ({"label_values": "0,255", "num_classes": 3}, "--num_classes must be the number of --label_values"),
    ({"label_values": "0,255", "ignore_label": 255}, "--ignore_label is one of --label_values"),
    ({"class_weights": "no_such_file"}, "--class_weights must be median_frequency or a file of one weight a line"),
])
def test_label_values_and_class_weights_that_cannot_work_are_one_line(run_fcn, flags, words):
    with pytest.raises(SystemExit) as exit_info:
        run_fcn("train", **flags)
    assert exit_info.value.code.startswith("FCN.py: error: ") and words in exit_info.value.code


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
