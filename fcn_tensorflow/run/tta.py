"""Test-time augmentation (--tta=flip, --scales) and big images in tiles (--tile_size, tiles.py) for evaluate and
predict: the labels of an image are the argmax of its class probabilities summed over its copies, the image and
its mirror (mirrored back) at each scale, each resized back to the image's size. The mirror's and the image's are
added first, so a mirrored image gets exactly the mirrored labels. No TensorFlow here: the predictor is run."""
import collections

import numpy as np

from fcn_tensorflow.run import tiles

TTA_CHOICES = ("none", "flip")
Options = collections.namedtuple("Options", ["flip", "scales", "tile_size", "tile_overlap"])


def scales_of(values):
    """The floats of --scales (strings or numbers), or None unless they are all finite and > 0."""
    try:
        scales = tuple(float(value) for value in values)
    except (TypeError, ValueError):
        return None
    return scales if scales and all(np.isfinite(scale) and scale > 0 for scale in scales) else None


def options(tta, scales, tile_size, tile_overlap):
    """The Options of these flag values, or None when they ask for the plain network (no mirror, the one scale 1,
    no tiles): then evaluate and predict run exactly as without them."""
    chosen = Options(tta == "flip", scales_of(scales), tile_size, tile_overlap)
    return None if (not chosen.flip and chosen.scales == (1.0,) and not tile_size) else chosen


def net_size(size, scale, infer_size):
    """[height, width] the net sees for a copy at `scale` of an image of `size`: the image's own (--infer_size=0) or
    the infer_size square, scaled; at least 1."""
    base = size if not infer_size else (infer_size, infer_size)
    return [max(1, int(round(side * scale))) for side in base]


def summed_probabilities(sess, predictor, image, flip, scales):
    """float32 (H, W, classes): the sum over the copies of an RGB image of their class probabilities at its size."""
    def probabilities(copy, scale):
        feed = {predictor.images: copy[np.newaxis],
                predictor.net_size: net_size(copy.shape[:2], scale, predictor.infer_size)}
        return sess.run(predictor.probabilities, feed_dict=feed)[0]

    total = None
    for scale in scales:
        scaled = probabilities(image, scale)
        if flip:
            scaled += probabilities(image[:, ::-1], scale)[:, ::-1]  # one sum of two: the same for the mirror
        total = scaled if total is None else total + scaled
    return total


def labeller(sess, predictor, chosen):
    """labels_of(image) -> uint8 (H, W) for the Options `chosen`, with a predictor built sized=True
    (graphs.build_predictor)."""
    def scores_of(image):
        return summed_probabilities(sess, predictor, image, chosen.flip, chosen.scales)

    if chosen.tile_size:
        return lambda image: tiles.tiled_labels(image, chosen.tile_size, chosen.tile_overlap, scores_of)
    return lambda image: np.argmax(scores_of(image), axis=-1).astype(np.uint8)
