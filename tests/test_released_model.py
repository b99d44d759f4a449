"""The end-to-end check with the paper's real VOC FCN-8s: import fcn8s-heavy-pascal.caffemodel, predict the reference
repository's demo/image.jpg and compare with its demo/output.png, the colour picture of Caffe's own prediction
(tests/reference_demo/, with its licence). The real file (about 500 MB) cannot be made here, so these two tests run
only where a user has put it in Model_zoo/; the colour-to-label mapping they rely on is checked always."""
import os

import numpy as np
import pytest
from PIL import Image

from fcn_tensorflow.data import voc
from tests import caffe_reference
from tests.helpers import PROJECT_DIR, fcn_command

MODEL_FILE = os.path.join(PROJECT_DIR, "Model_zoo", "fcn8s-heavy-pascal.caffemodel")
MODEL_URL = "http://dl.caffe.berkeleyvision.org/fcn8s-heavy-pascal.caffemodel"
DEMO_DIR = os.path.join(PROJECT_DIR, "tests", "reference_demo")
DEMO_IMAGE = os.path.join(DEMO_DIR, "image.jpg")
VOC_MEAN_BGR = (104.00698793, 116.66876762, 122.67891434)  # infer.py's
AGREEMENT = 0.999  # the share of pixels that must get Caffe's label (float sums in another order may flip a few)

needs_the_real_model = pytest.mark.skipif(
    not os.path.exists(MODEL_FILE),
    reason=f"needs the released VOC FCN-8s at {MODEL_FILE} (download {MODEL_URL})")


def make_palette(num_classes):
    """The reference's vis.make_palette: the bits of each label spread over the high bits of r, g and b."""
    palette = np.zeros((num_classes, 3), dtype=np.uint8)
    for label in range(num_classes):
        code, bit = label, 0
        while code:
            for channel in range(3):
                palette[label, channel] |= ((code >> channel) & 1) << (7 - bit)
            code >>= 3
            bit += 1
    return palette


def reference_labels():
    """demo/output.png's colours mapped back to labels, (H, W); every colour must be one of VOC's 21."""
    picture = np.array(Image.open(os.path.join(DEMO_DIR, "output.png")).convert("RGB"))
    matches = np.all(picture[:, :, None, :] == make_palette(21)[None, None], axis=-1)
    assert np.all(matches.sum(axis=-1) == 1), "output.png holds colours that are not VOC classes"
    return matches.argmax(axis=-1)


def agreement(labels, expected):
    assert labels.shape == expected.shape, (labels.shape, expected.shape)
    return np.mean(labels == expected)


def test_the_reference_output_is_a_voc_label_map_of_the_demo_image():
    """output.png, read back through VOC's palette (the reference's make_palette, ours the same), labels every pixel
    of image.jpg with one of the classes Caffe's FCN-8s finds there: background, bicycle and person."""
    np.testing.assert_array_equal(make_palette(21), voc.voc_palette()[:21])
    expected = reference_labels()
    assert expected.shape == np.array(Image.open(DEMO_IMAGE)).shape[:2] == (500, 334)
    present = dict(zip(*np.unique(expected, return_counts=True)))
    assert sorted(present) == [0, 2, 15]
    assert all(count > 0.2 * expected.size for count in present.values())


@needs_the_real_model
def test_import_and_predict_of_the_released_fcn8s_give_caffe_s_labels(tmp_path):
    """What a user runs: FCN.py --mode=import, then --mode=predict at the image's own size."""
    logs_dir, output_dir = tmp_path / "voc-fcn8s", tmp_path / "out"
    imported = fcn_command("--mode=import", "--caffemodel=" + MODEL_FILE, f"--logs_dir={logs_dir}", timeout=900)
    assert imported.returncode == 0, imported.stdout + imported.stderr
    predicted = fcn_command("--mode=predict", f"--logs_dir={logs_dir}", "--input=" + DEMO_IMAGE,
                            f"--output_dir={output_dir}", timeout=900)
    assert predicted.returncode == 0, predicted.stdout + predicted.stderr
    labels = np.array(Image.open(output_dir / "image.png"))
    assert agreement(labels, reference_labels()) >= AGREEMENT


@needs_the_real_model
def test_the_numpy_caffe_reference_gives_caffe_s_labels_with_the_released_fcn8s():
    """The oracle the TensorFlow port is tested against, on the real weights: proof that it is Caffe's forward."""
    from fcn_tensorflow.data import caffemodel
    net = caffemodel.read_net(MODEL_FILE)
    blobs = {layer.name: layer.blobs for layer in net.layers if layer.blobs}
    image = np.array(Image.open(DEMO_IMAGE).convert("RGB"))
    labels = caffe_reference.labels("voc-fcn8s", blobs, image, VOC_MEAN_BGR)
    assert agreement(labels, reference_labels()) >= AGREEMENT
