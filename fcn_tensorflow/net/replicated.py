"""The training graph of several replicas (tf.distribute): graphs.build_model's Model with its step taken by every
replica on its slice of the batch, the loss weighted so the step is the one a single device takes on the global batch.
distribute.py (run) chooses the strategy and the session."""
import contextlib

import tensorflow as tf

from fcn_tensorflow.net import graphs
from fcn_tensorflow.net import network
from fcn_tensorflow.net.spec import Net, Training


def build_replicated_model(strategy, local_replicas, weights, mean_pixel, net=Net(), training=Training(),
                           palette=None):
    """graphs.build_model's Model with its training step taken by every replica of `strategy` on its slice of the
    batch fed to this worker (batch_size x local_replicas images), gradients summed over the replicas of all workers.

    Each replica's loss is weighted by its share of the pixels counted (share_of_worker_loss), so the step is the one
    a single device takes on the global batch. The validation loss, prediction and logits come from a one-device
    forward pass of the whole feed on the same variables: validating needs no other worker."""
    keep_probability, image, annotation = graphs.training_inputs()
    ignore_label = training.ignore_label
    with strategy.scope():
        global_step = tf.compat.v1.train.get_or_create_global_step()

        def replica_step():
            context = tf.distribute.get_replica_context()
            index = tf.get_static_value(context.replica_id_in_sync_group) % local_replicas
            images, annotations = tf.split(image, local_replicas)[index], tf.split(annotation, local_replicas)[index]
            _, logits = network.inference(images, keep_probability, weights, mean_pixel, net)
            replica_loss = network.segmentation_loss(logits, annotations, ignore_label, training.class_weights,
                                                         training.loss_sum)
            if not training.loss_sum:  # a sum needs no share: the replicas' sums add up to the batch's
                replica_loss = share_of_worker_loss(replica_loss, annotations, annotation, local_replicas,
                                                    context.num_replicas_in_sync, ignore_label)
            objective = replica_loss  # the replicas' gradients are summed: each takes its share of the decay
            if training.weight_decay:
                objective += training.weight_decay * network.kernels_l2() / context.num_replicas_in_sync
            step = network.train(objective, tf.compat.v1.trainable_variables(), training, global_step, net.debug)
            return step, replica_loss
        steps, replica_losses = strategy.extended.call_for_each_replica(replica_step)
        train_op = strategy.group(steps)
        loss = strategy.reduce(tf.distribute.ReduceOp.SUM, replica_losses, axis=None)
    with reusing(tf.compat.v1.global_variables()):
        pred_annotation, logits = network.inference(image, keep_probability, weights, mean_pixel,
                                                    net._replace(debug=False))
    validation_loss = network.segmentation_loss(logits, annotation, ignore_label, training.class_weights,
                                               training.loss_sum)
    train_summary, validation_summary = graphs.summaries(loss, image, annotation, pred_annotation, palette,
                                                         validation_loss)
    weights_finite = graphs.all_weights_finite()
    return graphs.Model(image, annotation, keep_probability, pred_annotation, logits, loss, train_op, global_step,
                        train_summary, validation_summary, graphs.pretrained_loader(weights), weights_finite,
                        validation_loss)


def share_of_worker_loss(replica_loss, annotations, worker_annotations, local_replicas, num_replicas,
                         ignore_label=None):
    """The replica's mean loss weighted by its share of the pixels counted (not ignore_label) in this worker's batch,
    divided by the number of workers: summed over all replicas, the mean loss of the global batch (and so its
    gradient), exactly when the workers count equal numbers of pixels (always without ignore_label). Sharing counts
    between workers would take an all-reduce before the gradients', which would miss a dead worker."""
    worker_counted = tf.maximum(counted_pixels(worker_annotations, ignore_label), 1.0)
    return replica_loss * counted_pixels(annotations, ignore_label) / worker_counted * local_replicas / num_replicas


def counted_pixels(annotations, ignore_label=None):
    """How many pixels of `annotations` the loss counts: all of them, or those not labelled ignore_label."""
    labels = annotations[..., 0]
    if ignore_label is None:
        return tf.cast(tf.size(labels), tf.float32)
    return tf.cast(tf.math.count_nonzero(tf.not_equal(labels, ignore_label)), tf.float32)  # != compares objects


@contextlib.contextmanager
def reusing(variables):
    """Within it, a variable made in variable scope S with name N is the one of `variables` named S/N: a second
    network on the same weights."""
    by_name = {var.op.name: var for var in variables}

    def existing(next_creator, **kwargs):
        scope = tf.compat.v1.get_variable_scope().name
        return by_name[(scope + "/" if scope else "") + kwargs["name"]]
    with tf.compat.v1.variable_creator_scope(existing):
        yield
