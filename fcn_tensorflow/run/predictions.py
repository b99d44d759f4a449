"""What the trained network's labels are put to: scored over the validation split (evaluate), written as label
maps and pictures (predict); export.py writes them to files. The bodies take what they need as arguments;
modes.py reads the settings and calls them."""
import json
import os

import numpy as np

from fcn_tensorflow import console
from fcn_tensorflow import metrics
from fcn_tensorflow import pictures
from fcn_tensorflow.data import reader
from fcn_tensorflow.data import scene_parsing


BATCH_PIXELS = 4 * 512 * 512  # evaluate: most pixels in one batch (4 images of 512x512, about 2 GB of activations)


def predict_labels(sess, predictor, image):
    """uint8 (H, W) label map of one RGB image of any size."""
    return sess.run(predictor.labels, feed_dict={predictor.images: image[np.newaxis]})[0].astype(np.uint8)


def network_predictions(sess, predictor, records, options, native_size=False, labels_of=None, exact_sizes=False):
    """(annotation, prediction) of each validation record, predicted at the annotation's own size; a pair that
    cannot be used (see reader.load_pair with `options`) is skipped with a line, and more of them than
    reader.check_bad_fraction allows stop the run. labels_of(image) (tiles, test-time augmentation: tta.py): each
    image alone through it, as predict does.

    Images the network sees at the same size run as one batch (in the order of their sizes): of the same size,
    or, at native_size (--infer_size=0), of the same size once padded to a multiple of 32; with exact_sizes (the
    caffe geometry, whose scores padding would change) of exactly the same size. A split of which no pair can be
    used is a DataError."""
    bad_pairs = []
    multiple = 32 if native_size and not exact_sizes else 1
    batches = [[record] for record in records] if labels_of else batches_of_a_size(records, multiple)
    for batch in batches:
        pairs = [pair for pair in (usable_pair(record, options, bad_pairs, len(records)) for record in batch) if pair]
        if pairs:
            images = [image for image, _ in pairs]
            labelled = [labels_of(image) for image in images] if labels_of else predict_batch(sess, predictor, images)
            for (_, annotation), labels in zip(pairs, labelled):
                yield annotation, labels
    if records and len(bad_pairs) == len(records):
        raise reader.DataError("None of the %d image/annotation pairs of the validation split can be read; the "
                               "first is %s" % (len(records), bad_pairs[0]))


def usable_pair(record, options, bad_pairs, num_pairs):
    """(image, annotation (H, W)) of a record, or None after a line saying why it cannot be used and adding the
    BadPairError to bad_pairs; a DataError once too many of the num_pairs evaluated are bad, as in training."""
    try:
        image, annotation, warning = reader.load_pair(record, None, options["num_classes"], options["ignore_label"],
                                                      options["label_colors"], options.get("label_values"))
    except reader.BadPairError as error:
        print("Skipping %s: %s" % (error.path, error.reason))
        bad_pairs.append(error)
        reader.check_bad_fraction(len(bad_pairs), num_pairs, bad_pairs[0])
        return None
    if warning:
        print(warning)
    return image, annotation[..., 0]


def batches_of_a_size(records, multiple, max_pixels=BATCH_PIXELS):
    """The records in lists whose images have the same height and width rounded up to `multiple`, each list up to
    max_pixels (an image alone may have more). Records whose size cannot be read come last, one per list."""
    rounded = {}
    for record in records:
        size = reader.record_image_size(record)
        key = tuple(-(-side // multiple) * multiple for side in size) if size else (np.inf, np.inf)
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


def saved_predictions(predictions_dir, records, num_classes=scene_parsing.NUM_OF_CLASSESS, label_colors=None,
                      ignore_label=None, label_values=None):
    """(annotation, prediction) of each record, the prediction read from predictions_dir/<stem>.png; annotations
    mapped through label_values when given."""
    for record in records:
        annotation = reader.read_labels(record, None, ignore_label, label_colors, label_values)
        path = os.path.join(predictions_dir, record["filename"] + ".png")
        if not os.path.exists(path):
            raise IOError("Prediction %s is missing (for %s)" % (path, record["image"]))
        prediction = reader.read_annotation(path)
        if prediction.max(initial=0) >= num_classes:
            raise ValueError("Prediction %s holds label %d; labels must lie in 0..%d"
                             % (path, prediction.max(), num_classes - 1))
        if prediction.shape != annotation.shape:
            raise ValueError("Prediction %s is %dx%d but its annotation %s is %dx%d (height x width)"
                             % ((path,) + prediction.shape + (record["annotation"],) + annotation.shape))
        yield annotation, prediction


def evaluate_mode(predictions, num_images, logs_dir, checkpoint, class_names, unscored=metrics.UNSCORED_CLASS):
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


def image_files(path):
    """The image itself, or the JPEG and PNG files of a folder (sorted)."""
    if not os.path.isdir(path):
        return [path]
    files = sorted(os.path.join(path, name) for name in os.listdir(path)
                   if name.lower().endswith(reader.IMAGE_EXTENSIONS))
    if not files:
        raise IOError("No JPEG or PNG images in %s" % path)
    return files


def predict_mode(sess, predictor, input_path, output_dir, palette, class_names, labels_of=None):
    """<stem>.png (label map at the input's size), <stem>_color.png and <stem>_overlay.png per image, the two
    pictures with a legend of the classes in that image under them (pictures.with_legend); labelled by
    labels_of(image) (tiles, test-time augmentation: tta.py), by default the predictor's labels.

    A file that cannot be read is skipped with a line; returns the paths skipped."""
    os.makedirs(output_dir, exist_ok=True)
    skipped = []
    files = image_files(input_path)
    for path in files:
        try:
            image = reader.read_image(path)
        except Exception as error:  # PIL reports broken files with many exception types
            print("Skipping %s: it cannot be read as an image (%s)" % (path, error))
            skipped.append(path)
            continue
        labels = labels_of(image) if labels_of else predict_labels(sess, predictor, image)
        stem = scene_parsing.image_stem(path)
        pictures.save_image(labels, output_dir, stem)
        for suffix, picture in (("_color", pictures.colorize(labels, palette)),
                                ("_overlay", pictures.overlay(image, labels, palette))):
            pictures.save_image(pictures.with_legend(picture, [labels], palette, class_names), output_dir,
                                stem + suffix)
        print("Saved %s.png, %s_color.png and %s_overlay.png in %s" % (stem, stem, stem, output_dir))
    print("Predicted %d of %d images into %s" % (len(files) - len(skipped), len(files), output_dir)
          + ("; skipped %d: %s" % (len(skipped), ", ".join(skipped)) if skipped else ""))
    return skipped

