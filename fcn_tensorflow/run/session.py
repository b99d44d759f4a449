"""Sessions and checkpoints: make a session, restore the newest readable checkpoint, save, and stop on signals."""
import contextlib
import os
import signal

import tensorflow as tf
from tensorflow.core.protobuf import rewriter_config_pb2

from fcn_tensorflow.net import layers as utils
from fcn_tensorflow.run import checkpoints
from fcn_tensorflow.run.precision import FLOAT16, FLOAT32


class UnreadableCheckpoints(IOError):
    """Checkpoints exist but none of them reads."""


def make_session(xla=False, precision=FLOAT32):
    return tf.compat.v1.Session(config=session_config(xla, precision))


def session_config(xla=False, precision=FLOAT32):
    """One op at a time on all cores: oneDNN's kernels use every core by themselves, so running two ops side by
    side only makes them fight over the caches. distribute.py adds what its strategies need.

    precision "bfloat16" or "float16": Grappler rewrites the graph to compute convolutions and matmuls in that type
    (see mixed_precision_rewrite); variables, the loss and what is fetched stay float32."""
    if "--tf_xla_cpu_global_jit" not in os.environ.get("TF_XLA_FLAGS", ""):  # lets xla auto-cluster on a CPU too
        os.environ["TF_XLA_FLAGS"] = (os.environ.get("TF_XLA_FLAGS", "") + " --tf_xla_cpu_global_jit").strip()
    config = tf.compat.v1.ConfigProto(inter_op_parallelism_threads=1)
    if xla:
        config.graph_options.optimizer_options.global_jit_level = tf.compat.v1.OptimizerOptions.ON_1
    if precision != FLOAT32:
        mixed_precision_rewrite(config.graph_options.rewrite_options, precision)
    return config


def mixed_precision_rewrite(rewrite_options, precision):
    """Turn on Grappler's float16 (CUDA) or bfloat16 (oneDNN) rewrite.

    The bfloat16 one would also run Softmax in bfloat16 and leave the conv6 patches in float32: its lists are
    adjusted through the environment variables it reads (a value the user set is kept)."""
    if precision == FLOAT16:
        rewrite_options.auto_mixed_precision = rewriter_config_pb2.RewriterConfig.ON
        return
    os.environ.setdefault("TF_AUTO_MIXED_PRECISION_GRAPH_REWRITE_INFERLIST_REMOVE", "Softmax")
    os.environ.setdefault("TF_AUTO_MIXED_PRECISION_GRAPH_REWRITE_INFERLIST_ADD", "ExtractImagePatches")
    rewrite_options.auto_mixed_precision_onednn_bfloat16 = rewriter_config_pb2.RewriterConfig.ON


def restore_or_initialize(sess, pretrained, saver, found_checkpoints, init_checkpoint=None):
    """Restore the newest of found_checkpoints that reads whole, or, when there is none, start from the VGG
    weights and then from init_checkpoint (see initialize_from). Returns the path restored, or None.

    Checkpoints that do not read are skipped with one line each; when none reads, UnreadableCheckpoints
    (starting from the VGG weights would hide them). A checkpoint from the original (no global_step)
    restores too; what it lacks starts fresh. `saver` takes over the list of earlier checkpoints."""
    sess.run(tf.compat.v1.global_variables_initializer())
    reasons = []
    for newest in range(len(found_checkpoints) - 1, -1, -1):
        path = found_checkpoints[newest]
        try:
            restore_checkpoint(sess, path)
        except tf.errors.OpError as error:
            reasons.append("%s: %s" % (os.path.basename(path), short_reason(error)))
            print("Skipping checkpoint %s: it cannot be read (%s)" % (path, short_reason(error)))
            continue
        saver.recover_last_checkpoints(found_checkpoints[:newest + 1])
        pretrained.release()
        return path
    if reasons:
        raise _unreadable(found_checkpoints, reasons)
    pretrained.load(sess)
    pretrained.release()
    if init_checkpoint:
        initialize_from(sess, init_checkpoint)
    return None


def initialize_from(sess, checkpoint):
    """Restore the network variables (the trainable ones and the model variables, e.g. upsampling kernels kept fixed)
    of the same name and shape as in `checkpoint` (another model's, e.g. of another dataset); the others, the
    optimizer's state and the step count keep their fresh start."""
    try:
        reader = tf.train.load_checkpoint(checkpoint)
        saved = reader.get_variable_to_shape_map()
        trainable = tf.compat.v1.trainable_variables()
        network = trainable + [var for var in tf.compat.v1.model_variables() if var not in trainable]
        same = [var for var in network if saved.get(var.op.name) == var.shape.as_list()]
        if same:
            restore_variables(sess, checkpoint, reader, same)
    except tf.errors.OpError as error:
        raise UnreadableCheckpoints("--init_checkpoint %s cannot be read (%s)" % (checkpoint, short_reason(error)))
    fresh = [var.op.name for var in network if var not in same]
    print("Initialised %d of %d network variables from %s" % (len(same), len(network), checkpoint)
          + ("; fresh (absent there, or of another shape): %s" % ", ".join(fresh) if fresh else ""))


def newest_listable(found_checkpoints):
    """(path, {variable name: shape}) of the newest checkpoint whose index reads; UnreadableCheckpoints if none."""
    reasons = []
    for path in reversed(found_checkpoints):
        try:
            return path, dict(tf.train.list_variables(path))
        except tf.errors.OpError as error:
            reasons.append("%s: %s" % (os.path.basename(path), short_reason(error)))
    raise _unreadable(found_checkpoints, reasons)


def checkpoint_variable_shape(found_checkpoints, name):
    """The shape of variable `name` in the newest listable checkpoint; None without one (or when none lists:
    restoring says why)."""
    try:
        return newest_listable(found_checkpoints)[1].get(name) if found_checkpoints else None
    except UnreadableCheckpoints:
        return None


def _unreadable(found_checkpoints, reasons):
    return UnreadableCheckpoints("no readable checkpoint in %s (%s)"
                                 % (os.path.dirname(found_checkpoints[0]) or ".", "; ".join(reasons)))


NOT_REASONS = ("Graph execution error", "From /job:")  # a header, and the name of the worker that reports


def short_reason(error):
    """The line of a TensorFlow error that says what is wrong, without the traceback of the op that failed."""
    lines = [line.strip() for line in error.message.split("Original stack trace")[0].splitlines()
             if line.strip() and not line.strip().startswith(NOT_REASONS)]
    nodes = [index for index, line in enumerate(lines) if line.startswith("Node: ")]
    reason = lines[nodes[-1] + 1] if nodes and nodes[-1] + 1 < len(lines) else (lines or [type(error).__name__])[0]
    return reason if len(reason) <= 200 else reason[:197] + "..."


def restore_checkpoint(sess, checkpoint):
    """Restore the graph's variables that `checkpoint` holds; one of another type than saved (a bfloat16 network,
    float32 checkpoints) takes the saved value cast."""
    reader = tf.train.load_checkpoint(checkpoint)
    saved = reader.get_variable_to_shape_map()
    variables = tf.compat.v1.global_variables()
    present = [var for var in variables if var.op.name in saved]
    fresh = [var.op.name for var in variables if var.op.name not in saved]
    for var in present:
        if list(saved[var.op.name]) != var.shape.as_list():
            raise ValueError("%s holds %s with shape %s, the graph wants %s: check --fc_width and the VGG file."
                             % (checkpoint, var.op.name, saved[var.op.name], var.shape.as_list()))
    restore_variables(sess, checkpoint, reader, present)
    print("Model restored...", checkpoint)
    if fresh:
        print("Initialised fresh (not in the checkpoint): " + ", ".join(fresh))


def restore_variables(sess, checkpoint, reader, variables):
    """Restore `variables` from `checkpoint` (read by `reader`); one of another type than saved (a bfloat16 network,
    float32 checkpoints) takes the saved value cast."""
    saved_types = reader.get_variable_to_dtype_map()
    cast = [var for var in variables if saved_types[var.op.name] != var.dtype.base_dtype]
    same = [var for var in variables if saved_types[var.op.name] == var.dtype.base_dtype]
    if same or not cast:  # an empty list is refused: a checkpoint holding none of the graph's variables
        tf.compat.v1.train.Saver(same).restore(sess, checkpoint)
    if cast:
        utils.PretrainedLoader([(var, reader.get_tensor(var.op.name)) for var in cast]).load(sess)


def save_checkpoint(sess, model, saver, logs_dir, step):
    """Write model.ckpt-<step>; never with non-finite weights. A failed write is reported and training goes on:
    TF writes the state file last, so the earlier checkpoints stay the ones listed."""
    if not sess.run(model.weights_finite):
        raise FloatingPointError("Step %d: the weights are no longer finite; nothing was saved, the newest checkpoint "
                                 "in %s is the last good one. Lower --learning_rate and resume." % (step, logs_dir))
    try:
        return saver.save(sess, os.path.join(logs_dir, checkpoints.CHECKPOINT_NAME), global_step=step)
    except (tf.errors.OpError, OSError) as error:
        print("Could not save the checkpoint of step %d (%s); the earlier checkpoints in %s are kept."
              % (step, getattr(error, "message", error), logs_dir))
        return None


@contextlib.contextmanager
def stop_requests(signals=(signal.SIGINT, signal.SIGTERM)):
    """Within it, Ctrl-C or SIGTERM only appends the signal's name to the yielded list; a second one acts as usual."""
    received = []
    previous = {}

    def request_stop(signum, frame):
        received.append(signal.Signals(signum).name)
        for restored, handler in previous.items():
            signal.signal(restored, handler)
    for signum in signals:
        previous[signum] = signal.signal(signum, request_stop)
    try:
        yield received
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
