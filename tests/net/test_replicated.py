"""replicated.py: each replica's share of the loss sums to the loss of the whole batch, ignored pixels or not, and
`reusing` builds a second network on the same variables."""
import numpy as np
import pytest
import tensorflow as tf

from fcn_tensorflow.net import network
from fcn_tensorflow.net import replicated


@pytest.mark.parametrize("ignore_label", [None, 3])
def test_the_replicas_shares_sum_to_the_mean_loss_of_the_batch(ignore_label):
    rng = np.random.RandomState(0)
    logits = rng.normal(size=(2, 4, 4, 5)).astype(np.float32)
    labels = rng.randint(0, 5, (2, 4, 4, 1)).astype(np.int32)
    labels[0, :3] = 3  # the replicas count different numbers of pixels once 3 is ignored
    with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
        whole = network.segmentation_loss(tf.constant(logits), tf.constant(labels), ignore_label)
        shares = [replicated.share_of_worker_loss(
            network.segmentation_loss(tf.constant(logits[index:index + 1]), tf.constant(labels[index:index + 1]),
                                      ignore_label),
            tf.constant(labels[index:index + 1]), tf.constant(labels), local_replicas=2, num_replicas=2,
            ignore_label=ignore_label) for index in range(2)]
        whole, shares = sess.run([whole, shares])
    assert sum(shares) == pytest.approx(whole, rel=1e-6)


def test_reusing_gives_the_variables_of_the_same_name():
    with tf.Graph().as_default():
        with tf.compat.v1.variable_scope("inference"):
            first = tf.compat.v1.Variable(1.0, name="W8")
        with replicated.reusing([first]), tf.compat.v1.variable_scope("inference"):
            second = tf.compat.v1.Variable(2.0, name="W8")
    assert second is first
