"""tta.py: test-time augmentation (--tta=flip, --scales) and tiles (--tile_size) in predict and evaluate: a mirrored
image gets exactly the mirrored labels, the plain flags change nothing, every label map is at the input's size, and
evaluate scores exactly what predict writes."""
import glob
import os

import imageio.v2 as imageio
import numpy as np
import pytest

from fcn_tensorflow.run import tta
from tests.helpers import read_metrics, validation_folder


def test_scales_are_numbers_above_zero():
    assert tta.scales_of(["0.75", "1", "1.25"]) == (0.75, 1.0, 1.25)
    assert tta.scales_of(["0.5"]) == (0.5,)
    for bad in (["0"], ["-1"], ["a"], [], ["nan"], ["inf"]):
        assert tta.scales_of(bad) is None, bad


def test_the_plain_flags_ask_for_no_augmentation():
    assert tta.options("none", ["1"], 0, 0) is None and tta.options("none", ["1.0"], 0, 0) is None
    assert tta.options("flip", ["1"], 0, 0) == tta.Options(True, (1.0,), 0, 0)
    assert tta.options("none", ["0.5"], 0, 0).scales == (0.5,)
    assert tta.options("none", ["1"], 64, 16).tile_size == 64


def test_the_net_sees_the_image_or_the_infer_size_square_scaled():
    assert tta.net_size((37, 53), 1.0, 0) == [37, 53] and tta.net_size((37, 53), 0.5, 0) == [18, 26]
    assert tta.net_size((37, 53), 1.25, 32) == [40, 40] and tta.net_size((3, 1), 0.1, 0) == [1, 1]


def label_maps(folder):
    return {os.path.basename(path)[:-4]: imageio.imread(path) for path in glob.glob(os.path.join(folder, "*.png"))
            if not path.endswith(("_color.png", "_overlay.png"))}


def scenes_and_mirrors(flags, folder):
    """The validation scenes (odd sizes: the net pads them) and their mirrors, as PNGs in `folder`."""
    os.makedirs(folder)
    for path in sorted(glob.glob(os.path.join(validation_folder(flags, "images"), "*.jpg"))):
        image = imageio.imread(path)
        stem = os.path.basename(path)[:-4]
        imageio.imwrite(os.path.join(folder, stem + ".png"), image)
        imageio.imwrite(os.path.join(folder, stem + "_mirror.png"), image[:, ::-1])
    return folder


@pytest.mark.parametrize("flags", [{"tta": "flip"}, {"tta": "flip", "scales": "0.75,1,1.3", "infer_size": 0}])
def test_flip_predicts_a_mirrored_image_as_the_mirrored_labels(trained_flags, run_fcn, tmp_path, flags):
    photos = scenes_and_mirrors(trained_flags, str(tmp_path / "photos"))
    run_fcn("predict", input=photos, output_dir=str(tmp_path / "out"), **dict(trained_flags, **flags))
    labels = label_maps(str(tmp_path / "out"))
    stems = [stem for stem in labels if not stem.endswith("_mirror")]
    assert len(stems) == 4
    for stem in stems:
        np.testing.assert_array_equal(labels[stem + "_mirror"], labels[stem][:, ::-1])


@pytest.mark.slow
def test_scales_one_is_plain_predict_and_any_scale_is_at_the_input_size(trained_flags, run_fcn, tmp_path):
    photos = scenes_and_mirrors(trained_flags, str(tmp_path / "photos"))
    runs = {"plain": {}, "one": {"scales": "1", "tta": "none"}, "half": {"scales": "0.5", "infer_size": 0},
            "tiles": {"tile_size": 32, "tile_overlap": 8, "infer_size": 0}, "tiles_scaled": {"tile_size": 32,
                                                                                             "scales": "2"}}
    for name, flags in runs.items():
        run_fcn("predict", input=photos, output_dir=str(tmp_path / name), **dict(trained_flags, **flags))
    plain = label_maps(str(tmp_path / "plain"))
    assert len(plain) == 8
    for name in runs:
        labels = label_maps(str(tmp_path / name))
        assert {stem: maps.shape for stem, maps in labels.items()} == {stem: maps.shape for stem, maps in plain.items()}
        if name == "one":
            for stem in plain:
                np.testing.assert_array_equal(labels[stem], plain[stem])


@pytest.mark.parametrize("flags", [{"tta": "flip", "scales": "0.75,1.25"},
                                   {"tile_size": 32, "tile_overlap": 16, "infer_size": 0, "scales": "0.5,1"}])
def test_evaluate_scores_what_predict_writes(trained_flags, run_fcn, tmp_path, flags):
    augmented = dict(trained_flags, **flags)
    run_fcn("evaluate", **augmented)
    scores = read_metrics(trained_flags)
    run_fcn("evaluate", **trained_flags)
    assert read_metrics(trained_flags) != scores  # the augmentation changes what is scored
    written = str(tmp_path / "written")
    run_fcn("predict", input=validation_folder(trained_flags, "images"), output_dir=written, **augmented)
    run_fcn("evaluate", predictions_dir=written, **trained_flags)
    assert read_metrics(trained_flags) == dict(scores, checkpoint=None)

