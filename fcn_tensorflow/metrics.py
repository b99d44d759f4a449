"""Segmentation metrics as plain functions of one confusion matrix (the FCN paper and the ADE20K benchmark).

confusion[i, j] counts pixels of ground-truth class i predicted as class j. Every function takes the
class that is not scored, `unscored` (ADE20K's 0 = "other", the default; None scores every class, as
PASCAL VOC does with its background): its row is dropped (those pixels are ignored) and so is its
column (predicting it on a scored pixel counts as wrong for that pixel's class, as in the benchmark).
Pixels labelled outside 0..num_classes-1, such as VOC's 255, never enter the matrix.
"""
import numpy as np

UNSCORED_CLASS = 0  # ADE20K's unscored class


def confusion_matrix(ground_truth, prediction, num_classes):
    """(num_classes, num_classes) int64 counts from two label arrays of the same shape."""
    ground_truth = np.asarray(ground_truth, np.int64).ravel()
    prediction = np.asarray(prediction, np.int64).ravel()
    if ground_truth.shape != prediction.shape:
        raise ValueError("ground truth has %d pixels, prediction %d" % (ground_truth.size, prediction.size))
    valid = (ground_truth >= 0) & (ground_truth < num_classes)
    prediction = np.clip(prediction[valid], 0, num_classes - 1)
    return np.bincount(num_classes * ground_truth[valid] + prediction,
                       minlength=num_classes ** 2).reshape(num_classes, num_classes)


def _scored(confusion, unscored):
    """The matrix with the unscored class's row zeroed: pixels labelled with it are not scored."""
    confusion = np.array(confusion, np.float64)
    if unscored is not None:
        confusion[unscored] = 0
    return confusion


def _unscored_nan(values, unscored):
    if unscored is not None:
        values[unscored] = np.nan
    return values


def pixel_accuracy(confusion, unscored=UNSCORED_CLASS):
    scored = _scored(confusion, unscored)
    total = scored.sum()
    return float(np.trace(scored) / total) if total else float("nan")


def class_iou(confusion, unscored=UNSCORED_CLASS):
    """IoU of every class (the unscored one and absent classes: nan); predicting the unscored class is a miss."""
    confusion = np.asarray(confusion, np.float64)
    true_positive = np.diag(confusion).copy()
    ground_truth = confusion.sum(axis=1)
    predicted = _scored(confusion, unscored).sum(axis=0)
    union = ground_truth + predicted - true_positive
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = true_positive / union
    iou[union == 0] = np.nan
    return _unscored_nan(iou, unscored)


def class_accuracy(confusion, unscored=UNSCORED_CLASS):
    confusion = np.asarray(confusion, np.float64)
    ground_truth = confusion.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        accuracy = np.diag(confusion) / ground_truth
    accuracy[ground_truth == 0] = np.nan
    return _unscored_nan(accuracy, unscored)


def mean_accuracy(confusion, unscored=UNSCORED_CLASS):
    return _nanmean(class_accuracy(confusion, unscored))


def mean_iou(confusion, unscored=UNSCORED_CLASS):
    return _nanmean(class_iou(confusion, unscored))


def frequency_weighted_iou(confusion, unscored=UNSCORED_CLASS):
    iou = class_iou(confusion, unscored)
    frequency = _scored(confusion, unscored).sum(axis=1)
    present = ~np.isnan(iou)
    total = frequency.sum()
    return float((frequency[present] * iou[present]).sum() / total) if total else float("nan")


def challenge_score(confusion, unscored=UNSCORED_CLASS):
    return (pixel_accuracy(confusion, unscored) + mean_iou(confusion, unscored)) / 2.0


SCORES = {"pixel_accuracy": pixel_accuracy, "mean_accuracy": mean_accuracy, "mean_iou": mean_iou,
          "frequency_weighted_iou": frequency_weighted_iou, "challenge_score": challenge_score}


def summary(confusion, unscored=UNSCORED_CLASS):
    """Every score of SCORES and the per-class IoU; undefined values are None (JSON null)."""
    scores = {name: _none_if_nan(score(confusion, unscored)) for name, score in SCORES.items()}
    scores["class_iou"] = [_none_if_nan(value) for value in class_iou(confusion, unscored)]
    return scores


def format_table(confusion, class_names, unscored=UNSCORED_CLASS):
    """Text table of the scored classes present in the ground truth (index, name, IoU, accuracy, pixels), and
    a line counting the others."""
    iou, accuracy = class_iou(confusion, unscored), class_accuracy(confusion, unscored)
    pixels = np.asarray(confusion).sum(axis=1)
    present = [index for index in np.flatnonzero(pixels) if index != unscored]
    lines = ["%5s  %-20s %7s %9s %12s" % ("class", "name", "IoU", "accuracy", "GT pixels")]
    for index in present:
        lines.append("%5d  %-20s %7.4f %9.4f %12d" % (index, class_names[index][:20], iou[index],
                                                        accuracy[index], pixels[index]))
    absent = len(pixels) - (unscored is not None) - len(present)
    if absent:
        predicted = int(np.sum(~np.isnan(iou)) - len(present))
        lines.append("(%d classes absent from the ground truth are not listed; %d of them were predicted, "
                     "with IoU 0)" % (absent, predicted))
    return "\n".join(lines)


def most_frequent_class_accuracy(confusion, unscored=UNSCORED_CLASS):
    """Pixel accuracy of always predicting the most frequent scored class: the baseline to beat."""
    frequency = _scored(confusion, unscored).sum(axis=1)
    return float(frequency.max() / frequency.sum()) if frequency.sum() else float("nan")


def _none_if_nan(value):
    return None if np.isnan(value) else float(value)


def _nanmean(values):
    values = np.asarray(values, np.float64)
    values = values[~np.isnan(values)]
    return float(values.mean()) if values.size else float("nan")
