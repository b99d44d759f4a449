"""tiles.py: mmsegmentation's slide grid, the sums of overlapping windows, and memory that follows the tile (no
TensorFlow: the windows' scores come from a function of the window)."""
import tracemalloc

import numpy as np
import pytest

from fcn_tensorflow.run import tiles


def mmsegmentation_starts(side, crop, stride):
    """mmseg's EncoderDecoder.slide_inference, along one side."""
    grids = max(side - crop + stride - 1, 0) // stride + 1
    return [max(min(index * stride + crop, side) - crop, 0) for index in range(grids)]


@pytest.mark.parametrize("side", [1, 31, 32, 33, 64, 100, 127, 128, 129, 500, 1000])
@pytest.mark.parametrize("tile_size, overlap", [(32, 0), (32, 8), (64, 16), (64, 48), (128, 32)])
def test_the_grid_is_mmsegmentation_slide_grid(side, tile_size, overlap):
    starts = tiles.grid(side, tile_size, overlap)
    assert starts == mmsegmentation_starts(side, tile_size, tile_size - overlap)
    assert starts[0] == 0 and min(starts[-1] + tile_size, side) == side


def test_the_grid_as_the_issue_says():
    assert tiles.grid(1000, 512, 128) == [0, 384, 488]  # 0, S while start + N < side, then flush with the edge
    assert tiles.grid(512, 512, 128) == [0] and tiles.grid(300, 512, 128) == [0]


def position_scores(num_classes):
    """Scores of a window from its pixels (the image encodes each pixel's place) and the place in the window, in
    small integers: sums are exact, whatever their order."""
    def scores_of(window):
        height, width = window.shape[:2]
        rows, columns = np.mgrid[:height, :width]
        classes = np.arange(num_classes)
        return ((window[..., :1].astype(np.int64) * (classes + 1) + rows[..., None] * 3 + columns[..., None] * classes)
                % 17).astype(np.float32)
    return scores_of


def whole_image_sums(image, tile_size, overlap, scores_of):
    """The reference: one per-class array of the whole image, each window added in."""
    height, width = image.shape[:2]
    sums = None
    for top in tiles.grid(height, tile_size, overlap):
        for left in tiles.grid(width, tile_size, overlap):
            window = scores_of(image[top:top + tile_size, left:left + tile_size])
            if sums is None:
                sums = np.zeros((height, width, window.shape[-1]), np.float32)
            sums[top:top + tile_size, left:left + tile_size] += window
    return sums


@pytest.mark.parametrize("shape, tile_size, overlap", [((100, 130), 32, 8), ((70, 45), 32, 0), ((96, 96), 32, 24),
                                                        ((20, 50), 32, 8), ((200, 90), 64, 40), ((33, 64), 32, 31)])
def test_each_pixel_gets_the_argmax_of_the_windows_covering_it(shape, tile_size, overlap):
    image = np.random.RandomState(sum(shape)).randint(0, 255, shape + (3,)).astype(np.uint8)
    scores_of = position_scores(5)
    labels = tiles.tiled_labels(image, tile_size, overlap, scores_of)
    assert labels.shape == shape and labels.dtype == np.uint8
    np.testing.assert_array_equal(labels, np.argmax(whole_image_sums(image, tile_size, overlap, scores_of), axis=-1))


def test_an_image_of_one_window_is_its_argmax():
    image = np.random.RandomState(0).randint(0, 255, (30, 40, 3)).astype(np.uint8)
    scores_of = position_scores(7)
    np.testing.assert_array_equal(tiles.tiled_labels(image, 64, 16, scores_of), np.argmax(scores_of(image), axis=-1))


def test_memory_follows_the_tile_not_the_image():
    """No per-class array of the whole image: what is kept is a window's scores and the band of overlap rows."""
    height, width, num_classes, tile_size = 2048, 256, 32, 64
    image = np.zeros((height, width, 3), np.uint8)
    window_scores = np.ones((tile_size, tile_size, num_classes), np.float32)
    tracemalloc.start()
    try:
        tiles.tiled_labels(image, tile_size, tile_size // 4, lambda window: window_scores[:window.shape[0],
                                                                                          :window.shape[1]])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    whole_image_scores = height * width * num_classes * 4
    assert peak < whole_image_scores / 10, (peak, whole_image_scores)
