"""The training loop with its validation points, and the visualize mode: what runs on the training graph
(graphs.build_model). The bodies take what they need as arguments; modes.py reads the settings and calls them."""
import collections
import datetime
import os
import time

import numpy as np
import tensorflow as tf

from fcn_tensorflow import metrics
from fcn_tensorflow import pictures
from fcn_tensorflow.data import scene_parsing
from fcn_tensorflow.run import distribute
from fcn_tensorflow.run import session


def train_step(sess, model, feed, with_summary=False):
    """One training step; returns the loss of this step's own forward pass (fetched with the update: the original
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


def validation_scores(sess, model, batches, num_classes=scene_parsing.NUM_OF_CLASSESS, unscored=metrics.UNSCORED_CLASS):
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


def visualize_mode(sess, model, validation_reader, logs_dir, batch_size, class_names, palette):
    """inp_K / gt_K / pred_K.png as the original (K = 5 + index), plus a coloured side-by-side with legend."""
    valid_images, valid_annotations = validation_reader.get_random_batch(batch_size)
    pred = sess.run(model.pred_annotation, feed_dict=feed(model, valid_images))
    valid_annotations = np.squeeze(valid_annotations, axis=3)
    pred = np.squeeze(pred, axis=3)
    os.makedirs(logs_dir, exist_ok=True)  # only now: a visualize that failed before leaves no logs_dir behind
    for itr in range(batch_size):
        picture = pictures.side_by_side([valid_images[itr], valid_annotations[itr], pred[itr]], palette, class_names)
        written = [pictures.save_image(image, logs_dir, name="%s_%d" % (prefix, 5 + itr)) for prefix, image in
                   (("inp", valid_images[itr]), ("gt", valid_annotations[itr]), ("pred", pred[itr]),
                    ("compare", picture))]
        print("Saved images %s and %s in %s" % (", ".join(os.path.basename(path) for path in written[:-1]),
                                                os.path.basename(written[-1]), logs_dir))
