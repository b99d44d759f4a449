"""datasets.py: the VOC (+SBD), folder and arrays layouts listed, their classes, colours and ignore labels; then
every layout trained, evaluated, predicted and exported through FCN.py's command line, and VOC's tar extracted
safely."""
import glob
import io
import json
import os
import shutil
import tarfile

import imageio.v2 as imageio
import numpy as np
import pytest
from tensorflow.core.protobuf import saved_model_pb2

from fcn_tensorflow.data import datasets
from fcn_tensorflow.data import voc
from fcn_tensorflow.data import demo
from fcn_tensorflow.data import reader as data_reader
from fcn_tensorflow.data.reader import DataError
from fcn_tensorflow.run import checkpoints
from fcn_tensorflow.run import model_record
from tests.helpers import (TENSORFLOW_LOADED, run_python, MODEL_URL, NARROW_FC, NEW_SBD_IDS, command_flags,
                           fcn_command, run_main, source)





def test_voc_palette_is_the_devkit_s():
    palette = voc.voc_palette()
    assert palette.shape == (256, 3) and palette.dtype == np.uint8
    assert [tuple(palette[index]) for index in (0, 1, 15, 255)] == [(0, 0, 0), (128, 0, 0), (192, 128, 128),
                                                                    (224, 224, 192)]
    assert len({tuple(color) for color in palette}) == 256


def test_voc_lists_its_segmentation_ids_and_with_sbd_the_train_aug_set(voc_dir, capsys):
    data_dir, sbd_dir, ids = voc_dir
    training, validation = datasets.Dataset("voc", source(data_dir)).list_pairs()
    assert [record["filename"] for record in training] == ids["training"]
    assert [record["filename"] for record in validation] == ids["validation"]
    assert all(record["annotation"].endswith(os.path.join("SegmentationClass", record["filename"] + ".png"))
               for record in training + validation)

    for sbd_folder in (sbd_dir, os.path.join(sbd_dir, "benchmark_RELEASE", "dataset")):
        training, validation = datasets.Dataset("voc", source(data_dir, sbd_dir=sbd_folder)).list_pairs()
        by_id = {record["filename"]: record["annotation"] for record in training}
        assert sorted(by_id) == sorted(ids["training"] + NEW_SBD_IDS)  # minus VOC val, VOC train not twice
        assert by_id[ids["training"][0]].endswith(".png") and by_id[NEW_SBD_IDS[0]].endswith(".mat")
        assert len(validation) == 3
    assert "4 train+val images, 2 of them neither VOC train nor VOC val; training on 6 + 2" in capsys.readouterr().out
    with pytest.raises(DataError, match="--sbd_dir=%s holds no benchmark_RELEASE/dataset/cls/" % data_dir):
        datasets.Dataset("voc", source(data_dir, sbd_dir=data_dir)).list_pairs()


def test_a_voc_image_without_its_annotation_is_left_out_with_a_line(voc_dir, capsys):
    data_dir, _, ids = voc_dir
    missing = os.path.join(data_dir, "VOCdevkit", "VOC2012", "SegmentationClass", ids["training"][2] + ".png")
    os.remove(missing)
    training, _ = datasets.Dataset("voc", source(data_dir)).list_pairs()
    assert len(training) == 5 and "Left out, missing: %s" % missing in capsys.readouterr().out


def test_voc_s_tar_placed_by_hand_is_extracted_once_into_vocdevkit(voc_dir, tmp_path, capsys):
    data_dir = str(tmp_path / "placed")
    os.makedirs(os.path.join(data_dir, "VOCdevkit", "VOC2007"))  # another year's data stays
    with tarfile.open(os.path.join(data_dir, "VOCtrainval_11-May-2012.tar"), "w") as archive:
        archive.add(os.path.join(voc_dir[0], "VOCdevkit"), "VOCdevkit")
    for _ in range(2):
        training, _ = datasets.Dataset("voc", source(data_dir)).list_pairs()
        assert len(training) == 6
    assert capsys.readouterr().out.count("Extracting") == 1
    assert sorted(os.listdir(os.path.join(data_dir, "VOCdevkit"))) == ["VOC2007", "VOC2012"]


def write_list(path, pairs):
    with open(path, "w") as list_file:
        list_file.write("# image annotation\n\n" + "".join("%s %s\n" % pair for pair in pairs))
    return path


def test_folder_pairs_from_the_layout_or_from_list_files(tmp_path, capsys):
    data_dir = str(tmp_path / "own")
    demo.write_folder_dataset(data_dir, 4, 2, 32, 40)
    training, validation = datasets.Dataset("folder", source(data_dir)).list_pairs()
    assert len(training) == 4 and len(validation) == 2 and os.path.exists(training[0]["annotation"])

    pairs = [(os.path.join("images", "training", "training_%04d.png" % index),
              os.path.join("annotations", "training", "training_%04d.png" % index)) for index in range(4)]
    train_list = write_list(str(tmp_path / "train.txt"), pairs[:3] + [("images/gone.png", "annotations/gone.png")])
    training, validation = datasets.Dataset("folder", source(data_dir, train_list=train_list)).list_pairs(("training",))
    assert [record["image"] for record in training] == [os.path.join(data_dir, image) for image, _ in pairs[:3]]
    assert validation == [] and "Left out, missing: %s" % os.path.join(data_dir, "images/gone.png") in \
        capsys.readouterr().out
    with pytest.raises(DataError, match="No image/annotation pairs in the validation split"):
        datasets.Dataset("folder", source(data_dir, train_list=train_list)).list_pairs()
    with open(train_list, "a") as list_file:
        list_file.write("one two three\n")
    with pytest.raises(DataError, match=r"train.txt line 7: expected `image_path annotation_path`, found 3 fields"):
        datasets.Dataset("folder", source(data_dir, train_list=train_list)).list_pairs(("training",))


def test_folder_classes_come_from_classes_txt_or_csv_or_num_classes(tmp_path):
    data_dir = str(tmp_path / "own")
    demo.write_folder_dataset(data_dir, 2, 1, 32, 32, colors=True)
    classes = datasets.Dataset("folder", source(data_dir)).describe()
    assert classes.class_names == list(demo.OWN_CLASSES) and classes.ignore_label is None
    np.testing.assert_array_equal(classes.palette, voc.voc_palette(5))
    np.testing.assert_array_equal(datasets.Dataset("folder", source(data_dir)).label_colors(), classes.palette)
    with pytest.raises(DataError, match=r"names 5 classes but this run asks for 6 \(--num_classes"):
        datasets.Dataset("folder", source(data_dir)).describe(num_classes=6)

    with open(os.path.join(data_dir, "classes.csv"), "a") as csv_file:
        csv_file.write("sky,128,0,0\n")
    with pytest.raises(DataError, match=r"classes.csv line 6: colour \(128, 0, 0\) is already class 1 \(tree\)"):
        datasets.Dataset("folder", source(data_dir)).describe()
    with open(os.path.join(data_dir, "classes.csv"), "w") as csv_file:
        csv_file.write("name,r,g,b\nback,0,0,0\nfore,255,255,300\n")
    with pytest.raises(DataError, match=r"classes.csv line 3: expected `name,r,g,b` with r, g, b in 0..255"):
        datasets.Dataset("folder", source(data_dir)).describe()

    os.remove(os.path.join(data_dir, "classes.csv"))
    with pytest.raises(DataError, match="No classes.txt nor classes.csv in .*own: write one .* or pass --num_classes"):
        datasets.Dataset("folder", source(data_dir)).describe()
    assert datasets.Dataset("folder", source(data_dir)).describe(num_classes=3).class_names == ["class 0", "class 1",
                                                                                         "class 2"]
    with open(os.path.join(data_dir, "classes.txt"), "w") as names:
        names.write("background\n\nobject\n")
    with pytest.raises(DataError, match="classes.txt: line 2 is empty"):
        datasets.Dataset("folder", source(data_dir)).describe()


def test_arrays_list_one_record_per_item_and_count_their_classes(tmp_path):
    data_dir = str(tmp_path / "arrays")
    demo.write_arrays_dataset(data_dir, 5, 2, 32)
    training, validation = datasets.Dataset("arrays", source(data_dir)).list_pairs()
    assert [record["index"] for record in training] == list(range(5)) and len(validation) == 2
    assert training[3]["image"] == os.path.join(data_dir, "train_images.npy") and training[3]["filename"] == \
        "train_000003"
    assert datasets.Dataset("arrays", source(data_dir)).describe().num_classes == 5

    labels = np.load(os.path.join(data_dir, "train_labels.npy"))
    labels[0, 0, 0] = 255
    np.save(os.path.join(data_dir, "train_labels.npy"), labels)
    assert datasets.Dataset("arrays", source(data_dir)).describe().num_classes == 256
    assert datasets.Dataset("arrays", source(data_dir), ignore_label=255).describe().num_classes == 5
    demo.write_arrays_dataset(data_dir, 5, 2, 32, one_hot=True)
    assert datasets.Dataset("arrays", source(data_dir)).describe().num_classes == 5


@pytest.mark.parametrize("spoil, words", [
    (lambda d: np.save(d + "/train_labels.npy", np.zeros((5, 16, 32), np.uint8)),
     r"train_labels.npy holds uint8 \[5, 16, 32\]; expected integer \[N, H, W\] or one-hot"),
    (lambda d: np.save(d + "/train_images.npy", np.zeros((5, 32, 32, 3), np.float32) + 0.5),
     r"train_images.npy holds floats in 0..1; this reader takes 0..255"),
    (lambda d: open(d + "/train_images.npy", "wb").write(b"not numpy"), r"train_images.npy cannot be read as a .npy"),
    (lambda d: os.remove(d + "/validation_labels.npy"), "No image/annotation pairs in the validation split"),
])
def test_arrays_that_do_not_fit_are_named(tmp_path, spoil, words):
    data_dir = str(tmp_path / "arrays")
    demo.write_arrays_dataset(data_dir, 5, 2, 32)
    spoil(data_dir)
    with pytest.raises(DataError, match=words):
        datasets.Dataset("arrays", source(data_dir)).list_pairs()


def test_each_dataset_s_ignore_label_scores_and_pictures():
    voc_classes = datasets.Dataset("voc", source("unused")).describe()
    assert voc_classes.num_classes == 21 and voc_classes.class_names[15] == "person" and voc_classes.ignore_label == 255
    assert datasets.Dataset("voc", source("unused")).unscored_class(voc_classes) is None
    names, palette = datasets.for_pictures(voc_classes)
    assert len(names) == len(palette) == 256 and names[255] == "ignored" and tuple(palette[255]) == (224, 224, 192)
    ade20k = datasets.Dataset("ade20k", source("unused"), ignore_label=0).describe()
    assert ade20k.num_classes == 151 and datasets.Dataset("ade20k", source("unused")).unscored_class(ade20k) == 0
    assert len(datasets.for_pictures(ade20k)[1]) == 151
    own = datasets.Classes(3, ["a", "b", "void"], voc.voc_palette(3), 2)
    assert datasets.Dataset("folder", source("unused")).unscored_class(own) == 2


# ---------------------------------------------------------------- every layout through FCN.py

def write_layout(kind, data_dir):
    """One layout of the synthetic scenes; returns (its flags, its class count)."""
    if kind.startswith("voc"):
        ids = demo.write_voc_dataset(data_dir, 6, 3, 32, 48)
        flags = {"dataset": "voc", "data_dir": data_dir}
        if kind == "voc_sbd":
            flags["sbd_dir"] = os.path.join(data_dir, "SBD")
            demo.write_sbd_dataset(flags["sbd_dir"], NEW_SBD_IDS + ids["validation"][:1], [], 32, 48)
        return flags, 21
    if kind.startswith("arrays"):
        demo.write_arrays_dataset(data_dir, 6, 3, 32, one_hot=kind == "arrays_one_hot")
        return {"dataset": "arrays", "data_dir": data_dir}, 5
    names = demo.write_folder_dataset(data_dir, 6, 3, 32, 48, colors=kind == "folder_colors",
                                           binary=kind == "binary")
    return {"dataset": "folder", "data_dir": data_dir}, len(names)


def validation_photos(flags, folder):
    """A folder of validation images (JPEG or PNG files) to predict."""
    os.makedirs(folder)
    if flags["dataset"] == "arrays":
        for index, image in enumerate(np.load(os.path.join(flags["data_dir"], "validation_images.npy"))[:2]):
            imageio.imwrite(os.path.join(folder, "item%d.png" % index), image)
    else:
        pattern = ("VOCdevkit/VOC2012/JPEGImages/*.jpg" if flags["dataset"] == "voc" else "images/validation/*.png")
        for path in sorted(glob.glob(os.path.join(flags["data_dir"], pattern)))[:2]:
            shutil.copy(path, folder)
    return folder


def probabilities_depth(export_dir):
    saved_model = saved_model_pb2.SavedModel()
    with open(os.path.join(export_dir, "saved_model.pb"), "rb") as saved:
        saved_model.ParseFromString(saved.read())
    signature = saved_model.meta_graphs[0].signature_def["serving_default"]
    return signature.outputs["probabilities"].tensor_shape.dim[-1].size


LAYOUTS = ["voc", "voc_sbd", "folder_index", "folder_colors", "binary", "arrays", "arrays_one_hot"]


@pytest.mark.slow
@pytest.mark.parametrize("kind", LAYOUTS)
def test_each_layout_trains_evaluates_predicts_and_exports(kind, vgg_mat, tmp_path, run_fcn, capsys):
    data_flags, num_classes = write_layout(kind, str(tmp_path / "data"))
    logs_dir = str(tmp_path / "logs") + "/"
    no_vgg = {"logs_dir": logs_dir, "model_dir": str(tmp_path / "no_model"), "model_url": MODEL_URL}
    run_fcn("train", max_iteration=2, save_every=5, log_every=1, batch_size=2, image_size=32, fc_width=NARROW_FC,
            model_dir=vgg_mat, model_url=MODEL_URL, logs_dir=logs_dir, **data_flags)
    losses = [float(line.split("Train_loss:")[1].split()[0]) for line in capsys.readouterr().out.splitlines()
              if "Train_loss:" in line]
    assert len(losses) == 2 and np.all(np.isfinite(losses))
    record = model_record.read(logs_dir)
    assert (record["dataset"], record["num_classes"], len(record["class_names"]), len(record["palette"])) == \
        (data_flags["dataset"], num_classes, num_classes, num_classes)
    assert record["ignore_label"] == (255 if kind.startswith("voc") else None)

    on_data = {name: value for name, value in data_flags.items() if name not in ("dataset", "sbd_dir")}
    run_fcn("evaluate", **on_data, **no_vgg)  # the dataset, classes and sizes come from model.json
    out = capsys.readouterr().out
    scores = json.load(open(os.path.join(logs_dir, "metrics.json")))
    assert len(scores["class_iou"]) == num_classes and scores["num_images"] == 3
    assert (scores["class_iou"][0] is not None) and "%-20s" % record["class_names"][0] in out

    output_dir = str(tmp_path / "predicted")
    run_fcn("predict", input=validation_photos(data_flags, str(tmp_path / "photos")), output_dir=output_dir, **no_vgg)
    palette = np.array(record["palette"], np.uint8)
    for path in glob.glob(os.path.join(output_dir, "*_color.png")):
        labels = imageio.imread(path.replace("_color.png", ".png"))
        np.testing.assert_array_equal(imageio.imread(path)[:labels.shape[0], :labels.shape[1]], palette[labels])
    run_fcn("export", export_dir=str(tmp_path / "exported"), **no_vgg)
    assert probabilities_depth(str(tmp_path / "exported")) == num_classes
    run_fcn("visualize", **no_vgg, **on_data)
    assert os.path.exists(os.path.join(logs_dir, "compare_6.png"))


@pytest.mark.slow
def test_tensorboard_pictures_of_a_voc_model_use_voc_colours(voc_logs):
    from tensorboard.backend.event_processing import event_accumulator

    accumulator = event_accumulator.EventAccumulator(os.path.join(voc_logs[1], "validation"),
                                                     size_guidance={event_accumulator.IMAGES: 0}).Reload()
    picture = imageio.imread(accumulator.Images("ground_truth/image/0")[-1].encoded_image_string)
    colours = {tuple(color) for color in picture.reshape(-1, picture.shape[-1])[:, :3]}
    assert (224, 224, 192) in colours  # the 255 borders, in the devkit's colour
    assert colours <= {tuple(color) for color in voc.voc_palette()}


@pytest.fixture(scope="module")
def voc_logs(vgg_mat, tmp_path_factory):
    """(VOC flags, logs_dir of a tiny VOC model trained 2 steps), made once per module."""
    root = tmp_path_factory.mktemp("voc_model")
    flags, _ = write_layout("voc", str(root / "data"))
    flags.update(model_dir=vgg_mat, model_url=MODEL_URL, fc_width=NARROW_FC, image_size=32, batch_size=2)
    run_main("train", max_iteration=2, save_every=5, logs_dir=str(root / "logs") + "/", **flags)
    return flags, str(root / "logs") + "/"


@pytest.mark.slow
def test_voc_scores_background_and_ignores_its_255_borders(voc_logs, run_fcn, tmp_path):
    flags, logs_dir = voc_logs
    logs = dict(flags, logs_dir=str(tmp_path / "logs") + "/")
    shutil.copytree(logs_dir, logs["logs_dir"])
    validation = sorted(glob.glob(os.path.join(flags["data_dir"], "VOCdevkit/VOC2012/JPEGImages/2012_00000[6-8].jpg")))
    photos = str(tmp_path / "photos")
    os.makedirs(photos)
    for path in validation:
        shutil.copy(path, photos)
    run_fcn("predict", input=photos, output_dir=str(tmp_path / "predicted"), **logs)
    run_fcn("evaluate", predictions_dir=str(tmp_path / "predicted"), **logs)
    scores = json.load(open(os.path.join(logs["logs_dir"], "metrics.json")))

    truth = [data_reader.read_annotation(path.replace("JPEGImages", "SegmentationClass").replace(".jpg", ".png"))
             for path in validation]  # the palette indices (imageio would give their colours)
    predicted = [imageio.imread(str(tmp_path / "predicted" / os.path.basename(path).replace(".jpg", ".png")))
                 for path in validation]
    truth, predicted = np.concatenate([t.ravel() for t in truth]), np.concatenate([p.ravel() for p in predicted])
    assert np.any(truth == 255) and np.any(truth == 0)
    scored = truth != 255
    assert scores["pixel_accuracy"] == pytest.approx(np.mean(truth[scored] == predicted[scored]))
    background = np.sum((truth == 0) & (predicted == 0)) / np.sum(scored & ((truth == 0) | (predicted == 0)))
    assert scores["class_iou"][0] == pytest.approx(background)


@pytest.mark.slow
def test_fine_tuning_voc_from_an_ade20k_model_and_a_checkpoint_of_another_class_count(voc_logs, trained_logs, run_fcn,
                                                                                        tmp_path, capsys):
    flags, _ = voc_logs
    fresh = dict(flags, logs_dir=str(tmp_path / "fine_tuned") + "/")
    run_fcn("evaluate", init_checkpoint=trained_logs, **fresh)
    out = capsys.readouterr().out
    assert "evaluating the network training would start from (the matching variables of --init_checkpoint)" in out
    assert "Initialised 39 of 44 network variables from %s" % checkpoints.list_checkpoints(trained_logs)[-1] in out
    run_fcn("train", max_iteration=1, save_every=5, init_checkpoint=trained_logs, **fresh)
    out = capsys.readouterr().out
    assert ("Initialised 39 of 44 network variables from %s; fresh (absent there, or of another shape): "
            "inference/W8, inference/b8, inference/W_t1, inference/W_t3, inference/b_t3"
            % checkpoints.list_checkpoints(trained_logs)[-1]) in out
    assert model_record.read(fresh["logs_dir"])["num_classes"] == 21

    unrecorded = str(tmp_path / "unrecorded") + "/"
    shutil.copytree(trained_logs, unrecorded)
    os.remove(os.path.join(unrecorded, model_record.MODEL_RECORD))
    with pytest.raises(SystemExit, match=r"FCN.py: error: .*model.ckpt-1 is a model of 151 classes, but this run "
                                         r"builds 21 .*: pass --num_classes=151 and the --dataset it was trained on"):
        run_fcn("evaluate", **dict(flags, logs_dir=unrecorded))


@pytest.mark.slow
def test_voc_with_sbd_through_real_processes(vgg_mat, tmp_path):
    data_flags, _ = write_layout("voc_sbd", str(tmp_path / "data"))
    logs = {"logs_dir": str(tmp_path / "logs"), "model_dir": vgg_mat, "model_url": MODEL_URL}
    runs = [["--mode=train", "--max_iteration=2", "--fc_width=%d" % NARROW_FC, "--image_size=32", "--batch_size=2"]
            + command_flags(data_flags),
            ["--mode=evaluate", "--data_dir=%s" % data_flags["data_dir"]],
            ["--mode=predict", "--input=%s" % validation_photos(data_flags, str(tmp_path / "photos"))],
            ["--mode=export", "--export_dir=%s" % (tmp_path / "exported")]]
    results = [fcn_command(*(argv + command_flags(logs))) for argv in runs]
    for result in results:
        assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert "training on 6 + 2" in results[0].stdout  # SBD adds its 2 ids that are neither VOC train nor val
    assert probabilities_depth(str(tmp_path / "exported")) == 21
    assert len(glob.glob(str(tmp_path / "logs" / "predictions" / "*_color.png"))) == 2


@pytest.mark.slow
@pytest.mark.parametrize("member", ["../escape.txt", "/tmp/escape_from_voc.txt"])
def test_a_voc_tar_with_a_member_outside_its_folder_is_refused(tmp_path, member):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    with tarfile.open(str(data_dir / "VOCtrainval_11-May-2012.tar"), "w") as archive:
        for name in ("VOCdevkit/VOC2012/ImageSets/Segmentation/train.txt", member):
            info = tarfile.TarInfo(name)
            info.size = 3
            archive.addfile(info, io.BytesIO(b"id\n"))
    result = fcn_command("--mode=train", "--dataset=voc", "--data_dir=%s" % data_dir, "--logs_dir=%s" % (tmp_path / "l"))
    assert result.returncode == 1 and result.stderr.splitlines() == [
        "FCN.py: error: %s holds member %r, which would land outside the folder it is extracted to; not extracted. "
        "Use an archive from the official source." % (data_dir / "VOCtrainval_11-May-2012.tar", member)]
    assert os.listdir(str(data_dir)) == ["VOCtrainval_11-May-2012.tar"]
    assert not os.path.exists(str(tmp_path / "escape.txt")) and not os.path.exists("/tmp/escape_from_voc.txt")


def test_listing_any_dataset_does_not_load_tensorflow():
    words, stderr = run_python("import demo_data, FCN; from fcn_tensorflow.data import datasets, demo, reader"
                               + TENSORFLOW_LOADED)
    assert words == ["False"], stderr
