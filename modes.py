"""The modes of FCN.py: train, visualize, evaluate, predict, export, each a `run_<mode>(flags, found_checkpoints)`
that reads the flags, lists the data, builds the graph (graphs.py), restores, and calls the mode's body (training.py,
predictions.py); MODES maps the mode's name to it. Then the steps the modes share.
"""
import os
import random

import numpy as np
import tensorflow as tf

import augment
import BatchDatsetReader as dataset
import checkpoints
import datasets
import distribute
import downloads
import FCN
import graphs
import matconvnet
import predictions
import read_MITSceneParsingData as scene_parsing
import session
import training
from precision import BFLOAT16, FLOAT16, FLOAT32, mixed_precision_type

PREDICT_SKIPPED_STATUS = 2  # exit status of predict when some inputs could not be read


# ---------------------------------------------------------------- train

def run_train(flags, found_checkpoints):
    """List the data, take the logs_dir lock, build the training graph, restore, train; on the devices and machines
    --replicas and TF_CONFIG name (distribute.py), where only the chief takes the lock and writes."""
    cluster = distribute.make_cluster(flags.replicas, flags.worker_timeout, os.environ.get("TF_CONFIG"))
    with cluster.training_lock(flags.logs_dir):
        if flags.seed is not None:
            random.seed(flags.seed)  # the order of a listing made now
            np.random.seed(flags.seed)  # the epoch order
            tf.compat.v1.set_random_seed(flags.seed)  # the initial weights and dropout
        train_records, valid_records = list_data(flags)
        classes = model_classes(flags, found_checkpoints)
        precision = compute_precision(flags)
        model, saver, mean_pixel = training_graph(flags, classes, precision, cluster)
        options = reader_options(flags, classes)
        with cluster.session(flags.xla, precision) as sess, cluster.lost_workers_explained(), \
                dataset.BatchDatset(cluster.shard(train_records),
                                    training_reader_options(flags, options, mean_pixel)) as train_reader, \
                dataset.BatchDatset(valid_records, options) as validation_reader, \
                dataset.BatchDatset(valid_records[:flags.val_images], options) as curve_reader:
            cluster.start(sess, lambda: start_training(sess, model, saver, found_checkpoints, flags,
                                                       model_record(flags, mean_pixel, classes)))
            curves = training.Curves(curve_reader, classes.num_classes, datasets.unscored_class(flags.dataset, classes))
            training.train_mode(sess, model, saver, train_reader, validation_reader, flags.logs_dir, flags.batch_size,
                                flags.max_iteration, flags.keep_prob, flags.log_every, flags.save_every, curves, cluster)


def start_training(sess, model, saver, found_checkpoints, flags, record):
    """Restore logs_dir's newest checkpoint, or start from the VGG weights and --init_checkpoint; write model.json
    with `record` when logs_dir has none."""
    checkpoints.remove_partial_saves(flags.logs_dir)
    init_checkpoint = checkpoints.resolve_checkpoint(flags.init_checkpoint or "")
    try:
        restore(sess, model.pretrained, saver, found_checkpoints, flags.logs_dir,
                fresh="starting from the VGG weights" + (", then %s" % init_checkpoint if init_checkpoint else ""),
                init_checkpoint=init_checkpoint)
    except session.UnreadableCheckpoints as error:
        if not found_checkpoints:
            raise
        raise session.UnreadableCheckpoints("%s. Training would start afresh and overwrite them: move them "
                                            "out of %s to start afresh" % (error, flags.logs_dir))
    if checkpoints.read_model_record(flags.logs_dir) is None:
        checkpoints.write_model_record(flags.logs_dir, record)


# ---------------------------------------------------------------- visualize

def run_visualize(flags, found_checkpoints):
    _, valid_records = list_data(flags, required_splits=("validation",))
    classes = model_classes(flags, found_checkpoints)
    precision = compute_precision(flags)
    model, _, _ = training_graph(flags, classes, precision, vgg=vgg_unless_restored(flags, found_checkpoints))
    os.makedirs(flags.logs_dir, exist_ok=True)
    with session.make_session(flags.xla, precision) as sess, \
            dataset.BatchDatset(valid_records, reader_options(flags, classes)) as validation_reader:
        restore(sess, model.pretrained, tf.compat.v1.train.Saver(), found_checkpoints, flags.logs_dir)
        training.visualize_mode(sess, model, validation_reader, flags.logs_dir, flags.batch_size,
                                *datasets.for_pictures(classes))


# ---------------------------------------------------------------- evaluate

def run_evaluate(flags, found_checkpoints):
    records = list_data(flags, required_splits=("validation",))[1]
    classes = model_classes(flags, found_checkpoints)
    options = reader_options(flags, classes)
    unscored = datasets.unscored_class(flags.dataset, classes)
    if flags.predictions_dir:
        saved = predictions.saved_predictions(flags.predictions_dir, records, classes.num_classes,
                                              options["label_colors"], classes.ignore_label)
        predictions.evaluate_mode(saved, len(records), flags.logs_dir, None, classes.class_names, unscored)
        return
    sess, predictor, checkpoint = inference_session(flags, found_checkpoints, classes)
    with sess:
        labelled = predictions.network_predictions(sess, predictor, records, options,
                                                   native_size=flags.infer_size == 0)
        predictions.evaluate_mode(labelled, len(records), flags.logs_dir, checkpoint, classes.class_names, unscored)


# ---------------------------------------------------------------- predict

def run_predict(flags, found_checkpoints):
    classes = model_classes(flags, found_checkpoints)
    sess, predictor, _ = inference_session(flags, found_checkpoints, classes)
    with sess:
        skipped = predictions.predict_mode(sess, predictor, flags.input, flags.output_dir, classes.palette)
    return PREDICT_SKIPPED_STATUS if skipped else 0


# ---------------------------------------------------------------- export

def run_export(flags, found_checkpoints):
    sess, predictor, _ = inference_session(flags, found_checkpoints, model_classes(flags, found_checkpoints))
    with sess:
        predictions.export_mode(sess, predictor, flags.export_dir)


MODES = {"train": run_train, "visualize": run_visualize, "evaluate": run_evaluate, "predict": run_predict,
         "export": run_export}
ERRORS = (OSError, ValueError, dataset.DataError, dataset.BadPairError, FloatingPointError, checkpoints.LockedError)


# ---------------------------------------------------------------- steps the modes share

def list_data(flags, required_splits=scene_parsing.SPLITS):
    """(training records, validation records); the listing comes first, so a problem with the data shows before
    the VGG file is read."""
    print("Setting up image reader...")
    train_records, valid_records = datasets.list_pairs(flags.dataset, data_source(flags), required_splits)
    print(len(train_records))
    print(len(valid_records))
    return train_records, valid_records


def data_source(flags):
    return datasets.Source(flags.data_dir, flags.data_url, flags.download_timeout, flags.sbd_dir, flags.train_list,
                           flags.val_list)


def model_classes(flags, found_checkpoints):
    """The model's datasets.Classes: those logs_dir/model.json records, else the dataset's (with --num_classes);
    ValueError when the newest checkpoint scores another number of classes."""
    record = checkpoints.read_model_record(flags.logs_dir) or {}
    ignore_label = datasets.default_ignore_label(flags.dataset, flags.ignore_label)
    classes = (datasets.classes_from_record(record, ignore_label)
               or datasets.describe(flags.dataset, data_source(flags), flags.num_classes, ignore_label))
    saved_shape = session.checkpoint_variable_shape(found_checkpoints, FCN.CLASS_SCORE_BIAS[flags.head])
    if saved_shape and saved_shape[-1] != classes.num_classes:
        raise ValueError("%s is a model of %d classes, but this run builds %d (from model.json, --num_classes or the "
                         "dataset): pass --num_classes=%d and the --dataset it was trained on, or another --logs_dir"
                         % (found_checkpoints[-1], saved_shape[-1], classes.num_classes, saved_shape[-1]))
    return classes


def reader_options(flags, classes):
    return {"resize": True, "resize_size": flags.image_size, "num_classes": classes.num_classes,
            "ignore_label": classes.ignore_label, "label_colors": datasets.label_colors(flags.dataset, flags.data_dir)}


def training_reader_options(flags, options, mean_pixel):
    """The reader_options `options`, and with --augment the random mirror, scale and crop: the training split
    only."""
    if not flags.augment:
        return options
    return dict(options, augment=augment.Augmentation(flags.image_size, augment.scale_range(flags.scale_range),
                                                      mean_pixel, flags.seed))


def load_vgg(flags, with_fc=True):
    """matconvnet.load_vgg as the flags say; the paper's heads take fc6 and fc7 too, unless with_fc is False."""
    return matconvnet.load_vgg(flags.model_dir, flags.model_url, flags.transpose_vgg_kernels,
                               fc_width=flags.fc_width if with_fc and flags.head in FCN.PAPER_HEADS else None,
                               timeout=flags.download_timeout)


def training_graph(flags, classes, precision=FLOAT32, cluster=distribute.OneDevice(), vgg=None):
    """The training graph of graphs.build_model (or its replicated twin, distribute.py) from `vgg`, the (weights,
    mean pixel) of the VGG file by default; a Saver keeping 5 checkpoints; the mean pixel.

    In float16 the optimizer scales the loss; bfloat16 needs no scaling (make_session's rewrite does the rest)."""
    weights, mean_pixel = vgg or load_vgg(flags)
    description = cluster.describe(flags.batch_size)
    if description:
        print(description)
    model = cluster.build_model(weights, mean_pixel, learning_rate=flags.learning_rate, fc_width=flags.fc_width,
                                num_classes=classes.num_classes, debug=flags.debug,
                                convs_as_matmul=flags.convs_as_matmul, mixed_precision=precision == FLOAT16,
                                palette=datasets.for_pictures(classes)[1], ignore_label=classes.ignore_label,
                                head=flags.head, learn_upsampling=flags.learn_upsampling, optimizer=flags.optimizer,
                                momentum=flags.momentum, weight_decay=flags.weight_decay)
    return model, tf.compat.v1.train.Saver(max_to_keep=5), mean_pixel


def inference_session(flags, found_checkpoints, classes):
    """(session, graphs.build_predictor's predictor, the checkpoint restored or None) for evaluate, predict, export.
    Without a checkpoint, evaluate scores the network --init_checkpoint would start training from."""
    weights, mean_pixel = vgg_unless_restored(flags, found_checkpoints)
    infer_size = flags.image_size if flags.infer_size is None else flags.infer_size
    precision = compute_precision(flags)
    bfloat16 = precision == BFLOAT16  # the graph itself is bfloat16, variables included: nothing to rewrite
    predictor = graphs.build_predictor(weights, mean_pixel, infer_size, flags.fc_width, classes.num_classes,
                                       convs_as_matmul=flags.convs_as_matmul, head=flags.head,
                                       dtype=tf.bfloat16 if bfloat16 else None)
    sess = session.make_session(precision=FLOAT32 if bfloat16 else precision)
    init_checkpoint = checkpoints.resolve_checkpoint(flags.init_checkpoint or "")
    try:
        checkpoint = restore(sess, predictor.pretrained, tf.compat.v1.train.Saver(), found_checkpoints, flags.logs_dir,
                             fresh="evaluating the network training would start from (the matching variables of "
                             "--init_checkpoint)" if init_checkpoint else
                             "evaluating the untrained network (VGG weights and a random head)",
                             init_checkpoint=init_checkpoint)
    except BaseException:
        sess.close()
        raise
    return sess, predictor, checkpoint


def vgg_unless_restored(flags, found_checkpoints):
    """The VGG file's weights and mean pixel; without the file but with a checkpoint to restore, the shapes from
    that checkpoint and the mean pixel model.json records (the beta16 file's ImageNet mean for a logs_dir of the
    original, which has none), so a trained model needs no 510 MB file."""
    vgg_file = downloads.local_path(flags.model_dir, flags.model_url)
    if os.path.exists(vgg_file) or not found_checkpoints:
        return load_vgg(flags, with_fc=not found_checkpoints)  # a checkpoint brings conv6 and conv7
    newest, saved_shapes = session.newest_listable(found_checkpoints)
    record = checkpoints.read_model_record(flags.logs_dir) or {}
    mean_pixel = np.array(record.get("mean_pixel", matconvnet.IMAGENET_MEAN_PIXEL))
    print("No %s: VGG shapes from %s, mean pixel %s" % (vgg_file, newest, mean_pixel))
    return matconvnet.vgg_shapes_from_checkpoint(saved_shapes), mean_pixel


def restore(sess, pretrained, saver, found_checkpoints, logs_dir, fresh="starting from the VGG weights",
            init_checkpoint=None):
    """session.restore_or_initialize, saying what happens when there is no checkpoint, or when logs_dir's own
    checkpoint wins over init_checkpoint."""
    if found_checkpoints and init_checkpoint:
        print("Using the checkpoints in %s: --init_checkpoint=%s is not used" % (logs_dir, init_checkpoint))
    if not found_checkpoints:
        print("No checkpoint in %s: %s" % (logs_dir, fresh))
    return session.restore_or_initialize(sess, pretrained, saver, found_checkpoints, init_checkpoint)


def model_record(flags, mean_pixel, classes):
    """What logs_dir/model.json records: the flags of FCN.MODEL_SHAPE_FLAGS and MODEL_DEFAULT_FLAGS (the dataset
    among them), the classes (count, names, colours, ignore label) and the mean pixel, so every mode rebuilds this
    network and draws its labels from its checkpoints alone."""
    record = {"mean_pixel": [float(value) for value in mean_pixel]}
    record.update((name, getattr(flags, name)) for name in FCN.MODEL_SHAPE_FLAGS + FCN.MODEL_DEFAULT_FLAGS)
    record.update(datasets.record_of(classes))
    return record


def compute_precision(flags):
    """FLOAT32, or with --mixed_precision what this machine computes fast (precision.mixed_precision_type; a line
    says when that is float32). Export writes a bfloat16 SavedModel wherever it runs."""
    if not flags.mixed_precision or flags.mode == "export":
        return BFLOAT16 if flags.mixed_precision else FLOAT32
    chosen, note = mixed_precision_type(bool(tf.config.list_physical_devices("GPU")))
    if note:
        print(note)
    return chosen
