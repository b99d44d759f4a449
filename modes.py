"""The modes of FCN.py: train, visualize, evaluate, predict, export.

Each mode has a body that takes what it needs as arguments, and a `run_<mode>(flags, found_checkpoints)`
that reads the flags, builds the graph, restores and calls it. MODES maps the mode's name to the latter.
"""
import collections
import datetime
import json
import os
import time

import numpy as np
import tensorflow as tf

import augment
import BatchDatsetReader as dataset
import checkpoints
import console
import datasets
import distribute
import downloads
import FCN
import matconvnet
import metrics
import pictures
import read_MITSceneParsingData as scene_parsing
import session
from precision import BFLOAT16, FLOAT16, FLOAT32, mixed_precision_type

PREDICT_SKIPPED_STATUS = 2  # exit status of predict when some inputs could not be read
BATCH_PIXELS = 4 * 512 * 512  # evaluate: most pixels in one batch (4 images of 512x512, about 2 GB of activations)


# ---------------------------------------------------------------- train

def train_step(sess, model, feed, with_summary=False):
    """One Adam step; returns the loss of this step's own forward pass (fetched with the update: the original
    ran the forward pass a second time for it) and, if asked, the training summary."""
    fetches = {"train": model.train_op, "loss": model.loss}
    if with_summary:
        fetches["summary"] = model.train_summary
    result = sess.run(fetches, feed_dict=feed)
    return result["loss"], result.get("summary")


def train_mode(sess, model, saver, train_reader, validation_reader, logs_dir, batch_size, max_iteration,
               keep_prob=0.85, log_every=10, save_every=500, curves=None, cluster=distribute.OneDevice()):
    """The original loop; the step count comes from global_step, so a resumed run continues it. At each validation
    point, the scores of `curves` too (see validate_and_save). batch_size is per replica (distribute.py), and only
    the chief validates and writes.

    Ctrl-C or SIGTERM (on any worker) ends it after a step with a checkpoint; a non-finite loss ends it without one."""
    start = sess.run(model.global_step)
    if start >= max_iteration:
        print("Already at step %d (>= --max_iteration=%d): nothing to train" % (start, max_iteration))
        return
    last_log, waited = (time.time(), start), 0.0
    itr = start - 1
    with cluster.summary_writer(logs_dir, "train", sess.graph) as train_writer, \
            cluster.summary_writer(logs_dir, "validation") as validation_writer, \
            session.stop_requests() as stop:
        for itr in range(start, max_iteration):
            asked = time.time()
            train_images, train_annotations = train_reader.next_batch(batch_size * cluster.local_replicas)
            waited += time.time() - asked
            train_loss, summary = train_step(sess, model, feed(model, train_images, train_annotations, keep_prob),
                                             with_summary=itr % log_every == 0)
            if not np.isfinite(train_loss):
                raise FloatingPointError(
                    "Step %d: the training loss is %g. Stopped without saving; the newest checkpoint in %s is the "
                    "last good one. Lower --learning_rate or check the labels, then resume."
                    % (itr, train_loss, logs_dir))

            if itr % log_every == 0:
                seconds, steps = time.time() - last_log[0], itr + 1 - last_log[1]
                print("Step: %d, Train_loss:%g (%.2f images/s, %.1f%% waiting for data)"
                      % (itr, train_loss, steps * batch_size * cluster.num_replicas / seconds, 100 * waited / seconds))
                last_log, waited = (time.time(), itr + 1), 0.0
                train_writer.add_summary(summary, itr)

            if itr % save_every == 0 and cluster.is_chief:
                validate_and_save(sess, model, saver, validation_reader, validation_writer, logs_dir, batch_size, itr,
                                  curves)
            stopping = cluster.stop_everywhere(sess, stop)
            if stopping:
                print("%s: stopping after step %d" % (stopping, itr))
                break
        if itr % save_every != 0 and cluster.is_chief:
            validate_and_save(sess, model, saver, validation_reader, validation_writer, logs_dir, batch_size, itr,
                              curves)
    if stopping:
        print(cluster.resume_hint(logs_dir))


def validate_and_save(sess, model, saver, validation_reader, writer, logs_dir, batch_size, step, curves=None):
    """The loss of a validation batch and, over every pair of the curves' reader, the pixel accuracy and mean IoU
    (the curves that compare heads), on the console and in TensorBoard; then a checkpoint."""
    valid_images, valid_annotations = validation_reader.next_batch(min(batch_size, len(validation_reader.files)))
    valid_loss, summary = sess.run([model.validation_loss, model.validation_summary],
                                   feed_dict=feed(model, valid_images, valid_annotations))
    line = "%s ---> Validation_loss: %g" % (datetime.datetime.now(), valid_loss)
    if curves is not None and curves.reader.files:
        scores = validation_scores(sess, model, curves.reader.batches(batch_size), curves.num_classes, curves.unscored)
        line += ", pixel_accuracy: %.4f, mean_iou: %.4f (%d images)" % (
            scores["validation/pixel_accuracy"], scores["validation/mean_iou"], len(curves.reader.files))
        writer.add_summary(tf.compat.v1.Summary(value=[tf.compat.v1.Summary.Value(tag=tag, simple_value=value)
                                                       for tag, value in scores.items()]), step)
    print(line)
    writer.add_summary(summary, step)
    writer.flush()
    session.save_checkpoint(sess, model, saver, logs_dir, step)


def validation_scores(sess, model, batches, num_classes=FCN.NUM_OF_CLASSESS, unscored=metrics.IGNORE_LABEL):
    """{"validation/pixel_accuracy": ..., "validation/mean_iou": ...} of the network's predictions over `batches`
    of (images, annotations), scored as evaluate scores (class `unscored` left out; ignore labels are past
    num_classes), at the size the reader gives."""
    confusion = np.zeros((num_classes, num_classes), np.int64)
    for images, annotations in batches:
        predictions = sess.run(model.pred_annotation, feed_dict=feed(model, images))
        confusion += metrics.confusion_matrix(annotations, predictions, num_classes)
    return {"validation/pixel_accuracy": metrics.pixel_accuracy(confusion, unscored),
            "validation/mean_iou": metrics.mean_iou(confusion, unscored)}


Curves = collections.namedtuple("Curves", ["reader", "num_classes", "unscored"])  # what validation points score


def feed(model, images, annotations=None, keep_prob=1.0):
    """The feed of the training graph: images, optionally annotations, and the dropout keep probability."""
    result = {model.image: images, model.keep_probability: keep_prob}
    if annotations is not None:
        result[model.annotation] = annotations
    return result


def run_train(flags, found_checkpoints):
    """List the data, take the logs_dir lock, build the training graph, restore, train; on the devices and machines
    --replicas and TF_CONFIG name (distribute.py), where only the chief takes the lock and writes."""
    cluster = distribute.make_cluster(flags.replicas, flags.worker_timeout, os.environ.get("TF_CONFIG"))
    with cluster.training_lock(flags.logs_dir):
        train_records, valid_records = list_data(flags)
        if flags.seed is not None:
            np.random.seed(flags.seed)  # the epoch order
            tf.compat.v1.set_random_seed(flags.seed)  # the initial weights and dropout
        classes = model_classes(flags, found_checkpoints)
        precision = compute_precision(flags)
        model, saver, mean_pixel = training_graph(flags, classes, precision, cluster)
        options = reader_options(flags, classes)
        with cluster.session(flags.xla, precision) as sess, cluster.lost_workers_explained(), \
                dataset.BatchDatset(cluster.shard(train_records),
                                    training_reader_options(flags, classes, mean_pixel)) as train_reader, \
                dataset.BatchDatset(valid_records, options) as validation_reader, \
                dataset.BatchDatset(valid_records[:flags.val_images], options) as curve_reader:
            cluster.start(sess, lambda: start_training(sess, model, saver, found_checkpoints, flags,
                                                       model_record(flags, mean_pixel, classes)))
            curves = Curves(curve_reader, classes.num_classes, datasets.unscored_class(flags.dataset, classes))
            train_mode(sess, model, saver, train_reader, validation_reader, flags.logs_dir, flags.batch_size,
                       flags.max_iteration, flags.keep_prob, flags.log_every, flags.save_every, curves, cluster)


def start_training(sess, model, saver, found_checkpoints, flags, record):
    """Restore logs_dir's newest checkpoint, or start from the VGG weights and --init_checkpoint; write model.json
    with `record` when logs_dir has none."""
    checkpoints.remove_partial_saves(flags.logs_dir)
    try:
        restore(sess, model.pretrained, saver, found_checkpoints, flags.logs_dir,
                init_checkpoint=checkpoints.resolve_checkpoint(flags.init_checkpoint or ""))
    except session.UnreadableCheckpoints as error:
        if not found_checkpoints:
            raise
        raise session.UnreadableCheckpoints("%s. Training would start afresh and overwrite them: move them "
                                            "out of %s to start afresh" % (error, flags.logs_dir))
    if checkpoints.read_model_record(flags.logs_dir) is None:
        checkpoints.write_model_record(flags.logs_dir, record)


# ---------------------------------------------------------------- visualize

def visualize_mode(sess, model, validation_reader, logs_dir, batch_size, class_names, palette):
    """inp_K / gt_K / pred_K.png as the original (K = 5 + index), plus a coloured side-by-side with legend."""
    valid_images, valid_annotations = validation_reader.get_random_batch(batch_size)
    pred = sess.run(model.pred_annotation, feed_dict=feed(model, valid_images))
    valid_annotations = np.squeeze(valid_annotations, axis=3)
    pred = np.squeeze(pred, axis=3)
    for itr in range(batch_size):
        pictures.save_image(valid_images[itr], logs_dir, name="inp_" + str(5 + itr))
        pictures.save_image(valid_annotations[itr], logs_dir, name="gt_" + str(5 + itr))
        pictures.save_image(pred[itr], logs_dir, name="pred_" + str(5 + itr))
        picture = pictures.side_by_side([valid_images[itr], valid_annotations[itr], pred[itr]], palette, class_names)
        pictures.save_image(picture, logs_dir, name="compare_" + str(5 + itr))
        print("Saved image: %d" % itr)


def run_visualize(flags, found_checkpoints):
    _, valid_records = list_data(flags, required_splits=("validation",))
    classes = model_classes(flags, found_checkpoints)
    precision = compute_precision(flags)
    model, _, _ = training_graph(flags, classes, precision)
    os.makedirs(flags.logs_dir, exist_ok=True)
    with session.make_session(flags.xla, precision) as sess, \
            dataset.BatchDatset(valid_records, reader_options(flags, classes)) as validation_reader:
        restore(sess, model.pretrained, tf.compat.v1.train.Saver(), found_checkpoints, flags.logs_dir)
        visualize_mode(sess, model, validation_reader, flags.logs_dir, flags.batch_size,
                       *datasets.for_pictures(classes))


# ---------------------------------------------------------------- evaluate

def predict_labels(sess, predictor, image):
    """uint8 (H, W) label map of one RGB image of any size."""
    return sess.run(predictor.labels, feed_dict={predictor.images: image[np.newaxis]})[0].astype(np.uint8)


def network_predictions(sess, predictor, records, options, native_size=False):
    """(annotation, prediction) of each validation record, predicted at the annotation's own size; a pair that
    cannot be used (see BatchDatsetReader.load_pair with `options`) is skipped with a line.

    Images the network sees at the same size run as one batch (in the order of their sizes): of the same size,
    or, at native_size (--infer_size=0), of the same size once padded to a multiple of 32."""
    for batch in batches_of_a_size(records, 32 if native_size else 1):
        pairs = [pair for pair in (usable_pair(record, options) for record in batch) if pair]
        if pairs:
            for (_, annotation), labels in zip(pairs, predict_batch(sess, predictor, [image for image, _ in pairs])):
                yield annotation, labels


def usable_pair(record, options):
    """(image, annotation (H, W)) of a record, or None after a line saying why it cannot be used."""
    try:
        image, annotation, warning = dataset.load_pair(record, None, options["num_classes"], options["ignore_label"],
                                                       options["label_colors"])
    except dataset.BadPairError as error:
        print("Skipping %s: %s" % (error.path, error.reason))
        return None
    if warning:
        print(warning)
    return image, annotation[..., 0]


def batches_of_a_size(records, multiple, max_pixels=BATCH_PIXELS):
    """The records in lists whose images have the same height and width rounded up to `multiple`, each list up to
    max_pixels (an image alone may have more). Records whose size cannot be read come last, one per list."""
    rounded = {}
    for record in records:
        size = dataset.record_image_size(record)
        key = tuple(-(-side // multiple) * multiple for side in size) if size else (np.inf, len(rounded))
        rounded.setdefault(key, []).append(record)
    for (width, height), same in sorted(rounded.items()):
        per_batch = max(1, int(max_pixels // (width * height)))
        for start in range(0, len(same), per_batch):
            yield same[start:start + per_batch]


def predict_batch(sess, predictor, images):
    """uint8 label maps of RGB images run as one batch; smaller ones are padded to the largest with the mean pixel
    (rounded: images are uint8) and their labels cropped back."""
    height, width = np.max([image.shape[:2] for image in images], axis=0)
    batch = np.empty((len(images), height, width, 3), np.uint8)
    batch[...] = np.round(predictor.mean_pixel).astype(np.uint8)
    for index, image in enumerate(images):
        batch[index, :image.shape[0], :image.shape[1]] = image
    labels = sess.run(predictor.labels, feed_dict={predictor.images: batch}).astype(np.uint8)
    return [labels[index, :image.shape[0], :image.shape[1]] for index, image in enumerate(images)]


def saved_predictions(predictions_dir, records, num_classes=FCN.NUM_OF_CLASSESS, label_colors=None):
    """(annotation, prediction) of each record, the prediction read from predictions_dir/<stem>.png."""
    for record in records:
        annotation = dataset.read_record_labels(record, label_colors)
        path = os.path.join(predictions_dir, record["filename"] + ".png")
        if not os.path.exists(path):
            raise IOError("Prediction %s is missing (for %s)" % (path, record["image"]))
        prediction = dataset.read_annotation(path)
        if prediction.max(initial=0) >= num_classes:
            raise ValueError("Prediction %s holds label %d; labels must lie in 0..%d"
                             % (path, prediction.max(), num_classes - 1))
        if prediction.shape != annotation.shape:
            raise ValueError("Prediction %s is %dx%d but its annotation %s is %dx%d (height x width)"
                             % ((path,) + prediction.shape + (record["annotation"],) + annotation.shape))
        yield annotation, prediction


def evaluate_mode(predictions, num_images, logs_dir, checkpoint, class_names, unscored=metrics.IGNORE_LABEL):
    """One confusion matrix over all (annotation, prediction) pairs, class `unscored` left out (metrics.py): a table,
    and the metrics in logs_dir/metrics.json."""
    num_classes = len(class_names)
    confusion = np.zeros((num_classes, num_classes), np.int64)
    scored_images = 0
    for annotation, prediction in console.progress(predictions, num_images, "Evaluating"):
        confusion += metrics.confusion_matrix(annotation, prediction, num_classes)
        scored_images += 1
    scores = dict(metrics.summary(confusion, unscored), num_images=scored_images, checkpoint=checkpoint)
    print(metrics.format_table(confusion, class_names, unscored))
    for name in metrics.SCORES:
        print("%-24s %s" % (name, "n/a" if scores[name] is None else "%.4f" % scores[name]))
    print("Validation pixel accuracy: %.4f (most frequent class: %.4f) on %d images"
          % (metrics.pixel_accuracy(confusion, unscored), metrics.most_frequent_class_accuracy(confusion, unscored),
             scored_images))
    os.makedirs(logs_dir, exist_ok=True)
    with open(os.path.join(logs_dir, "metrics.json"), "w") as metrics_file:
        json.dump(scores, metrics_file, indent=1)
    return scores


def run_evaluate(flags, found_checkpoints):
    records = list_data(flags, required_splits=("validation",))[1]
    classes = model_classes(flags, found_checkpoints)
    options = reader_options(flags, classes)
    unscored = datasets.unscored_class(flags.dataset, classes)
    if flags.predictions_dir:
        predictions = saved_predictions(flags.predictions_dir, records, classes.num_classes, options["label_colors"])
        evaluate_mode(predictions, len(records), flags.logs_dir, None, classes.class_names, unscored)
        return
    sess, predictor, checkpoint = inference_session(flags, found_checkpoints, classes)
    with sess:
        evaluate_mode(network_predictions(sess, predictor, records, options, native_size=flags.infer_size == 0),
                      len(records), flags.logs_dir, checkpoint, classes.class_names, unscored)


# ---------------------------------------------------------------- predict

def image_files(path):
    """The image itself, or the JPEG and PNG files of a folder (sorted)."""
    if not os.path.isdir(path):
        return [path]
    files = sorted(os.path.join(path, name) for name in os.listdir(path)
                   if name.lower().endswith(dataset.IMAGE_EXTENSIONS))
    if not files:
        raise IOError("No JPEG or PNG images in %s" % path)
    return files


def predict_mode(sess, predictor, input_path, output_dir, palette):
    """<stem>.png (label map at the input's size), <stem>_color.png and <stem>_overlay.png per image.

    A file that cannot be read is skipped with a line; returns the paths skipped."""
    os.makedirs(output_dir, exist_ok=True)
    skipped = []
    files = image_files(input_path)
    for path in files:
        try:
            image = dataset.read_image(path)
        except Exception as error:  # PIL reports broken files with many exception types
            print("Skipping %s: it cannot be read as an image (%s)" % (path, error))
            skipped.append(path)
            continue
        labels = predict_labels(sess, predictor, image)
        stem = scene_parsing.image_stem(path)
        pictures.save_image(labels, output_dir, stem)
        pictures.save_image(pictures.colorize(labels, palette), output_dir, stem + "_color")
        pictures.save_image(pictures.overlay(image, labels, palette), output_dir, stem + "_overlay")
        print("Saved %s" % os.path.join(output_dir, stem + ".png"))
    print("Predicted %d of %d images into %s" % (len(files) - len(skipped), len(files), output_dir)
          + ("; skipped %d: %s" % (len(skipped), ", ".join(skipped)) if skipped else ""))
    return skipped


def run_predict(flags, found_checkpoints):
    classes = model_classes(flags, found_checkpoints)
    sess, predictor, _ = inference_session(flags, found_checkpoints, classes)
    with sess:
        skipped = predict_mode(sess, predictor, flags.input,
                               flags.output_dir or os.path.join(flags.logs_dir, "predictions"), classes.palette)
    return PREDICT_SKIPPED_STATUS if skipped else 0


# ---------------------------------------------------------------- export

def export_mode(sess, predictor, export_dir):
    """SavedModel whose serving_default maps uint8 `images` [N, H, W, 3] to `labels` and `probabilities`."""
    signature = tf.compat.v1.saved_model.predict_signature_def(
        inputs={"images": predictor.images},
        outputs={"labels": predictor.labels, "probabilities": predictor.probabilities})
    builder = tf.compat.v1.saved_model.Builder(export_dir)
    builder.add_meta_graph_and_variables(sess, [tf.compat.v1.saved_model.SERVING], strip_default_attrs=True,
                                         signature_def_map={"serving_default": signature})
    builder.save()
    print("Exported the SavedModel to %s" % export_dir)


def run_export(flags, found_checkpoints):
    sess, predictor, _ = inference_session(flags, found_checkpoints, model_classes(flags, found_checkpoints))
    with sess:
        export_mode(sess, predictor, flags.export_dir or os.path.join(flags.logs_dir, "saved_model"))


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
    saved_shape = session.checkpoint_variable_shape(found_checkpoints, FCN.CLASS_SCORE_BIAS)
    if saved_shape and saved_shape[-1] != classes.num_classes:
        raise ValueError("%s is a model of %d classes, but this run builds %d (from model.json, --num_classes or the "
                         "dataset): pass --num_classes=%d and the --dataset it was trained on, or another --logs_dir"
                         % (found_checkpoints[-1], saved_shape[-1], classes.num_classes, saved_shape[-1]))
    return classes


def reader_options(flags, classes):
    return {"resize": True, "resize_size": flags.image_size, "num_classes": classes.num_classes,
            "ignore_label": classes.ignore_label, "label_colors": datasets.label_colors(flags.dataset, flags.data_dir)}


def training_reader_options(flags, classes, mean_pixel):
    """reader_options, and with --augment the random mirror, scale and crop: the training split only."""
    options = reader_options(flags, classes)
    if flags.augment:
        options["augment"] = augment.Augmentation(flags.image_size, augment.scale_range(flags.scale_range),
                                                  mean_pixel, flags.seed)
    return options


def load_vgg(flags, with_fc=True):
    """FCN.load_vgg as the flags say; the paper's heads take fc6 and fc7 too, unless with_fc is False."""
    return FCN.load_vgg(flags.model_dir, flags.model_url, flags.transpose_vgg_kernels,
                        fc_width=flags.fc_width if with_fc and flags.head in FCN.PAPER_HEADS else None)


def training_graph(flags, classes, precision=FLOAT32, cluster=distribute.OneDevice()):
    """The training graph of FCN.build_model (or its replicated twin, distribute.py) from the VGG file, a Saver
    keeping 5 checkpoints, the mean pixel.

    In float16 the optimizer scales the loss; bfloat16 needs no scaling (make_session's rewrite does the rest)."""
    weights, mean_pixel = load_vgg(flags)
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
    """(session, FCN.build_predictor's predictor, the checkpoint restored or None) for evaluate, predict, export.
    Without a checkpoint, evaluate scores the network --init_checkpoint would start training from."""
    weights, mean_pixel = vgg_for_inference(flags, found_checkpoints)
    infer_size = flags.image_size if flags.infer_size is None else flags.infer_size
    precision = compute_precision(flags)
    bfloat16 = precision == BFLOAT16  # the graph itself is bfloat16, variables included: nothing to rewrite
    predictor = FCN.build_predictor(weights, mean_pixel, infer_size, flags.fc_width, classes.num_classes,
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


def vgg_for_inference(flags, found_checkpoints):
    """The VGG file's weights and mean pixel; without the file but with a checkpoint to restore, the shapes
    from that checkpoint and the ImageNet mean pixel of the beta16 file, so a trained model needs no 510 MB file."""
    vgg_file = downloads.local_path(flags.model_dir, flags.model_url)
    if os.path.exists(vgg_file) or not found_checkpoints:
        return load_vgg(flags, with_fc=not found_checkpoints)  # a checkpoint brings conv6 and conv7
    newest, saved_shapes = session.newest_listable(found_checkpoints)
    record = checkpoints.read_model_record(flags.logs_dir) or {}
    mean_pixel = np.array(record.get("mean_pixel", matconvnet.IMAGENET_MEAN_PIXEL))
    print("No %s: VGG shapes from %s, mean pixel %s" % (vgg_file, newest, mean_pixel))
    return FCN.vgg_shapes_from_checkpoint(saved_shapes), mean_pixel


def restore(sess, pretrained, saver, found_checkpoints, logs_dir, fresh="starting from the VGG weights",
            init_checkpoint=None):
    """session.restore_or_initialize, saying what happens when there is no checkpoint, or when logs_dir's own
    checkpoint wins over init_checkpoint."""
    if found_checkpoints and init_checkpoint:
        print("Resuming from the checkpoints in %s: --init_checkpoint=%s is not used" % (logs_dir, init_checkpoint))
        init_checkpoint = None
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
