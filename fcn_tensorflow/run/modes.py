"""The modes of FCN.py: train, visualize, evaluate, predict, export, each a
`run_<mode>(settings, dataset, found_checkpoints)` that reads the run's Settings (settings.py) and its datasets.Dataset,
builds the graph (net/graphs.py), restores, and calls the mode's body (training.py, predictions.py) with plain values;
`run` runs the one settings.mode names. Then the steps the modes share.
"""
import os
import random

import numpy as np
import tensorflow as tf

from fcn_tensorflow.data import augment
from fcn_tensorflow.data import class_weights
from fcn_tensorflow.data import datasets
from fcn_tensorflow.data import reader
from fcn_tensorflow.data import scene_parsing
from fcn_tensorflow.net import graphs
from fcn_tensorflow.net.spec import CLASS_SCORE_BIAS, Net, Training
from fcn_tensorflow.run import caffe_import
from fcn_tensorflow.run import checkpoints
from fcn_tensorflow.run import distribute
from fcn_tensorflow.run import export
from fcn_tensorflow.run import formats
from fcn_tensorflow.run import model_record
from fcn_tensorflow.run import predictions
from fcn_tensorflow.run import pretrained
from fcn_tensorflow.run import session
from fcn_tensorflow.run import training
from fcn_tensorflow.run import tta
from fcn_tensorflow.run import video
from fcn_tensorflow.run.precision import BFLOAT16, FLOAT32, mixed_precision_type

PREDICT_SKIPPED_STATUS = 2  # exit status of predict when some inputs could not be read
VALIDATION_READER_THREADS = 2  # the validation readers read a little at each validation point: they need no more


def run(settings, dataset, found_checkpoints):
    """Run the mode settings.mode names, in a graph of its own; returns its exit status."""
    tf.compat.v1.disable_eager_execution()
    with tf.Graph().as_default():
        return MODES[settings.mode](settings, dataset, found_checkpoints)


# ---------------------------------------------------------------- train

def run_train(settings, dataset, found_checkpoints):
    """List the data, take the logs_dir lock, build the training graph, restore, train; on the devices and machines
    --replicas and TF_CONFIG name (distribute.py), where only the chief takes the lock and writes."""
    cluster = distribute.make_cluster(settings.replicas, settings.worker_timeout, os.environ.get("TF_CONFIG"))
    with cluster.training_lock(settings.logs_dir):
        if settings.seed is not None:
            random.seed(settings.seed)  # the order of a listing made now
            np.random.seed(settings.seed)  # the epoch order
            tf.compat.v1.set_random_seed(settings.seed)  # the initial weights and dropout
        train_records, valid_records = list_data(dataset)
        classes = model_classes(settings, dataset, found_checkpoints)
        options = reader_options(settings, dataset, classes)
        validation_options = dict(options, threads=min(options["threads"], VALIDATION_READER_THREADS))
        weighting = loss_weights(settings, classes, train_records, options)
        precision = compute_precision(settings)
        model, saver, mean_pixel = training_graph(settings, classes, precision, cluster,
                                                  weights_by_class=weighting.get("class_weights"),
                                                  found_checkpoints=found_checkpoints)
        with cluster.session(settings.xla, precision) as sess, cluster.lost_workers_explained(), \
                reader.BatchDatset(cluster.shard(train_records), training_reader_options(
                    settings, dataset, options, mean_pixel, classes)) as train_reader, \
                reader.BatchDatset(valid_records, validation_options) as validation_reader, \
                reader.BatchDatset(valid_records[:settings.val_images], validation_options) as curve_reader:
            record = dict(model_record.of_model(settings, mean_pixel, classes), **weighting)
            cluster.start(sess, lambda: start_training(sess, model, saver, found_checkpoints, settings, record))
            curves = training.Curves(curve_reader, classes.num_classes, dataset.unscored_class(classes))
            training.train_mode(sess, model, saver, train_reader, validation_reader, settings.logs_dir,
                                settings.batch_size, settings.max_iteration, settings.keep_prob, settings.log_every,
                                settings.save_every, curves, cluster)


def start_training(sess, model, saver, found_checkpoints, settings, record):
    """Restore logs_dir's newest checkpoint, or start from the VGG weights and --init_checkpoint; write model.json
    with `record` when logs_dir has none."""
    checkpoints.remove_partial_saves(settings.logs_dir)
    init_checkpoint = checkpoints.resolve_checkpoint(settings.init_checkpoint or "")
    try:
        restore(sess, model.pretrained, saver, found_checkpoints, settings.logs_dir,
                fresh="starting from the VGG weights" + (", then %s" % init_checkpoint if init_checkpoint else ""),
                init_checkpoint=init_checkpoint)
    except session.UnreadableCheckpoints as error:
        if not found_checkpoints:
            raise
        raise session.UnreadableCheckpoints("%s. Training would start afresh and overwrite them: move them "
                                            "out of %s to start afresh" % (error, settings.logs_dir))
    model_record.record_training(settings.logs_dir, record)


# ---------------------------------------------------------------- visualize

def run_visualize(settings, dataset, found_checkpoints):
    _, valid_records = list_data(dataset, required_splits=("validation",))
    classes = model_classes(settings, dataset, found_checkpoints)
    precision = compute_precision(settings)
    vgg = pretrained.vgg_unless_restored(settings, found_checkpoints)
    model, _, _ = training_graph(settings, classes, precision, vgg=vgg)
    with session.make_session(settings.xla, precision) as sess, \
            reader.BatchDatset(valid_records, reader_options(settings, dataset, classes)) as validation_reader:
        restore(sess, model.pretrained, tf.compat.v1.train.Saver(), found_checkpoints, settings.logs_dir)
        training.visualize_mode(sess, model, validation_reader, settings.logs_dir, settings.batch_size,
                                *datasets.for_pictures(classes))


# ---------------------------------------------------------------- evaluate

def run_evaluate(settings, dataset, found_checkpoints):
    records = list_data(dataset, required_splits=("validation",))[1]
    classes = model_classes(settings, dataset, found_checkpoints)
    options = reader_options(settings, dataset, classes)
    unscored = dataset.unscored_class(classes)
    if settings.predictions_dir:
        saved = predictions.saved_predictions(settings.predictions_dir, records, classes.num_classes,
                                              options["label_colors"], classes.ignore_label, options["label_values"])
        predictions.evaluate_mode(saved, len(records), settings.logs_dir, None, classes.class_names, unscored)
        return
    sess, predictor, checkpoint = inference_session(settings, found_checkpoints, classes)
    with sess:
        labelled = predictions.network_predictions(sess, predictor, records, options,
                                                   native_size=predictor.infer_size == 0,
                                                   exact_sizes=settings.geometry == "caffe",
                                                   labels_of=labeller(settings, sess, predictor))
        predictions.evaluate_mode(labelled, len(records), settings.logs_dir, checkpoint, classes.class_names,
                                  unscored)


# ---------------------------------------------------------------- predict

def run_predict(settings, dataset, found_checkpoints):
    classes = model_classes(settings, dataset, found_checkpoints)
    sess, predictor, _ = inference_session(settings, found_checkpoints, classes)
    class_names, palette = datasets.for_pictures(classes)
    with sess:
        labels_of = labeller(settings, sess, predictor)
        if video.is_video(settings.input):
            skipped = video.predict_video(settings.input, settings.output_dir,
                                          frames_labeller(sess, predictor, labels_of), palette,
                                          predictions.BATCH_PIXELS)
        else:
            skipped = predictions.predict_mode(sess, predictor, settings.input, settings.output_dir, palette,
                                               class_names, labels_of)
    return PREDICT_SKIPPED_STATUS if skipped else 0


def frames_labeller(sess, predictor, labels_of=None):
    """labels_of_batch(frames) for video.py: the frames in one run of the predictor, or each through labels_of
    (tiles, test-time augmentation) when given."""
    if labels_of:
        return lambda frames: [labels_of(frame) for frame in frames]
    return lambda frames: predictions.predict_batch(sess, predictor, frames)


# ---------------------------------------------------------------- export

def run_export(settings, dataset, found_checkpoints):
    """Write the --export_formats of the newest checkpoint (export.py), with plain convolutions whatever
    --convs_as_matmul says: converters know no ExtractImagePatches."""
    chosen = formats.parse(settings.export_formats)
    classes = model_classes(settings, dataset, found_checkpoints)
    images = export_images(settings, dataset, chosen) if len(chosen) > 1 else []
    if set(formats.CALIBRATED) & set(chosen) and not images:
        raise ValueError("tflite_int8 needs images to calibrate on: pass --calibration_dir, or a --data_dir with "
                         "validation images")
    sess, predictor, _ = inference_session(settings, found_checkpoints, classes)
    with sess:
        export.export_mode(sess, predictor, settings.export_dir, chosen, classes.class_names,
                           model_record.read(settings.logs_dir), images)


def export_images(settings, dataset, chosen):
    """The images that calibrate the int8 file (up to --calibration_images) and check the converted files (the
    first export.CHECK_IMAGES): those of --calibration_dir, else the validation images of an existing --data_dir
    (export downloads no dataset), else none."""
    count = settings.calibration_images if set(formats.CALIBRATED) & set(chosen) else export.CHECK_IMAGES
    if settings.calibration_dir:
        records = [{"image": path} for path in predictions.image_files(settings.calibration_dir)]
    elif os.path.isdir(settings.data_dir):
        try:
            records = dataset.list_pairs(("validation",))[1]
        except (OSError, ValueError, reader.DataError):
            return []
    else:
        return []
    images = []
    for record in records:
        if len(images) == count:
            break
        try:  # each image at the size the checks and the calibration see it, not the file's (aerial images...)
            images.append(export.resized(reader.read_record_image(record), export.CHECK_SIZES[0]))
        except Exception as error:  # PIL reports broken files with many exception types
            print("Skipping %s: it cannot be read as an image (%s)" % (record["image"], error))
    return images


# ---------------------------------------------------------------- import

def run_import(settings, dataset, found_checkpoints):
    """Write the released Caffe FCN --caffemodel names into logs_dir (caffe_import.py); its classes are those of
    its class count's dataset, or of --dataset (no released model is ADE20K's, the flag's default)."""
    path = caffe_import.caffemodel_path(settings.caffemodel, settings.model_dir, settings.caffemodel_url,
                                        settings.download_timeout)
    caffe_import.import_mode(path, settings.logs_dir, settings.caffe_output,
                             None if settings.dataset == "ade20k" else settings.dataset, settings.image_size)


MODES = {"train": run_train, "visualize": run_visualize, "evaluate": run_evaluate, "predict": run_predict,
         "export": run_export, "import": run_import}
ERRORS = (OSError, ValueError, reader.DataError, reader.BadPairError, FloatingPointError, checkpoints.LockedError)


# ---------------------------------------------------------------- steps the modes share

def list_data(dataset, required_splits=scene_parsing.SPLITS):
    """(training records, validation records); the listing comes first, so a problem with the data shows before
    the VGG file is read."""
    print("Setting up image reader...")
    train_records, valid_records = dataset.list_pairs(required_splits)
    print("%d training and %d validation image/annotation pairs" % (len(train_records), len(valid_records)))
    return train_records, valid_records


def model_classes(settings, dataset, found_checkpoints):
    """The model's datasets.Classes: those logs_dir/model.json records, else the dataset's (with --num_classes);
    ValueError when the newest checkpoint scores another number of classes."""
    record = model_record.read(settings.logs_dir) or {}
    num_classes = settings.num_classes or (len(settings.label_values) if settings.label_values else None)
    classes = model_record.classes(record, dataset.ignore_label) or dataset.describe(num_classes)
    saved_shape = session.checkpoint_variable_shape(found_checkpoints, CLASS_SCORE_BIAS[settings.head])
    if saved_shape and saved_shape[-1] != classes.num_classes:
        raise ValueError("%s is a model of %d classes, but this run builds %d (from model.json, --num_classes or the "
                         "dataset): pass --num_classes=%d and the --dataset it was trained on, or another --logs_dir"
                         % (found_checkpoints[-1], saved_shape[-1], classes.num_classes, saved_shape[-1]))
    return classes


def reader_options(settings, dataset, classes):
    """BatchDatset's options; only the training reader says when an epoch ends (training_reader_options)."""
    label_colors = dataset.label_colors()
    if settings.label_values and label_colors is not None:
        raise ValueError("--label_values maps the values of index masks, but %s maps colours to classes: drop the "
                         "flag" % datasets.CLASS_COLORS_FILE)
    return {"resize": True, "resize_size": settings.image_size, "num_classes": classes.num_classes,
            "ignore_label": classes.ignore_label, "label_colors": label_colors,
            "label_values": tuple(settings.label_values) if settings.label_values else None,
            "threads": settings.reader_threads, "report_epochs": False}


def training_reader_options(settings, dataset, options, mean_pixel, classes):
    """The reader_options `options` with a line at the end of each epoch; the class names when the classes are the
    user's (a warning names those the first epoch has no pixel of: ADE20K's and VOC's are fixed lists, a subset of
    them is no mistake); and with --augment the random mirror, scale and crop: the training split only."""
    options = dict(options, report_epochs=True)
    if dataset.has_own_classes or settings.num_classes or settings.label_values:
        options["class_names"] = list(classes.class_names)
    if not settings.augment:
        return options
    return dict(options, augment=augment.Augmentation(settings.image_size, augment.scale_range(settings.scale_range),
                                                      mean_pixel, settings.seed))


def loss_weights(settings, classes, train_records, options):
    """{"class_weights": a weight per class, "class_weights_from": their source} for the loss and model.json, or {}
    (the unweighted loss). --class_weights=median_frequency counts the training labels once: a resumed run takes the
    weights model.json recorded, as it does without the flag; a file is read each time. One line shows them."""
    recorded = model_record.read(settings.logs_dir) or {}
    source = settings.class_weights or recorded.get("class_weights_from")
    if not source:
        return {}
    weights = model_record.recorded_class_weights(recorded, source, bool(settings.class_weights))
    if weights is not None:
        where = "%s, recorded in %s" % (source, os.path.join(settings.logs_dir, model_record.MODEL_RECORD))
    elif source == class_weights.MEDIAN_FREQUENCY:
        counts = class_weights.pixel_counts(train_records, classes.num_classes, classes.ignore_label,
                                            options["label_colors"], options["label_values"])
        weights = class_weights.median_frequency(counts).tolist()
        where = "median frequency over %d training pairs" % counts.pairs
    else:
        weights, where = class_weights.read_weights_file(source, classes.num_classes), source
    print(class_weights.describe(weights, classes.class_names, where))
    return dict(zip(model_record.CLASS_WEIGHT_KEYS, (weights, source)))


def network(settings, classes):
    """The spec.Net the settings and the model's classes describe."""
    return Net(classes.num_classes, settings.fc_width, settings.head, settings.learn_upsampling,
               settings.convs_as_matmul and settings.mode != "export", settings.debug, settings.backbone,
               settings.geometry)


def training_graph(settings, classes, precision=FLOAT32, cluster=distribute.OneDevice(), vgg=None,
                   weights_by_class=None, found_checkpoints=()):
    """The training graph of graphs.build_model (or its replicated twin, distribute.py) from `vgg`, the (weights,
    mean pixel) of the VGG file by default (without it, those of the checkpoint it resumes or starts from), its loss
    weighted by weights_by_class when given; a Saver keeping 5 checkpoints; the mean pixel."""
    weights, mean_pixel = vgg or pretrained.vgg_unless_restored(
        settings, found_checkpoints or pretrained.start_checkpoint(settings), with_fc=True)
    description = cluster.describe(settings.batch_size)
    if description:
        print(description)
    how = Training(settings.learning_rate, settings.optimizer, settings.momentum, settings.weight_decay,
                   classes.ignore_label, precision,
                   tuple(weights_by_class) if weights_by_class else None, settings.loss == "sum")
    model = cluster.build_model(weights, mean_pixel, network(settings, classes), how,
                                datasets.for_pictures(classes)[1])
    return model, tf.compat.v1.train.Saver(max_to_keep=5), mean_pixel


def inference_session(settings, found_checkpoints, classes):
    """(session, graphs.build_predictor's predictor, the checkpoint restored or None) for evaluate, predict, export.
    Without a checkpoint, evaluate scores the network --init_checkpoint would start training from."""
    weights, mean_pixel = pretrained.vgg_unless_restored(settings, found_checkpoints
                                                         or pretrained.start_checkpoint(settings))
    infer_size = settings.infer_size
    if infer_size is None:  # the caffe geometry runs on each image as it is, as the reference's infer.py
        infer_size = 0 if settings.geometry == "caffe" else settings.image_size
    precision = compute_precision(settings)
    predictor = graphs.build_predictor(weights, mean_pixel, infer_size, network(settings, classes), precision,
                                       sized=augmentation_options(settings) is not None)
    # a bfloat16 graph is bfloat16 itself, variables included: nothing for the session to rewrite
    sess = session.make_session(precision=FLOAT32 if precision == BFLOAT16 else precision)
    init_checkpoint = checkpoints.resolve_checkpoint(settings.init_checkpoint or "")
    try:
        checkpoint = restore(sess, predictor.pretrained, tf.compat.v1.train.Saver(), found_checkpoints,
                             settings.logs_dir, fresh="evaluating the network training would start from (the "
                             "matching variables of --init_checkpoint)" if init_checkpoint else
                             "evaluating the untrained network (VGG weights and a random head)",
                             init_checkpoint=init_checkpoint)
    except BaseException:
        sess.close()
        raise
    return sess, predictor, checkpoint


def restore(sess, pretrained, saver, found_checkpoints, logs_dir, fresh="starting from the VGG weights",
            init_checkpoint=None):
    """session.restore_or_initialize, saying what happens when there is no checkpoint, or when logs_dir's own
    checkpoint wins over init_checkpoint."""
    if found_checkpoints and init_checkpoint:
        print("Using the checkpoints in %s: --init_checkpoint=%s is not used" % (logs_dir, init_checkpoint))
    if not found_checkpoints:
        print("No checkpoint in %s: %s" % (logs_dir, fresh))
    return session.restore_or_initialize(sess, pretrained, saver, found_checkpoints, init_checkpoint)


def compute_precision(settings):
    """The precision the run computes in ("float32", "float16", "bfloat16"): float32, or with --mixed_precision
    what this machine computes fast (precision.mixed_precision_type; a line says when that is float32). Export
    writes a bfloat16 SavedModel wherever it runs."""
    if not settings.mixed_precision or settings.mode == "export":
        return BFLOAT16 if settings.mixed_precision else FLOAT32
    chosen, note = mixed_precision_type(bool(tf.config.list_physical_devices("GPU")))
    if note:
        print(note)
    return chosen


def augmentation_options(settings):
    """tta.Options of --tta, --scales and --tile_size, or None for the plain network."""
    return tta.options(settings.tta, settings.scales, settings.tile_size, settings.tile_overlap)


def labeller(settings, sess, predictor):
    """labels_of(image) with test-time augmentation or tiles, or None for the plain network."""
    chosen = augmentation_options(settings)
    return tta.labeller(sess, predictor, chosen) if chosen else None
