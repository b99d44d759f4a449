"""Shared fixtures: a narrow beta16-layout VGG19 file, tiny SceneParsing-layout data, a tiny VOC (+ SBD) layout, a
trained tiny model, fresh flags for a tiny run (the helpers they use are in helpers.py)."""
import shutil

import pytest

from fcn_tensorflow.data import demo
from tests.helpers import MODEL_FILE, NARROW_FC, NARROW_WIDTHS, NEW_SBD_IDS, run_main, tiny_flags


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: takes more than ~5 s (make test leaves these out, make test-all and CI run them)")


@pytest.fixture(scope="session")
def vgg_mat(tmp_path_factory):
    """Model_zoo-like folder holding a narrow VGG19 file in the beta16 layout; returns the folder."""
    model_dir = tmp_path_factory.mktemp("Model_zoo")
    demo.write_vgg_mat(str(model_dir / MODEL_FILE), NARROW_WIDTHS, NARROW_FC, num_imagenet_classes=10)
    return str(model_dir)


@pytest.fixture(scope="session")
def scene_data(tmp_path_factory):
    """Data_zoo-like folder holding ADEChallengeData2016/ with 8 training and 4 validation pairs."""
    data_dir = tmp_path_factory.mktemp("MIT_SceneParsing")
    demo.write_scene_dataset(str(data_dir), num_training=8, num_validation=4, min_size=32, max_size=64)
    return str(data_dir)


@pytest.fixture
def voc_dir(tmp_path):
    """VOCdevkit/VOC2012 with 6 training and 3 validation scenes, and an SBD release whose ids are two new ones,
    one of VOC val and one of VOC train: returns (data_dir, sbd_dir, VOC ids)."""
    data_dir, sbd_dir = str(tmp_path / "VOC"), str(tmp_path / "SBD")
    ids = demo.write_voc_dataset(data_dir, 6, 3, 32, 48)
    demo.write_sbd_dataset(sbd_dir, [NEW_SBD_IDS[0], ids["validation"][0], ids["training"][0]], NEW_SBD_IDS[1:],
                           32, 48)
    return data_dir, sbd_dir, ids


@pytest.fixture
def fcn_flags(vgg_mat, scene_data, tmp_path):
    """Flags for a tiny FCN run writing to a fresh logs_dir."""
    return tiny_flags(vgg_mat, scene_data, tmp_path / "logs")


@pytest.fixture
def run_fcn():
    """run_fcn(mode, **flags): FCN.py's main in this process; errors end in SystemExit as on the command line."""
    return run_main


@pytest.fixture(scope="module")
def trained_logs(vgg_mat, scene_data, tmp_path_factory):
    """A logs_dir holding the checkpoint of a tiny model trained for two steps, made once per test module."""
    flags = tiny_flags(vgg_mat, scene_data, tmp_path_factory.mktemp("trained") / "logs")
    run_main("train", max_iteration=2, save_every=10, **flags)
    return flags["logs_dir"]


@pytest.fixture
def trained_flags(fcn_flags, trained_logs):
    """fcn_flags whose logs_dir is a copy of the trained model's."""
    shutil.copytree(trained_logs, fcn_flags["logs_dir"])
    return fcn_flags


@pytest.fixture(scope="module")
def longer_trained_flags(vgg_mat, scene_data, tmp_path_factory):
    """Flags of a tiny model trained in float32 at the images' own scale until its decisions are clear: after 80
    to 150 steps bfloat16 agreed with float32 on 99.1-99.7% of the pixels, after 2 steps (trained_logs) on less. Quantised exports (test_export.py) need it too."""
    flags = tiny_flags(vgg_mat, scene_data, tmp_path_factory.mktemp("longer") / "logs")
    flags.update(learning_rate=1e-3, log_every=1000, image_size=64)
    run_main("train", max_iteration=150, save_every=1000, **flags)
    return flags
