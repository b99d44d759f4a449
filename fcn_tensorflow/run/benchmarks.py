"""The timed runs of benchmark.py that compare precisions and paths: float32 and bfloat16 training steps, inference
next to the machine's peak, and evaluation at native size one image at a time or in batches; and the import of a
released Caffe FCN (a random full-size file) with the predict time of the imported net.

The two cores this was written on are shared with other jobs, so what is compared runs interleaved in one process:
every round runs each side once, and a ratio is the median of the rounds' ratios; load that comes and goes slows
both sides of a round alike.
"""
import collections
import os
import re
import resource
import shutil
import subprocess
import sys
import time

import numpy as np
import tensorflow as tf

from fcn_tensorflow.data import demo
from fcn_tensorflow.data import scene_parsing
from fcn_tensorflow.data import synthetic_caffe
from fcn_tensorflow.data.reader import read_image
from fcn_tensorflow.net import graphs
from fcn_tensorflow.net.spec import Net
from fcn_tensorflow.run import caffe_import
from fcn_tensorflow.run import checkpoints
from fcn_tensorflow.run import modes
from fcn_tensorflow.run import predictions
from fcn_tensorflow.run import session
from fcn_tensorflow.run import training
from fcn_tensorflow.run.precision import FLOAT32


def interleaved(runs, repeats, warmup):
    """{name: [seconds of each round]}: each round runs every function of `runs` ({name: function}) once."""
    for _ in range(warmup):
        for run in runs.values():
            run()
    times = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            started = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - started)
    return times


def median_ratio(numerators, denominators):
    return float(np.median(np.asarray(numerators) / np.asarray(denominators)))


def peak_runs(matmul_size, conv_shape, precisions):
    """{"<matmul|conv>_<precision>": (function, FLOP)}: a square matmul and a 3x3 SAME convolution (batch, side,
    channels in = out) in each precision, variables of that type, so nothing is cast."""
    batch, side, channels = conv_shape
    graph = tf.Graph()
    fetches, flops = {}, {"matmul": 2.0 * matmul_size ** 3, "conv": 2.0 * batch * side * side * 9 * channels ** 2}
    with graph.as_default():
        for precision in precisions:
            dtype = tf.as_dtype(precision)
            a, b = (tf.Variable(tf.cast(tf.random.normal([matmul_size] * 2), dtype)) for _ in range(2))
            x = tf.Variable(tf.cast(tf.random.normal([batch, side, side, channels]), dtype))
            w = tf.Variable(tf.cast(tf.random.normal([3, 3, channels, channels]), dtype))
            fetches["matmul_" + precision] = tf.matmul(a, b)[0, 0]
            fetches["conv_" + precision] = tf.nn.conv2d(x, w, 1, "SAME")[0, 0, 0, 0]
        sess = session.make_session()
        sess.run(tf.compat.v1.global_variables_initializer())
    return {name: (lambda fetch=fetch: sess.run(fetch), flops[name.split("_")[0]]) for name, fetch in fetches.items()}


def peak_gflops(times, peaks, precision=FLOAT32):
    """The best of the matmul and the convolution of `precision` in each round, GFLOP/s."""
    rates = [[flop / 1e9 / seconds for seconds in times[name]] for name, (_, flop) in peaks.items()
             if name.endswith("_" + precision)]
    return np.max(rates, axis=0)


def time_training(args, weights, mean_pixel, reader, precisions, alongside):
    """The --mode=train step (next_batch, feed, train_step) in a session of each precision on one graph, and the
    functions of `alongside` ({name: function}), interleaved. Returns ({name: [seconds]}, {precision: last loss},
    the fraction of the float32 steps spent waiting for data)."""
    losses, waits = {}, []
    with tf.Graph().as_default():
        model = graphs.build_model(weights, mean_pixel, Net(fc_width=args.fc_width))
        sessions = {precision: session.make_session(args.xla, precision) for precision in precisions}
        for sess in sessions.values():
            sess.run(tf.compat.v1.global_variables_initializer())
            model.pretrained.load(sess)

        def step(precision):
            started = time.perf_counter()
            images, annotations = reader.next_batch(args.batch_size)
            if precision == FLOAT32:
                waits.append(time.perf_counter() - started)
            feed = training.feed(model, images, annotations, keep_prob=0.85)
            losses[precision], _ = training.train_step(sessions[precision], model, feed, with_summary=True)
        runs = {"train_" + precision: (lambda precision=precision: step(precision)) for precision in precisions}
        runs.update(alongside)
        times = interleaved(runs, args.repeats, args.warmup)
        for sess in sessions.values():
            sess.close()
    return times, losses, float(np.sum(waits[-args.repeats:]) / np.sum(times["train_" + FLOAT32]))


def predictor_session(args, weights, mean_pixel, precision, infer_size=0):
    """(session, predictor) of the evaluate/predict path in `precision`, VGG weights and a random head."""
    graph = tf.Graph()
    with graph.as_default():
        predictor = graphs.build_predictor(weights, mean_pixel, infer_size, Net(fc_width=args.fc_width), precision)
        sess = session.make_session()
        sess.run(tf.compat.v1.global_variables_initializer())
        predictor.pretrained.load(sess)
    return sess, predictor


def time_inference(args, predictors, alongside):
    """A batch of --image_size images through each precision's predictor, interleaved with the functions of
    `alongside` ({name: function})."""
    images = np.random.RandomState(0).randint(0, 256, (args.batch_size, args.image_size, args.image_size, 3))
    runs = {"infer_" + precision: (lambda sess=sess, predictor=predictor: sess.run(
        predictor.labels, {predictor.images: images})) for precision, (sess, predictor) in predictors.items()}
    runs.update(alongside)
    return interleaved(runs, args.repeats, args.warmup)


def op_profile(sess, predictor, images, top=8, runs=3):
    """{node: milliseconds} of the slowest nodes, and {op type: milliseconds}: each the least of `runs` traced
    runs (load from other jobs only adds)."""
    nodes, kinds = collections.defaultdict(list), collections.defaultdict(list)
    for _ in range(runs):
        metadata = tf.compat.v1.RunMetadata()
        sess.run(predictor.labels, {predictor.images: images}, run_metadata=metadata,
                 options=tf.compat.v1.RunOptions(trace_level=tf.compat.v1.RunOptions.FULL_TRACE))
        by_node, by_kind = collections.Counter(), collections.Counter()
        for device in metadata.step_stats.dev_stats:
            for node in device.node_stats:
                by_node[node.node_name] += node.op_end_rel_micros / 1e3
                by_kind[node.timeline_label.split(" = ")[-1].split("(")[0]] += node.op_end_rel_micros / 1e3
        for totals, counted in ((nodes, by_node), (kinds, by_kind)):
            for name, milliseconds in counted.items():
                totals[name].append(milliseconds)
    return tuple(dict(collections.Counter({name: min(times) for name, times in totals.items()}).most_common(top))
                 for totals in (nodes, kinds))


def native_size_images(folder, count, min_size, max_size):
    """The records (image and annotation paths) of `count` synthetic validation images, sides min_size..max_size."""
    data_dir = os.path.join(folder, "native")
    demo.write_scene_dataset(data_dir, num_training=0, num_validation=count, min_size=min_size,
                             max_size=max_size, seed=1)
    _, records = scene_parsing.read_dataset(data_dir, required_splits=("validation",))
    return records


def time_native_evaluation(records, predictors):
    """Seconds the network part of --mode=evaluate --infer_size=0 takes over `records`, for each precision one image
    at a time (before batching) and in batches of a padded size; a pass untimed first (each new shape costs once).
    The ways run interleaved, batch by batch; images are decoded before the clock starts."""
    totals = collections.Counter()
    for timed in (False, True):
        for batch in predictions.batches_of_a_size(records, 32):
            images = [read_image(record["image"]) for record in batch]
            for precision, (sess, predictor) in predictors.items():
                started = time.perf_counter()
                for image in images:
                    predictions.predict_labels(sess, predictor, image)
                one_at_a_time = time.perf_counter()
                predictions.predict_batch(sess, predictor, images)
                totals["one_" + precision] += timed * (one_at_a_time - started)
                totals["batched_" + precision] += timed * (time.perf_counter() - one_at_a_time)
    return totals


# ---------------------------------------------------------------- importing a released Caffe FCN

def write_random_caffemodel(path, widths, fc_width, net="voc-fcn8s"):
    """Write the released net `net` with random weights of `widths` and `fc_width` as a caffemodel in the encoding of
    the released files (layer, BlobShape): its size in MB (10^6 bytes), the seconds drawing the values and writing."""
    started = time.perf_counter()
    blobs = synthetic_caffe.random_blobs(net, widths, fc_width)
    drawn = time.perf_counter()
    synthetic_caffe.write_caffemodel(path, net, blobs)
    return {"caffemodel_mb": os.path.getsize(path) / 1e6, "random_values_s": drawn - started,
            "write_s": time.perf_counter() - drawn}


# A process's peak RSS (ru_maxrss) starts at that of the process it was forked from: Linux copies the high-water mark
# with the memory map, and exec keeps it. So a small Python in between starts the command and reports the command's
# own figures on a last line: its wall time, peak RSS (KB) and exit status.
MEASURED = "measured process:"
MEASURE = ("import os, subprocess, sys, time\n"
           "started = time.perf_counter()\n"
           "child = subprocess.Popen(sys.argv[1:])\n"
           "_, status, usage = os.wait4(child.pid, 0)\n"
           "print(%r, time.perf_counter() - started, usage.ru_maxrss, os.waitstatus_to_exitcode(status))\n" % MEASURED)


def timed_process(argv, cwd=None):
    """Run argv as a new process, its environment this one's but for TF_CPP_MIN_LOG_LEVEL (unset, as in a user's
    shell): (wall seconds, its own peak RSS in MB, its output, stdout and stderr together). RuntimeError with the
    output when it fails."""
    environment = {name: value for name, value in os.environ.items() if name != "TF_CPP_MIN_LOG_LEVEL"}
    completed = subprocess.run([sys.executable, "-c", MEASURE] + list(argv), cwd=cwd, env=environment,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output, _, measured = completed.stdout.rpartition(MEASURED)
    if completed.returncode or not measured:
        raise RuntimeError("%s failed:\n%s" % (" ".join(argv), completed.stdout))
    seconds, peak_kb, status = measured.split()
    if int(status):
        raise RuntimeError("%s exited with %s:\n%s" % (" ".join(argv), status, output))
    return float(seconds), int(peak_kb) / 1024.0, output


def directory_mb(folder):
    return sum(os.path.getsize(os.path.join(folder, name)) for name in os.listdir(folder)) / 1e6


def time_import(fcn_script, caffemodel, folder):
    """The import of `caffemodel` as a user runs it, `python FCN.py --mode=import` in a new process (wall time,
    TensorFlow's start-up included; its peak RSS; the time its own line reports), and import_mode in this process
    (reading the file and writing the checkpoint alone). The first writes folder/imported, whose checkpoint predict
    is timed on; the second's is removed at once. Also the start-up alone: FCN.py's way of loading TensorFlow."""
    startup_s, _, _ = timed_process([sys.executable, "-c", "from fcn_tensorflow import console; "
                                     "console.import_tensorflow_quietly()"], cwd=os.path.dirname(fcn_script))
    logs_dir = os.path.join(folder, "imported")
    seconds, rss, output = timed_process([sys.executable, fcn_script, "--mode=import", "--caffemodel=" + caffemodel,
                                          "--logs_dir=" + logs_dir])
    reported = re.search(r"\[([\d.]+) s\]", output)
    in_process = os.path.join(folder, "imported_in_process")
    started = time.perf_counter()
    caffe_import.import_mode(caffemodel, in_process)
    in_process_s = time.perf_counter() - started
    checkpoint_mb = directory_mb(in_process)
    shutil.rmtree(in_process)
    return logs_dir, {"tensorflow_start_s": startup_s, "import_command_s": seconds, "import_command_peak_rss_mb": rss,
                      "import_command_reported_s": float(reported.group(1)) if reported else None,
                      "import_in_process_s": in_process_s, "checkpoint_mb": checkpoint_mb}


def time_imported_predict(settings, dataset, image, repeats, warmup):
    """--mode=predict's network on `image` (uint8, H x W x 3) at its own size, from FCN.py's predict `settings`
    for an imported model's logs_dir: model_classes and inference_session (the graph, the session, the restore)
    as predict runs them, timed; the first run (a new shape: what predicting one image pays), then the median of
    `repeats` runs after `warmup` more; the peak RSS of this process."""
    found_checkpoints = checkpoints.list_checkpoints(settings.logs_dir)
    tf.compat.v1.disable_eager_execution()
    with tf.Graph().as_default():
        started = time.perf_counter()
        classes = modes.model_classes(settings, dataset, found_checkpoints)
        sess, predictor, restored = modes.inference_session(settings, found_checkpoints, classes)
        restore_s = time.perf_counter() - started
        with sess:
            started = time.perf_counter()
            labels = predictions.predict_labels(sess, predictor, image)
            first_s = time.perf_counter() - started
            times = interleaved({"predict": lambda: predictions.predict_labels(sess, predictor, image)}, repeats,
                                warmup)["predict"]
    return {"predict_restored": os.path.basename(restored), "predict_build_and_restore_s": restore_s,
            "predict_first_ms": 1000 * first_s, "predict_ms": 1000 * float(np.median(times)),
            "predict_labels_shape": list(labels.shape),
            "predict_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0}
