"""Big images in tiles (--tile_size): windows on mmsegmentation's slide grid, each predicted alone, their class
probabilities summed where they overlap (the argmax of the sum is that of the average).

The windows are swept row by row, left to right, and a pixel gets its label as soon as no later window covers it,
so what is kept between windows is the part of the row of windows the next row overlaps: tile_overlap x image
width x classes floats, never a per-class array of the whole image. The labels are uint8 (H, W)."""
import numpy as np


def grid(side, tile_size, overlap):
    """Window starts along a side: 0, S, 2S, ... (S = tile_size - overlap) while start + tile_size < side, then one
    window flush with the far edge (side - tile_size); a side <= tile_size is one window at 0."""
    stride = tile_size - overlap
    starts = list(range(0, max(side - tile_size, 0), stride))
    return starts + [max(side - tile_size, 0)]


def tiled_labels(image, tile_size, overlap, scores_of):
    """uint8 (H, W) labels of an RGB image: the argmax of the sum over the windows covering each pixel of
    scores_of(window) (float (h, w, classes), e.g. probabilities)."""
    height, width = image.shape[:2]
    tops, lefts = grid(height, tile_size, overlap), grid(width, tile_size, overlap)
    labels = np.empty((height, width), np.uint8)
    carried = None  # rows [top, end of the previous row of windows) x the whole width: the sums so far
    for row, top in enumerate(tops):
        bottom = min(top + tile_size, height)
        next_top = tops[row + 1] if row + 1 < len(tops) else height  # rows above it are final after this row
        carry = None
        carried_until = 0  # columns of `carried` already added to a window
        left_sums = None  # the previous window's sums over the columns this one shares with it
        for column, left in enumerate(lefts):
            right = min(left + tile_size, width)
            next_left = lefts[column + 1] if column + 1 < len(lefts) else width
            sums = np.array(scores_of(image[top:bottom, left:right]), np.float32)
            if carry is None:
                carry = np.zeros((bottom - next_top, width, sums.shape[-1]), np.float32)
            if left_sums is not None:
                sums[:, :left_sums.shape[1]] += left_sums
            if carried is not None and carried_until < right:
                sums[:carried.shape[0], carried_until - left:] += carried[:, carried_until:right]
                carried_until = right
            labels[top:next_top, left:next_left] = np.argmax(sums[:next_top - top, :next_left - left], axis=-1)
            carry[:, left:next_left] = sums[next_top - top:, :next_left - left]
            left_sums = sums[:, next_left - left:]
        carried = carry
    return labels
