"""augment.py: the random mirror, scale and crop of training pairs, its padding, its seeds, and the reader using it."""
import numpy as np
import pytest

from fcn_tensorflow.data import augment
from tests.data.test_reader import make_reader, write_pair

MEAN_PIXEL = (123.68, 116.779, 103.939)


def striped_pair(size=32):
    """An image whose colour is 10 x its label, with 8-pixel vertical stripes of labels 1..4."""
    labels = np.repeat(np.arange(1, size // 8 + 1, dtype=np.uint8), 8)[np.newaxis].repeat(size, axis=0)
    return np.stack([labels * 10] * 3, axis=-1), labels[..., np.newaxis]


def test_scale_range_takes_two_ordered_positive_numbers():
    assert augment.scale_range(["0.5", "2.0"]) == (0.5, 2.0)
    assert augment.scale_range(["1", "1"]) == (1.0, 1.0)
    for texts in (["2", "1"], ["0", "1"], ["1"], ["1", "2", "3"], ["a", "2"]):
        assert augment.scale_range(texts) is None


def test_same_key_same_pair_other_epochs_other_pairs():
    image, annotation = striped_pair()
    augmentation = augment.Augmentation(32, (0.5, 2.0), MEAN_PIXEL, seed=3)
    first = augmentation(image, annotation, (5, 0))
    again = augment.Augmentation(32, (0.5, 2.0), MEAN_PIXEL, seed=3)(image, annotation, (5, 0))
    np.testing.assert_array_equal(first[0], again[0])
    np.testing.assert_array_equal(first[1], again[1])
    others = [augmentation(image, annotation, (5, epoch)) for epoch in range(1, 6)]
    assert any(not np.array_equal(first[0], other[0]) for other in others)
    for augmented_image, augmented_labels in [first] + others:
        assert augmented_image.shape == (32, 32, 3) and augmented_image.dtype == np.uint8
        assert augmented_labels.shape == (32, 32, 1)
        assert set(np.unique(augmented_labels)) <= {0, 1, 2, 3, 4}  # nearest: no label made up


def test_mirror_only_flips_the_pair_at_scale_one():
    image, annotation = striped_pair()
    augmentation = augment.Augmentation(32, (1.0, 1.0), MEAN_PIXEL, seed=0)
    outcomes = set()
    for epoch in range(20):
        augmented_image, augmented_labels = augmentation(image, annotation, (0, epoch))
        mirrored = np.array_equal(augmented_labels, annotation[:, ::-1])
        assert mirrored or np.array_equal(augmented_labels, annotation)
        np.testing.assert_array_equal(augmented_image, image[:, ::-1] if mirrored else image)
        outcomes.add(mirrored)
    assert outcomes == {True, False}


def test_a_smaller_scale_pads_with_the_mean_pixel_and_the_pad_label():
    image, annotation = striped_pair()
    augmented_image, augmented_labels = augment.Augmentation(32, (0.5, 0.5), MEAN_PIXEL, seed=1)(
        image, annotation, (0, 0), pad_label=255)
    np.testing.assert_array_equal(augmented_image[16:], 124 + np.zeros((16, 32, 3)) - [0, 7, 20])
    np.testing.assert_array_equal(augmented_image[:, 16:], np.broadcast_to([124, 117, 104], (32, 16, 3)))
    assert (augmented_labels[16:] == 255).all() and (augmented_labels[:, 16:] == 255).all()
    assert set(np.unique(augmented_labels[:16, :16])) <= {1, 2, 3, 4}


def test_image_and_labels_stay_aligned_at_any_scale():
    image, annotation = striped_pair(64)
    augmentation = augment.Augmentation(32, (0.5, 2.0), MEAN_PIXEL, seed=2)
    for epoch in range(10):
        augmented_image, augmented_labels = augmentation(image, annotation, (0, epoch))
        labelled = augmented_labels[..., 0] > 0
        matching = augmented_image[..., 0][labelled] == 10 * augmented_labels[..., 0][labelled]
        assert matching.mean() > 0.7  # only the stripes' edges blend under the bilinear resize


def test_the_reader_augments_by_index_and_epoch_whichever_thread_reads(tmp_path):
    records = [write_pair(tmp_path, "pair%d" % index, 40 * index, image_size=(24, 16)) for index in range(5)]
    batches = []
    for _ in range(2):
        np.random.seed(0)  # the epoch order, as --seed sets it
        options = {"augment": augment.Augmentation(8, (0.5, 2.0), MEAN_PIXEL, seed=4), "ignore_label": 255}
        with make_reader(records, **options) as reader:
            batches.append([reader.next_batch(2) for _ in range(6)])
    for (images, labels), (images_again, labels_again) in zip(*batches):
        assert images.shape == (2, 8, 8, 3) and labels.shape == (2, 8, 8, 1)
        np.testing.assert_array_equal(images, images_again)
        np.testing.assert_array_equal(labels, labels_again)
    labels = np.concatenate([labels for _, labels in batches[0]])
    assert set(np.unique(labels)) == {1, 255}  # padded with the ignore label where the scale was below 1


@pytest.mark.parametrize("options", [{}, {"ignore_label": None}])
def test_without_an_ignore_label_labels_are_padded_with_0(tmp_path, options):
    records = [write_pair(tmp_path, "pair", 40)]
    options = dict(options, augment=augment.Augmentation(8, (0.5, 0.5), MEAN_PIXEL, seed=0))
    with make_reader(records, **options) as reader:
        _, labels = reader.next_batch(1)
    assert set(np.unique(labels)) == {0, 1}
