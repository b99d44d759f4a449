"""Data-parallel training on tf.distribute: the run --replicas and TF_CONFIG ask for, its session and graph, the
share of the data each worker reads, and how the workers start and stop together.

One class per kind of run, each adding to the one before:
- OneDevice: no strategy at all, the graph and session of a run without this module.
- Mirrored: MirroredStrategy over N GPUs of this machine, or over N logical CPU devices (for checking).
- MultiWorker: MultiWorkerMirroredStrategy over the machines TF_CONFIG names. Every worker builds the same graph,
  runs it on its own tf.distribute.Server, and runs every step with collectives in the same order; only the
  chief writes.
"""
import contextlib
import json
import os

import tensorflow as tf

from fcn_tensorflow.net import graphs
from fcn_tensorflow.net.replicated import build_replicated_model
from fcn_tensorflow.run import checkpoints
from fcn_tensorflow.run import session
from fcn_tensorflow.run.precision import FLOAT32

LOST_WORKER_ERRORS = (tf.errors.UnavailableError, tf.errors.DeadlineExceededError, tf.errors.AbortedError,
                      tf.errors.CancelledError)


def make_cluster(replicas=None, worker_timeout=300.0, tf_config=""):
    """The run asked for: TF_CONFIG set -> MultiWorker; else --replicas (default: the visible GPUs, or 1)."""
    gpus = len(tf.config.list_physical_devices("GPU"))
    if tf_config:
        if replicas not in (None, max(gpus, 1)):
            raise ValueError("with TF_CONFIG each worker trains one replica per visible GPU, or one on a machine "
                             "without GPUs: here %d, not --replicas=%d (run more workers, or choose the GPUs with "
                             "CUDA_VISIBLE_DEVICES)" % (max(gpus, 1), replicas))
        check_tf_config(tf_config)
        return MultiWorker(worker_timeout)
    replicas = replicas or max(gpus, 1)
    if gpus and replicas > gpus:
        raise ValueError("--replicas=%d but this machine has %d GPUs" % (replicas, gpus))
    return Mirrored(replicas, use_gpus=gpus > 0) if replicas > 1 else OneDevice()


def check_tf_config(tf_config):
    """ValueError unless TF_CONFIG names a cluster of chief and worker addresses and this machine's task in it."""
    example = ('e.g. TF_CONFIG=\'{"cluster": {"worker": ["host1:2222", "host2:2222"]}, "task": {"type": "worker", '
               '"index": 0}}\' on host1 and "index": 1 on host2')
    try:
        config = json.loads(tf_config)
        task, cluster = config["task"], config["cluster"]
        addresses = cluster[task["type"]]
        if task["type"] not in ("chief", "worker") or not 0 <= task["index"] < len(addresses):
            raise ValueError("task %s" % task)
    except (ValueError, TypeError, KeyError) as error:
        raise ValueError("TF_CONFIG=%s does not name this machine's task (chief or worker) in a cluster (%s: %s); %s"
                         % (tf_config, type(error).__name__, error, example))


class OneDevice(object):
    """One device and no strategy: exactly the graph, session and training loop of a run without tf.distribute."""
    local_replicas = num_replicas = num_workers = 1
    worker_index = 0
    is_chief = True

    def describe(self, batch_size):
        return None

    def session(self, xla=False, precision=FLOAT32):
        return session.make_session(xla, precision)

    def build_model(self, weights, mean_pixel, net, training, palette=None):
        return graphs.build_model(weights, mean_pixel, net, training, palette)

    def shard(self, records):
        """The records this worker reads."""
        return records

    def start(self, sess, restore):
        """Bring the session's variables to their starting values: `restore()` runs on the chief."""
        restore()

    def stop_everywhere(self, sess, requests):
        """Why every worker stops after this step (the first of `requests`, this worker's signals), or None."""
        return requests[0] if requests else None

    def training_lock(self, logs_dir):
        """The training lock of logs_dir (made if missing)."""
        return checkpoints.TrainingLock(logs_dir)

    def summary_writer(self, logs_dir, run, graph=None):
        """TensorBoard's writer of logs_dir/run."""
        return tf.compat.v1.summary.FileWriter(os.path.join(logs_dir, run), graph)

    def lost_workers_explained(self):
        return contextlib.nullcontext()

    def resume_hint(self, logs_dir):
        return "Run the same command again to resume from the newest checkpoint in %s" % logs_dir


class Mirrored(OneDevice):
    """MirroredStrategy: one replica per GPU, or per logical CPU device, of this machine."""

    def __init__(self, replicas, use_gpus):
        self.devices = ["/%s:%d" % ("gpu" if use_gpus else "cpu", index) for index in range(replicas)]
        self.strategy = tf.distribute.MirroredStrategy(self.devices)
        self.local_replicas = self.num_replicas = replicas

    def describe(self, batch_size):
        return ("Training %d replicas (%s), global batch %d = --batch_size %d x %d"
                % (self.num_replicas, ", ".join(self.devices), batch_size * self.num_replicas, batch_size,
                   self.num_replicas))

    def config(self, xla=False, precision=FLOAT32):
        config = session.session_config(xla, precision)
        if self.devices[0].startswith("/cpu"):
            config.device_count["CPU"] = self.local_replicas
        return config

    def session(self, xla=False, precision=FLOAT32):
        return tf.compat.v1.Session(config=self.config(xla, precision))

    def build_model(self, weights, mean_pixel, net, training, palette=None):
        return build_replicated_model(self.strategy, self.local_replicas, weights, mean_pixel, net, training, palette)


class MultiWorker(Mirrored):
    """MultiWorkerMirroredStrategy over TF_CONFIG's cluster: one replica per GPU of each worker (one on a CPU)."""

    def __init__(self, worker_timeout):
        resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
        self.strategy = tf.distribute.MultiWorkerMirroredStrategy(cluster_resolver=resolver)
        self.devices = self.strategy.extended.worker_devices
        self.local_replicas, self.num_replicas = len(self.devices), self.strategy.num_replicas_in_sync
        self.is_chief = self.strategy.extended.should_checkpoint
        cluster = resolver.cluster_spec()
        tasks = [(job, index) for job in ("chief", "worker") if job in cluster.jobs
                 for index in range(cluster.num_tasks(job))]
        self.worker_index, self.num_workers = tasks.index((resolver.task_type, resolver.task_id)), len(tasks)
        self.worker_timeout = worker_timeout
        try:
            self.server = tf.distribute.Server(cluster, job_name=resolver.task_type, task_index=resolver.task_id,
                                               config=self.config(), start=True)
        except tf.errors.OpError as error:
            raise OSError("cannot start this worker's server at %s (%s): is another program using that port?"
                          % (cluster.task_address(resolver.task_type, resolver.task_id), error.message)) from None

    def describe(self, batch_size):
        return ("Worker %d of %d (%s), %s; %d replicas in all, global batch %d = --batch_size %d x %d"
                % (self.worker_index, self.num_workers, "the chief: it writes logs_dir" if self.is_chief
                   else "not the chief: it writes nothing", ", ".join(self.devices), self.num_replicas,
                   batch_size * self.num_replicas, batch_size, self.num_replicas))

    def config(self, xla=False, precision=FLOAT32):
        config = self.strategy.update_config_proto(session.session_config(xla, precision))
        config.operation_timeout_in_ms = int(1000 * self.worker_timeout)  # a frozen or absent worker would hang us
        return config

    def session(self, xla=False, precision=FLOAT32):
        return tf.compat.v1.Session(self.server.target, config=self.config(xla, precision))

    def build_model(self, weights, mean_pixel, net, training, palette=None):
        """The replicated Model, whose step also tells every worker whether one of them was asked to stop; and the
        op that gives every worker the chief's values."""
        model = super(MultiWorker, self).build_model(weights, mean_pixel, net, training, palette)
        self._chief_values = chief_values_everywhere(self.strategy, tf.compat.v1.global_variables())
        stop_asked, self._stop_seen = (local_variable(name) for name in ("stop_asked", "stop_seen"))
        self._ask_to_stop = stop_asked.assign(1.0)
        with self.strategy.scope():
            stop_anywhere = self.strategy.reduce(tf.distribute.ReduceOp.MEAN, stop_asked.read_value(), axis=None)
        return model._replace(train_op=tf.group(model.train_op, self._stop_seen.assign(stop_anywhere)))

    def shard(self, records):
        return shard(records, self.worker_index, self.num_workers)

    def start(self, sess, restore):
        """The chief restores; then every worker takes the chief's values (its logs_dir need not be shared)."""
        if self.is_chief:
            restore()
        else:
            sess.run(tf.compat.v1.global_variables_initializer())
        sess.run([self._chief_values, tf.compat.v1.local_variables_initializer()])

    def stop_everywhere(self, sess, requests):
        """A stop asked here goes to the others with the next step; after it, all of them stop (one step after the
        signal). Not a collective of its own: a step's collectives notice a dead worker at once, a lone small one
        may wait for it until --worker_timeout."""
        if sess.run(self._stop_seen):
            return requests[0] if requests else "stop asked on another worker"
        if requests:
            sess.run(self._ask_to_stop)
        return None

    def training_lock(self, logs_dir):
        """The chief's lock of its logs_dir; the other workers write nothing there, not even the folder."""
        return super(MultiWorker, self).training_lock(logs_dir) if self.is_chief else contextlib.nullcontext()

    def summary_writer(self, logs_dir, run, graph=None):
        return super(MultiWorker, self).summary_writer(logs_dir, run, graph) if self.is_chief else NoSummaryWriter()

    def resume_hint(self, logs_dir):
        return "Run the same command again on every worker to resume from the chief's newest checkpoint"

    @contextlib.contextmanager
    def lost_workers_explained(self):
        """A collective that failed because a worker died or froze ends in one line saying what to do."""
        try:
            yield
        except LOST_WORKER_ERRORS as error:
            raise ConnectionError(
                "lost the other workers of TF_CONFIG's cluster (%s: %s). Every worker stops: start all of them "
                "again with the same command to resume from the chief's newest checkpoint (a worker that does not "
                "answer for --worker_timeout=%g s counts as lost)"
                % (type(error).__name__, session.short_reason(error), self.worker_timeout)) from None


class NoSummaryWriter(object):
    """Takes the summaries of a worker that is not the chief, and writes nothing."""

    def add_summary(self, summary, step):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        pass


def local_variable(name):
    """A float32 scalar of this worker alone, 0 at first: neither mirrored nor saved."""
    return tf.compat.v1.Variable(0.0, trainable=False, name=name, collections=[tf.compat.v1.GraphKeys.LOCAL_VARIABLES])


def shard(records, worker_index, num_workers):
    """Every num_workers-th record from worker_index on, in the order of the files: the workers' shards split the
    listing, each record in one, however each machine's listing was shuffled (scene_parsing shuffles it).
    Each worker's reader shuffles its shard every epoch, and its batch is split between its replicas."""
    in_file_order = sorted(records, key=lambda record: (record["image"], record.get("index", 0)))
    return in_file_order[worker_index::num_workers]


def chief_values_everywhere(strategy, variables):
    """An op giving every worker's `variables` the chief's values: a sum over all replicas to which only replica 0
    (the chief's first) adds its values, every other replica zeros. One batch of sums per dtype (they are packed)."""
    def replica_values(same_dtype):
        first = tf.get_static_value(tf.distribute.get_replica_context().replica_id_in_sync_group) == 0
        return [tf.identity(var) if first else tf.zeros(var.shape, var.dtype.base_dtype) for var in same_dtype]
    assigns = []
    with strategy.scope():
        for dtype in sorted({var.dtype.base_dtype.name for var in variables}):
            same_dtype = [var for var in variables if var.dtype.base_dtype.name == dtype]
            values = strategy.extended.call_for_each_replica(replica_values, args=(same_dtype,))
            sums = strategy.extended.batch_reduce_to(tf.distribute.ReduceOp.SUM, list(zip(values, same_dtype)))
            assigns += [var.assign(value) for var, value in zip(same_dtype, sums)]
    return tf.group(assigns)
