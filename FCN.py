"""Fully convolutional networks for semantic segmentation: the command line. `python FCN.py --help` lists every flag.

A port of shekkizh/FCN.tensorflow (its FCN-8s, the default) to today's TensorFlow (tf.compat.v1 graphs and
sessions), with the paper's FCN-32s/16s/8s and any dataset. This file holds the flags, their checks and `main`,
which reads the flags once into a Settings and hands it to the mode; the library is the fcn_tensorflow package:
data/ (listing and reading, no TensorFlow), net/ (the network, fcn_tensorflow/net/network.py, and the graphs the
modes run), run/ (the modes, training, predictions, sessions). The original's names stay here: FCN.inference,
FCN.vgg_net, FCN.train, FCN.main, FCN.NUM_OF_CLASSESS.
"""
import os
import sys

from absl import app
from absl import flags

from fcn_tensorflow import console
from fcn_tensorflow.data import augment
from fcn_tensorflow.data import class_weights
from fcn_tensorflow.data import datasets
from fcn_tensorflow.data import matconvnet
from fcn_tensorflow.data import reader
from fcn_tensorflow.data import released_fcns
from fcn_tensorflow.data import scene_parsing
from fcn_tensorflow.data import voc
from fcn_tensorflow.data.scene_parsing import NUM_OF_CLASSESS  # noqa: F401 (the original's constant)
from fcn_tensorflow.net import spec
from fcn_tensorflow.run import checkpoints
from fcn_tensorflow.run import formats
from fcn_tensorflow.run import model_record
from fcn_tensorflow.run import tta
from fcn_tensorflow.run import video
from fcn_tensorflow.run.settings import Settings

NETWORK_NAMES = ("inference", "vgg_net", "train")  # the original's, from fcn_tensorflow/net/network.py

MODE_HELP = {
    "train": "train, resuming from the newest checkpoint in --logs_dir",
    "visualize": "write input, ground truth and prediction pictures of a few validation images",
    "evaluate": "score the validation split, write logs_dir/metrics.json",
    "predict": "segment --input (an image, a folder or a video)",
    "export": "write a SavedModel to --export_dir",
    "import": "write a released Caffe FCN (--caffemodel) into --logs_dir as a checkpoint and model.json",
}

DATA_MODES = ("train", "visualize", "evaluate")  # the modes that read --data_dir
FLAGS = flags.FLAGS
ABSL_FLAGS = frozenset(FLAGS)  # absl's own, defined before ours
flags.DEFINE_integer("batch_size", 2, "batch size for training, per replica (the step's global batch is "
                     "batch_size x replicas x workers), and the number of pictures visualize writes", lower_bound=1)
flags.DEFINE_string("logs_dir", "logs/", "path to logs directory (checkpoints, TensorBoard, pictures)")
flags.DEFINE_string("data_dir", "Data_zoo/MIT_SceneParsing/", "path to dataset")
flags.DEFINE_float("learning_rate", 1e-4, "Learning rate of --optimizer (> 0)")
flags.DEFINE_string("model_dir", "Model_zoo/", "Path to vgg model mat (or VGG16's .caffemodel): the folder holding "
                    "it, or the file itself; import: where --caffemodel=<name> is")
flags.DEFINE_bool("debug", False, "Debug mode: activation and gradient histograms in TensorBoard")
flags.DEFINE_enum("mode", "train", list(MODE_HELP), "Mode: " + "; ".join("%s: %s" % item for item in MODE_HELP.items()))
flags.DEFINE_integer("max_iteration", 100001, "number of training steps (the step count continues on resume)",
                     lower_bound=0)
flags.DEFINE_integer("image_size", 224, "images and annotations are resized to this square (multiple of 32); 0: "
                     "each at its own size, one a batch (--batch_size=1)", lower_bound=0)
flags.DEFINE_float("keep_prob", 0.85, "dropout keep probability of conv6 and conv7 while training, in (0, 1]")
flags.DEFINE_integer("log_every", 10, "print and log the training loss every N steps", lower_bound=1)
flags.DEFINE_integer("save_every", 500, "validate and write a checkpoint every N steps", lower_bound=1)
flags.DEFINE_string("model_url", matconvnet.MODEL_URL, "where to download the VGG MatConvNet file if model_dir lacks "
                    "it. Default: VGG19's; with --backbone=vgg16, %s" % matconvnet.MODEL_URLS["vgg16"])
flags.DEFINE_string("data_url", "", "where to download the dataset if data_dir lacks it. Default: the official archive "
                    "(ADE20K: %s; VOC: %s)" % (scene_parsing.DATA_URL, voc.VOC_URL))
flags.DEFINE_float("download_timeout", 60.0, "seconds a download may wait to connect, or for its next data",
                   lower_bound=0.001)
flags.DEFINE_integer("fc_width", 4096, "number of channels of conv6 and conv7", lower_bound=1)
flags.DEFINE_string("init_checkpoint", "",
                    "train: when --logs_dir has no checkpoint yet, start from this one (or the newest in this folder): "
                    "network variables of the same name and shape are restored, the rest start fresh, at step 0. "
                    "evaluate: without a checkpoint in --logs_dir, score that starting point")
flags.DEFINE_bool("transpose_vgg_kernels", None,
                  "swap the kernel's first two axes as the original did (keeps its checkpoints valid). Default: "
                  "True for --head=original, False for the paper's heads (the file stores height, width, in, out)")
flags.DEFINE_integer("infer_size", None,
                     "evaluate/predict/export: the net sees each image resized to this square (nearest, as in "
                     "training) and its class scores are resized back (bilinear); 0 = the native size, padded to "
                     "a multiple of 32 (--geometry=caffe: as it is). Default: --image_size (caffe: 0)")
flags.DEFINE_string("predictions_dir", "",
                    "evaluate: score the label PNGs <stem>.png in this folder instead of running the network")
flags.DEFINE_string("input", "", "predict: an image file (JPEG or PNG), a folder of them, or a video (%s; needs "
                    "the %s package)" % (" ".join(video.VIDEO_EXTENSIONS), video.EXTRA_PACKAGE))
flags.DEFINE_string("output_dir", "", "predict: where to write <stem>.png, <stem>_color.png and "
                    "<stem>_overlay.png; for a video <stem>.mp4 and <stem>/00000.png, ... "
                    "Default: logs_dir/predictions")
flags.DEFINE_string("export_dir", "", "export: a new folder for the SavedModel. Default: logs_dir/saved_model")
flags.DEFINE_list("export_formats", ["saved_model"], "export: comma list of " + ", ".join(formats.FILES) + " (the "
                  "SavedModel is always written; the others need requirements-export.txt)")
flags.DEFINE_string("calibration_dir", "", "export: a folder of images to calibrate tflite_int8 on and to check the "
                    "converted files with. Default: the validation images of --data_dir")
flags.DEFINE_integer("calibration_images", 100, "export: calibrate tflite_int8 on at most this many images",
                     lower_bound=1)
flags.DEFINE_bool("convs_as_matmul", True,
                  "compute conv6-8 and the 8x upsampling as matmuls (same sums, faster on CPU); false: original ops")
flags.DEFINE_bool("xla", False, "train and visualize: compile the graph with XLA auto-clustering (evaluate, "
                  "predict and export ignore it: each new image size would be compiled again)")
flags.DEFINE_bool("mixed_precision", False,
                  "convolutions and matmuls in 16 bits, loss, softmax and metrics in float32. On a CPU with "
                  "avx512_bf16 or amx_bf16: bfloat16 (float32 variables when training); on a GPU: float16 with "
                  "float32 master weights and dynamic loss scaling; other CPUs: float32, with a line saying so. "
                  "export: a bfloat16 SavedModel")
# Several devices and machines (tf.distribute, see fcn_tensorflow/run/distribute.py)
flags.DEFINE_integer("replicas", None,
                     "train: data-parallel replicas on this machine, one per GPU; on a machine without GPUs, N logical "
                     "CPU devices (for checking: slower, not faster). Default: the number of visible GPUs, or 1",
                     lower_bound=1)
flags.DEFINE_float("worker_timeout", 300.0,
                   "train with TF_CONFIG (several machines): seconds a worker waits for the others at start-up and in "
                   "any step before it stops with an error; must exceed the chief's longest pause (validation and "
                   "writing a checkpoint)", lower_bound=1.0)

flags.register_validator("learning_rate", lambda value: value > 0, "--learning_rate must be > 0")
flags.register_validator("keep_prob", lambda value: 0 < value <= 1, "--keep_prob must be in (0, 1]")
flags.register_validator("image_size", lambda value: value % 32 == 0, "--image_size must be a multiple of 32")
flags.register_validator("infer_size", lambda value: value is None or (value >= 0 and value % 32 == 0),
                         "--infer_size must be 0 or a positive multiple of 32")
# Test-time augmentation and tiles (fcn_tensorflow/run/tta.py, tiles.py)
flags.DEFINE_enum("tta", "none", tta.TTA_CHOICES, "evaluate/predict: flip: also predict the mirrored image and "
                  "average the class probabilities (mirrored back)")
flags.DEFINE_list("scales", ["1"], "evaluate/predict: average the class probabilities of copies of the image "
                  "resized by these factors (the square the net sees with --infer_size=N), at the image's size; "
                  "1 alone: the plain network")
flags.DEFINE_integer("tile_size", 0, "evaluate/predict: predict windows of this square (a multiple of 32) on a "
                     "slide grid, probabilities averaged where they overlap, for images too big to predict whole "
                     "(each window seen at --infer_size, or at its own size with 0). 0: the whole image", lower_bound=0)
flags.DEFINE_integer("tile_overlap", None, "pixels shared by neighbouring windows of --tile_size, less than it. "
                     "Default: tile_size / 4", lower_bound=0)
flags.register_validator("scales", lambda value: tta.scales_of(value) is not None,
                         "--scales must be numbers > 0, e.g. 0.75,1,1.25")
flags.register_validator("tile_size", lambda value: value % 32 == 0, "--tile_size must be 0 or a multiple of 32")

# ---------------------------------------------------------------- flags: the paper's FCNs and how they train
flags.DEFINE_enum("head", "original", spec.HEADS,
                  "original: the original's head (average pooling, skips in feature space); fcn32s, fcn16s, fcn8s, "
                  "fcn8s_atonce (its skips scaled by 0.01, 0.0001): the paper's (max pooling, conv6/conv7 from the "
                  ".mat's fc6/fc7, skips summed as class scores, bilinear upsampling)")
flags.DEFINE_enum("backbone", "vgg19", spec.BACKBONES, "the VGG: vgg19 (the original's) or vgg16 (the paper's: "
                  "imagenet-vgg-verydeep-16.mat, or %s, in --model_dir)" % released_fcns.VGG16_CAFFE_FILE)
flags.DEFINE_enum("geometry", "same", spec.GEOMETRIES, "same: SAME convolutions, images padded to a multiple of 32; "
                  "caffe: the reference's exact Caffe geometry (conv1_1 pad 100, fc6 valid, unpadded upsampling, "
                  "crops), any image size as it is; paper heads only")
flags.DEFINE_enum("recipe", "none", ("none", "paper"), "paper: the reference's solver for the flags not given (SGD "
                  "momentum 0.99, learning rate 1e-10/1e-12/1e-14 for 32s/16s/8s, weight decay 5e-4, --loss=sum, "
                  "batch 1 at native size, fixed upsampling)")
flags.DEFINE_enum("loss", "mean", ("mean", "sum"), "the pixels' cross-entropies averaged (the original's) or summed "
                  "(the reference's Caffe loss, normalize: false)")
flags.DEFINE_bool("learn_upsampling", True, "paper heads: upscore2 and upscore_pool4 start bilinear and learn; "
                  "false keeps them bilinear (as the reference Caffe code)")
flags.DEFINE_enum("optimizer", "adam", ("adam", "momentum"), "adam (as the original) or SGD with --momentum")
flags.DEFINE_float("momentum", 0.9, "momentum of --optimizer=momentum, in [0, 1)")
flags.DEFINE_float("weight_decay", 0.0, "L2 penalty on every trainable convolution kernel (not the biases)",
                   lower_bound=0)
flags.DEFINE_bool("augment", False, "train: random mirror, scale (--scale_range) and crop to --image_size of each "
                  "training pair (evaluate, predict and visualize never augment)")
flags.DEFINE_list("scale_range", ["0.5", "2.0"], "--augment: smallest and largest random scale")
flags.DEFINE_integer("seed", None, "train: seed of the initial weights, dropout, epoch order and augmentation",
                     lower_bound=0)
flags.DEFINE_integer("val_images", 100, "train: pixel accuracy and mean IoU over the first N validation images at "
                     "each validation point (all of them if fewer; 0: none)", lower_bound=0)
flags.DEFINE_integer("reader_threads", None, "threads that read and resize the training and validation pairs ahead "
                     "of the steps (the batches are the same whatever their number). Default: the usable CPU cores "
                     "(%d here)" % reader.usable_cores(), lower_bound=1)
# ---------------------------------------------------------------- flags: importing the paper's released Caffe FCNs
flags.DEFINE_string("caffemodel", "", "import: a released FCN's .caffemodel file, or its name (%s), taken from "
                    "--model_dir or downloaded" % ", ".join(released_fcns.KNOWN))
flags.DEFINE_string("caffemodel_url", "", "import: where to download --caffemodel=<name> from if --model_dir lacks "
                    "it. Default: %s<file>" % released_fcns.URL_ROOT)
flags.DEFINE_enum("caffe_output", "semantic", ("semantic", "geometric"), "import of a SIFT Flow model: its semantic "
                  "head (33 classes) or its geometric one (3)")
flags.register_validator("momentum", lambda value: 0 <= value < 1, "--momentum must be in [0, 1)")
flags.register_validator("scale_range", lambda value: augment.scale_range(value) is not None,
                         "--scale_range must be two numbers 0 < smallest <= largest, e.g. 0.5,2.0")

# ---------------------------------------------------------------- flags: the dataset, its classes and ignore label
flags.DEFINE_enum("dataset", "ade20k", list(datasets.NAMES),
                  "ade20k: MIT Scene Parsing; voc: PASCAL VOC 2012 (data_dir holds VOCdevkit/), with --sbd_dir the "
                  "train_aug set; folder: images/ and annotations/ as ADE20K's, or --train_list/--val_list, classes in "
                  "classes.txt or classes.csv; pascal_context (60 classes), siftflow (33), siftflow_geometric (3), "
                  "nyud (40): the paper's, as folder, index PNGs in the reference's class order, 255 ignored; "
                  "arrays: {train,validation}_{images,labels}.npy")
flags.DEFINE_integer("num_classes", None, "number of classes. Default: the dataset's (ADE20K 151, VOC 21, ..., "
                     "folder: the lines of classes.txt, arrays: the one-hot depth or the largest label + 1)",
                     lower_bound=2, upper_bound=256)
flags.DEFINE_integer("ignore_label", None, "pixels with this label count in neither the loss nor the scores. "
                     "Default: 255 for VOC and the paper's datasets, others none", lower_bound=0, upper_bound=255)
flags.DEFINE_string("sbd_dir", "", "voc: the SBD release (benchmark_RELEASE/dataset/): train on SBD train+val and VOC "
                    "train minus the validation images (10,582 images with VOC val)")
flags.DEFINE_string("train_list", "", "folder and the paper's datasets: a text file of `image_path annotation_path` "
                    "lines (relative to --data_dir) listing the training pairs")
flags.DEFINE_string("val_list", "", "the same for the validation pairs; voc: a file of image ids (as ImageSets/"
                    "Segmentation/val.txt), or seg11valid: the reference's 736 VOC2011 ids (shipped)")


# ---------------------------------------------------------------- flags: raw label values, class weights
class WholeNumbersParser(flags.ListParser):
    """A comma-separated list of whole numbers (--label_values)."""

    def parse(self, argument):
        try:
            return [int(value) for value in super(WholeNumbersParser, self).parse(argument)]
        except ValueError:
            raise ValueError("expected whole numbers separated by commas, e.g. 0,255")

    def flag_type(self):
        return "list of whole numbers"


flags.DEFINE(WholeNumbersParser(), "label_values", None,
             "the annotations' raw label values in class order: value k of the list becomes class k (0/255 masks: "
             "0,255); any other value but --ignore_label makes its pair bad. Recorded in model.json. Default: the "
             "values are the class indices", serializer=flags.CsvListSerializer(","))
flags.DEFINE_string("class_weights", "",
                    "train: weight each pixel's loss by its class: median_frequency (Eigen & Fergus: the median class "
                    "frequency / the class's frequency, over the training labels, ignore label excluded; a class "
                    "without a pixel weighs 0) or a file of one weight a line. Recorded in model.json; a resumed run "
                    "keeps them. Default: unweighted")
flags.register_validator("label_values", lambda values: values is None or (
    len(values) >= 2 and len(set(values)) == len(values) and min(values) >= 0),
    "--label_values must be two or more different whole numbers >= 0, e.g. 0,255")
flags.register_validator("class_weights", lambda value: value in ("", class_weights.MEDIAN_FREQUENCY)
                         or os.path.isfile(value), "--class_weights must be median_frequency or a file of one weight "
                         "a line")
flags.register_multi_flags_validator(
    ["label_values", "num_classes"], lambda values: not values["label_values"] or values["num_classes"] in (
        None, len(values["label_values"])), "--num_classes must be the number of --label_values, or left out")
flags.register_multi_flags_validator(
    ["label_values", "ignore_label"], lambda values: values["ignore_label"] not in (values["label_values"] or [])
    or values["label_values"].index(values["ignore_label"]) == values["ignore_label"],
    "--ignore_label is one of --label_values, so it would be read as another class: list only the classes' values")

FLAG_NAMES = tuple(name for name in FLAGS if name not in ABSL_FLAGS)  # ours: what a Settings holds


def __getattr__(name):
    """FCN.inference, FCN.vgg_net and FCN.train, the original's names, from the network module: TensorFlow loads at
    their first use, so `import FCN` and a wrong flag are answered without it."""
    if name in NETWORK_NAMES:
        from fcn_tensorflow.net import network
        return getattr(network, name)
    raise AttributeError("module 'FCN' has no attribute %r" % name)


class UsageError(Exception):
    """A command line that cannot work; the message says why."""


def settings_from(flag_values, given):
    """(the run's Settings, logs_dir's model record or None) from parsed flags: those not `given` on the command
    line take what logs_dir/model.json records, then the defaults that depend on other flags."""
    values = {name: flag_values[name].value for name in FLAG_NAMES}
    if os.path.exists(values["logs_dir"]) and not os.path.isdir(values["logs_dir"]):
        raise UsageError("--logs_dir=%s is a file: it should be a folder (new, or holding the checkpoints)"
                         % values["logs_dir"])
    record = model_record.read(values["logs_dir"])
    if record:
        values = model_record.apply(values, given, record)
    elif values["init_checkpoint"] and checkpoints.resolve_checkpoint(values["init_checkpoint"]):
        start = model_record.read(os.path.dirname(checkpoints.resolve_checkpoint(values["init_checkpoint"])))
        values = model_record.apply_start(values, given, start or {})
    if values["recipe"] == "paper":  # the reference's solver, for the flags not given nor recorded
        recipe = spec.paper_recipe(values["head"], values["dataset"])
        values.update((name, value) for name, value in recipe.items()
                      if name not in given and name not in (record or ()))
    if "model_url" not in given:
        values["model_url"] = matconvnet.MODEL_URLS[values["backbone"]]
    if values["transpose_vgg_kernels"] is None:  # the original's checkpoints need it; the file's order is H, W, in, out
        values["transpose_vgg_kernels"] = values["head"] == "original"
    values["reader_threads"] = values["reader_threads"] or reader.usable_cores()
    values["output_dir"] = values["output_dir"] or os.path.join(values["logs_dir"], "predictions")
    values["export_dir"] = values["export_dir"] or os.path.join(values["logs_dir"], "saved_model")
    if values["tile_overlap"] is None:
        values["tile_overlap"] = values["tile_size"] // 4
    return Settings(**values), record


def open_dataset(settings):
    """The run's datasets.Dataset, built once and handed to the mode with the settings."""
    return datasets.open_dataset(settings.dataset, settings.data_dir, settings.data_url, settings.download_timeout,
                                 settings.sbd_dir, settings.train_list, settings.val_list, settings.ignore_label)


def check_settings(settings, dataset, found_checkpoints):
    """Refuse, before TensorFlow is loaded, what cannot work with these settings."""
    dataset.check_paths(reads_data=settings.mode in DATA_MODES)
    check_network(settings)
    if settings.mode == "import" and settings.caffemodel not in released_fcns.KNOWN and not os.path.isfile(
            settings.caffemodel):
        raise UsageError("--mode=import needs --caffemodel=<a .caffemodel file, or one of %s>%s" % (", ".join(
            released_fcns.KNOWN), ": %s is neither" % settings.caffemodel if settings.caffemodel else ""))
    if settings.init_checkpoint and not checkpoints.resolve_checkpoint(settings.init_checkpoint):
        raise UsageError("--init_checkpoint=%s is neither a checkpoint (its .index file) nor a folder holding one"
                         % settings.init_checkpoint)
    if settings.mode == "predict" and not settings.input:
        raise UsageError("--mode=predict needs --input=<image file or folder>")
    if settings.mode == "predict" and not os.path.exists(settings.input):
        raise UsageError("--input=%s does not exist" % settings.input)
    if settings.mode == "predict" and os.path.exists(settings.output_dir) and not os.path.isdir(settings.output_dir):
        raise UsageError("--output_dir=%s is a file: it should be a folder (new or not) for the predicted pictures"
                         % settings.output_dir)
    if (settings.mode == "predict" and os.path.isdir(settings.input) and os.path.isdir(settings.output_dir)
            and os.path.samefile(settings.input, settings.output_dir)):
        raise UsageError("--output_dir is the --input folder: the label maps would overwrite PNG inputs")
    if settings.mode == "predict" and video.is_video(settings.input):
        check_video(settings.input, settings.output_dir)
    if settings.mode == "export" and os.path.exists(settings.export_dir):
        raise UsageError("%s exists: --mode=export writes a new folder (pass --export_dir)" % settings.export_dir)
    if settings.mode == "export":
        check_export_formats(settings)
    if settings.tile_size and settings.tile_overlap >= settings.tile_size:
        raise UsageError("--tile_overlap=%d must be less than --tile_size=%d"
                         % (settings.tile_overlap, settings.tile_size))
    if tta.options(settings.tta, settings.scales, settings.tile_size, 0):
        if settings.mode == "export":
            raise UsageError("--mode=export writes the plain network: --tta, --scales and --tile_size are for "
                             "evaluate and predict")
        if settings.mode in ("train", "visualize") or settings.predictions_dir:
            raise UsageError("--tta, --scales and --tile_size are for evaluate and predict of the network, not for %s"
                             % ("--predictions_dir" if settings.predictions_dir else "--mode=" + settings.mode))
    if settings.mode == "import" and found_checkpoints:
        raise UsageError("%s holds checkpoints already: import into a new --logs_dir" % settings.logs_dir)
    if settings.mode in ("predict", "export") and not found_checkpoints:
        raise UsageError("no checkpoint in %s to %s: train first, or pass --logs_dir"
                         % (settings.logs_dir, settings.mode))


def check_network(settings):
    """Refuse a network the flags cannot build or train."""
    if settings.head == "original" and (settings.geometry == "caffe" or settings.recipe == "paper"):
        raise UsageError("--%s is for the paper's heads: pass --head=fcn32s, fcn16s, fcn8s or fcn8s_atonce"
                         % ("geometry=caffe" if settings.geometry == "caffe" else "recipe=paper"))
    if settings.image_size == 0 and (settings.augment or (settings.replicas or 1) > 1 or settings.mode in (
            "train", "visualize") and settings.batch_size != 1):
        raise UsageError("--image_size=0%s feeds each image at its own size, one a batch: %s" % (
            " (--recipe=paper's)" if settings.recipe == "paper" else "", "leave out --augment (it crops to "
            "--image_size)" if settings.augment else "pass --replicas=1" if (settings.replicas or 1) > 1 else
            "pass --batch_size=1"))


def check_export_formats(settings):
    """Refuse an unknown format, a converted format of a bfloat16 model, and a missing --calibration_dir."""
    try:
        chosen = formats.parse(settings.export_formats)
    except ValueError as error:
        raise UsageError(str(error)) from None
    if settings.mixed_precision and len(chosen) > 1:
        raise UsageError("--export_formats=%s: TFLite and ONNX are exported from a float32 model; a bfloat16 one "
                         "(--mixed_precision) exports only saved_model" % ",".join(settings.export_formats))
    if settings.calibration_dir and not os.path.isdir(settings.calibration_dir):
        raise UsageError("--calibration_dir=%s is not a folder" % settings.calibration_dir)
    missing = formats.missing_packages(chosen)
    if missing:
        raise UsageError("--export_formats=%s needs %s, not installed here: pip install -r requirements-export.txt"
                         % (",".join(settings.export_formats), ", ".join(missing)))


def check_video(input_path, output_dir):
    """Refuse a video input without the package that reads it, or whose overlay video would overwrite it."""
    missing = video.missing_support()
    if missing:
        raise UsageError("--input=%s is a video: %s" % (input_path, missing))
    overlay_video = video.output_paths(input_path, output_dir)[0]
    if os.path.exists(overlay_video) and os.path.samefile(input_path, overlay_video):
        raise UsageError("--output_dir holds --input=%s: the overlay video %s would overwrite it"
                         % (input_path, overlay_video))


def parse_flags(argv):
    """absl's parsing, with a bad flag answered in one line instead of the whole help."""
    try:
        return FLAGS(argv)
    except flags.Error as error:
        sys.exit("FCN.py: error: %s" % error)


def main(argv):
    """Check the flags and what they name, then load TensorFlow and run the mode. Returns the exit status."""
    del argv
    try:
        given = {name for name in FLAG_NAMES if FLAGS[name].present}
        settings, record = settings_from(FLAGS, given)
        dataset = open_dataset(settings)
        if record:
            model_record.check(record, settings, given, dataset)
        found_checkpoints = checkpoints.list_checkpoints(settings.logs_dir)
        check_settings(settings, dataset, found_checkpoints)
    except (UsageError, ValueError, datasets.DataError) as error:
        sys.exit("FCN.py: error: %s" % error)
    console.import_tensorflow_quietly()
    from fcn_tensorflow.run import modes  # loads TensorFlow, which waits until the flags are known to be good
    try:
        return modes.run(settings, dataset, found_checkpoints)
    except modes.ERRORS as error:
        sys.exit("FCN.py: error: %s" % error)


if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags)
