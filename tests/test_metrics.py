"""metrics.py: the paper's metrics and the ADE20K protocol on hand-made matrices and on random label maps."""
import math

import numpy as np
import pytest

from fcn_tensorflow import metrics


def confusion_from(pairs, num_classes=4):
    """A confusion matrix from {(ground truth, prediction): pixel count}."""
    confusion = np.zeros((num_classes, num_classes), np.int64)
    for (truth, predicted), count in pairs.items():
        confusion[truth, predicted] = count
    return confusion


@pytest.mark.parametrize("pairs, expected", [({(1, 1): 5, (2, 2): 3, (3, 3): 2}, 1.0),
                                             ({(1, 2): 4, (2, 3): 4, (3, 1): 2}, 0.0)],
                         ids=["perfect", "all_wrong"])
def test_perfect_scores_one_and_all_wrong_zero(pairs, expected):
    scores = metrics.summary(confusion_from(pairs))
    for name in metrics.SCORES:
        assert scores[name] == expected
    assert scores["class_iou"] == [None, expected, expected, expected]


def test_classes_absent_from_truth_and_prediction_are_left_out():
    # class 3 never occurs; class 2 is only predicted (IoU 0, counts in mean IU, has no accuracy)
    confusion = confusion_from({(1, 1): 6, (1, 2): 2})
    assert metrics.class_iou(confusion)[1:].tolist()[:2] == [0.75, 0.0]
    assert math.isnan(metrics.class_iou(confusion)[3])
    assert metrics.mean_iou(confusion) == pytest.approx(0.375)
    assert metrics.mean_accuracy(confusion) == pytest.approx(0.75)
    assert metrics.pixel_accuracy(confusion) == pytest.approx(0.75)
    assert metrics.frequency_weighted_iou(confusion) == pytest.approx(0.75)
    assert metrics.challenge_score(confusion) == pytest.approx((0.75 + 0.375) / 2)
    assert metrics.summary(confusion)["class_iou"][3] is None


def test_label_zero_is_not_scored_and_predicting_it_is_a_miss():
    # Pixels labelled 0 are ignored whatever was predicted there;
    # predicting 0 on a labelled pixel counts as wrong for that pixel's class.
    confusion = confusion_from({(0, 0): 100, (0, 1): 50, (0, 2): 70, (1, 1): 3, (1, 0): 1, (2, 2): 4})
    assert metrics.pixel_accuracy(confusion) == pytest.approx(7 / 8)
    assert metrics.class_iou(confusion)[1] == pytest.approx(3 / 4)
    assert metrics.class_iou(confusion)[2] == 1.0
    assert math.isnan(metrics.class_iou(confusion)[0])
    assert metrics.mean_accuracy(confusion) == pytest.approx((3 / 4 + 1) / 2)
    assert metrics.frequency_weighted_iou(confusion) == pytest.approx((4 * 3 / 4 + 4 * 1) / 8)


def test_nothing_scored_gives_null_not_nan():
    scores = metrics.summary(confusion_from({(0, 1): 9}))
    assert scores["pixel_accuracy"] is None and scores["mean_iou"] is None
    assert scores["class_iou"] == [None] * 4


def test_confusion_matrix_counts_pixels():
    truth = np.array([[0, 1], [2, 2]])
    prediction = np.array([[1, 1], [2, 0]])
    expected = confusion_from({(0, 1): 1, (1, 1): 1, (2, 2): 1, (2, 0): 1}, num_classes=3)
    np.testing.assert_array_equal(metrics.confusion_matrix(truth, prediction, 3), expected)
    with pytest.raises(ValueError):
        metrics.confusion_matrix(truth, prediction[:1], 3)


def straightforward_scores(truths, predictions, num_classes):
    """The benchmark's definitions, computed class by class from the label maps themselves."""
    truth = np.concatenate([t.ravel() for t in truths])
    prediction = np.concatenate([p.ravel() for p in predictions])
    scored = truth != 0
    truth, prediction = truth[scored], prediction[scored]
    ious, accuracies, weighted = {}, {}, 0.0
    for label in range(1, num_classes):
        in_truth, in_prediction = truth == label, prediction == label
        union = np.sum(in_truth | in_prediction)
        if union:
            ious[label] = np.sum(in_truth & in_prediction) / union
            weighted += np.sum(in_truth) * ious[label]
        if np.any(in_truth):
            accuracies[label] = np.mean(prediction[in_truth] == label)
    return {"pixel_accuracy": np.mean(truth == prediction), "mean_iou": np.mean(list(ious.values())),
            "mean_accuracy": np.mean(list(accuracies.values())), "frequency_weighted_iou": weighted / truth.size,
            "class_iou": ious}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_label_maps_match_a_straightforward_computation(seed):
    rng = np.random.RandomState(seed)
    num_classes = 12
    truths, predictions = [], []
    confusion = np.zeros((num_classes, num_classes), np.int64)
    for _ in range(5):
        shape = tuple(rng.randint(5, 40, size=2))
        truth = rng.randint(0, num_classes - 3, size=shape)  # the last classes stay absent from the truth
        prediction = np.where(rng.rand(*shape) < 0.6, truth, rng.randint(0, num_classes - 1, size=shape))
        truths.append(truth)
        predictions.append(prediction)
        confusion += metrics.confusion_matrix(truth, prediction, num_classes)
    expected = straightforward_scores(truths, predictions, num_classes)
    scores = metrics.summary(confusion)
    for name in ("pixel_accuracy", "mean_accuracy", "mean_iou", "frequency_weighted_iou"):
        assert scores[name] == pytest.approx(expected[name])
    assert scores["challenge_score"] == pytest.approx((expected["pixel_accuracy"] + expected["mean_iou"]) / 2)
    assert {label: iou for label, iou in enumerate(scores["class_iou"]) if iou is not None} == \
        pytest.approx(expected["class_iou"])
    assert scores["class_iou"][num_classes - 1] is None  # neither in the truth nor predicted


def test_table_lists_the_classes_of_the_ground_truth_and_counts_the_rest():
    confusion = confusion_from({(1, 1): 6, (1, 2): 2, (0, 3): 5})  # building only predicted, sky never
    lines = metrics.format_table(confusion, ["other", "wall", "building", "sky"]).splitlines()
    assert [line.split()[1] for line in lines[1:-1]] == ["wall"]
    assert lines[-1] == "(2 classes absent from the ground truth are not listed; 1 of them were predicted, with IoU 0)"


def test_voc_protocol_scores_background_and_never_sees_255():
    truth = np.array([[0, 0, 1], [255, 1, 255]])
    prediction = np.array([[0, 1, 1], [1, 1, 0]])
    confusion = metrics.confusion_matrix(truth, prediction, 3)
    assert confusion.sum() == 4  # the two 255 pixels are not in the matrix
    scores = metrics.summary(confusion, unscored=None)
    assert scores["pixel_accuracy"] == pytest.approx(3 / 4)
    assert scores["class_iou"][:2] == pytest.approx([1 / 2, 2 / 3]) and scores["class_iou"][2] is None
    assert scores["mean_iou"] == pytest.approx((1 / 2 + 2 / 3) / 2)
    assert metrics.most_frequent_class_accuracy(confusion, unscored=None) == pytest.approx(1 / 2)
    table = metrics.format_table(confusion, ["background", "aeroplane", "bicycle"], unscored=None).splitlines()
    assert [line.split()[1] for line in table[1:-1]] == ["background", "aeroplane"]
    assert table[-1].startswith("(1 classes absent from the ground truth")


def test_another_unscored_class_is_left_out_like_ade20k_s_zero():
    confusion = confusion_from({(0, 0): 3, (1, 1): 2, (2, 2): 5, (2, 1): 5}, num_classes=3)
    assert metrics.pixel_accuracy(confusion, unscored=2) == 1.0
    assert metrics.class_iou(confusion, unscored=2)[0] == 1.0 and math.isnan(metrics.class_iou(confusion, 2)[2])
    assert metrics.class_iou(confusion, unscored=2)[1] == 1.0  # predictions on unscored pixels do not count
