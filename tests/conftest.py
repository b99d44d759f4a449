"""Shared fixtures: a narrow beta16-layout VGG19 file and a tiny SceneParsing-layout dataset."""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import demo_data  # noqa: E402

NARROW_WIDTHS = (4, 8, 8, 16, 16)
NARROW_FC = 16
IMAGE_SIZE = 32


@pytest.fixture(scope="session")
def vgg_mat(tmp_path_factory):
    """Model_zoo-like folder holding a narrow imagenet-vgg-verydeep-19.mat; returns the folder."""
    model_dir = tmp_path_factory.mktemp("Model_zoo")
    demo_data.write_vgg_mat(str(model_dir / "imagenet-vgg-verydeep-19.mat"), NARROW_WIDTHS, NARROW_FC,
                            num_imagenet_classes=10)
    return str(model_dir)


@pytest.fixture(scope="session")
def scene_data(tmp_path_factory):
    """Data_zoo-like folder holding ADEChallengeData2016/ with 8 training and 4 validation pairs."""
    data_dir = tmp_path_factory.mktemp("MIT_SceneParsing")
    demo_data.write_scene_dataset(str(data_dir), num_training=8, num_validation=4, min_size=32, max_size=64)
    return str(data_dir)


@pytest.fixture
def fcn_flags(vgg_mat, scene_data, tmp_path):
    """Command-line flags for a tiny FCN run writing to a fresh logs_dir."""
    return {"model_dir": vgg_mat, "data_dir": scene_data, "logs_dir": str(tmp_path / "logs") + "/",
            "fc_width": NARROW_FC, "image_size": IMAGE_SIZE, "batch_size": 2, "log_every": 1}


@pytest.fixture
def run_fcn():
    """run_fcn(mode, **flags): run FCN.py's main in this process with those flags, then reset them."""
    import FCN

    def run(mode, **flags):
        argv = ["FCN.py", "--mode=" + mode] + ["--%s=%s" % item for item in flags.items()]
        FCN.FLAGS.unparse_flags()
        FCN.FLAGS(argv)
        try:
            FCN.main([])
        finally:
            FCN.FLAGS.unparse_flags()
    return run
