"""spec.py: the checkpoint names it gives are those of the variables the network builds, for every head; it loads
no TensorFlow (the command line reads it first)."""

import pytest
import tensorflow as tf

from fcn_tensorflow.data import matconvnet
from fcn_tensorflow.net import graphs
from fcn_tensorflow.net import spec
from tests.helpers import TENSORFLOW_LOADED, run_python, MODEL_URL, NARROW_FC


@pytest.mark.parametrize("head", spec.HEADS)
def test_the_names_are_the_network_s_variables(vgg_mat, head):
    weights, mean_pixel = matconvnet.load_vgg(vgg_mat, MODEL_URL, fc_width=NARROW_FC)
    with tf.Graph().as_default():
        graphs.build_model(weights, mean_pixel, spec.Net(num_classes=5, fc_width=NARROW_FC, head=head))
        variables = {var.op.name: var.shape.as_list() for var in tf.compat.v1.global_variables()}
    for layer in matconvnet.CONV_LAYERS + matconvnet.FC_LAYERS:
        if layer.startswith(("conv", "fc")):
            assert set(spec.checkpoint_names(layer)) <= set(variables), layer
    assert variables[spec.CLASS_SCORE_BIAS[head]] == [5]
    assert spec.checkpoint_names("conv1_1") == ("inference/conv1_1_w", "inference/conv1_1_b")
    assert spec.checkpoint_names("fc6") == ("inference/W6", "inference/b6")


def test_reading_the_spec_loads_no_tensorflow():
    words, stderr = run_python("from fcn_tensorflow.net import spec" + TENSORFLOW_LOADED)
    assert words == ["False"], stderr
