"""How fast FCN-8s trains and predicts here, against this machine's peak, against the naive port, and in bfloat16.

    python benchmark.py                 # full width, 224x224, batch 2; writes benchmark.json (several minutes)
    python benchmark.py --quick         # a smoke run of the same steps on a narrow net and small images

Peak: the best of a large matmul and a VGG-sized convolution, run in the same rounds as what is compared with it.
FLOPs: the convolutions and matmuls of the original graph (tf.nn ops) counted from their shapes. Training:
graphs.build_model + session.make_session and the feed and step of --mode=train. Inference: graphs.build_predictor, the
path of evaluate, predict and export. Naive: the original graph, a default session, the loss run a second time
every log_every steps. Float32 and bfloat16 (on a CPU with avx512_bf16 or amx_bf16) run interleaved, see
fcn_tensorflow/run/benchmarks.py; times are medians of --repeats rounds after --warmup rounds. Evaluation at native
size: --native_images synthetic images, one at a time (as before batching) and in batches of a padded size.
Replicas: the images/s of training with 1 and 2 replicas (--replicas; on a machine without GPUs, logical CPU
devices that share the same cores: a check of the path, not a speed-up). The reader alone: images/s of BatchDatset
reading and resizing ADE-sized JPEG/PNG pairs (--reader_pairs of 375-500 px) with 1 thread and with one per usable
core, the default of FCN.py --reader_threads (--reader_only runs this part alone, in seconds). Importing a released
Caffe FCN (--caffe_only runs this part alone): a voc-fcn8s caffemodel of --widths and --fc_width with random values
(about 538 MB at full size) written to a temporary folder, imported by `python FCN.py --mode=import` (wall time,
TensorFlow's start-up included) and by caffe_import.import_mode in this process, then the imported net's predict
time on a --caffe_image (width x height) random image at its own size, in a new process built as --mode=predict
builds it, and `python FCN.py --mode=predict` on that image; the files are removed afterwards.
"""
import argparse
import json
import os
import resource
import sys
import tempfile
import time

import numpy as np
import tensorflow as tf
from PIL import Image

import FCN

from fcn_tensorflow.data import demo
from fcn_tensorflow.data import matconvnet
from fcn_tensorflow.data.reader import BatchDatset, usable_cores
from fcn_tensorflow.data import scene_parsing
from fcn_tensorflow.net import graphs
from fcn_tensorflow.net.spec import Net, Training
from fcn_tensorflow.run import benchmarks as benchmark_runs
from fcn_tensorflow.run import distribute
from fcn_tensorflow.run import training
from fcn_tensorflow.run.precision import BFLOAT16, BFLOAT16_CPU_FLAGS, FLOAT32, cpu_model, mixed_precision_type

MODEL_FILE = matconvnet.MODEL_FILE
CONV_OPS = ("Conv2D", "Conv2DBackpropInput", "Conv2DBackpropFilter", "MatMul")
READER_SIZES = (375, 500)  # smallest and largest side of the pairs the reader is timed on: ADE20K's sizes
FCN_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "FCN.py")
CAFFE_NET = "voc-fcn8s"
PREDICT_LINE = "imported predict: "  # how the process timing predict hands its figures back


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_dir", default="Model_zoo/",
                        help="folder of %s; without it, random weights of the same shapes are used" % MODEL_FILE)
    parser.add_argument("--widths", default="64,128,256,512,512", help="VGG block widths of the random weights")
    parser.add_argument("--fc_width", type=int, default=4096)
    parser.add_argument("--image_size", type=int, default=224)
    parser.add_argument("--large_size", type=int, default=500, help="side of the second inference size")
    parser.add_argument("--batch_size", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--log_every", type=int, default=10, help="as FCN.py: the step that also fetches the loss")
    parser.add_argument("--xla", action="store_true", help="time the optimised run with FCN.py --xla")
    parser.add_argument("--native_images", type=int, default=20, help="images evaluated at their native size")
    parser.add_argument("--native_sizes", default="375,500", help="smallest and largest side of those images")
    parser.add_argument("--replicas", default="1,2",
                        help="time training with these replica counts too (FCN.py --replicas, --batch_size each)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: widths 4,8,8,16,16, fc_width 16, 64x64 and 96x96, 2 repeats, 16 reader pairs")
    parser.add_argument("--reader_pairs", type=int, default=200, help="ADE-sized pairs the reader is timed on")
    parser.add_argument("--reader_only", action="store_true", help="time the reader alone (1 and all threads)")
    parser.add_argument("--caffe_only", action="store_true",
                        help="time importing a random %s caffemodel of --widths and --fc_width alone" % CAFFE_NET)
    parser.add_argument("--caffe_image", default="500x375", help="width x height of the imported net's predict image")
    parser.add_argument("--json", default="benchmark.json", help="where to write the results")
    return parser


def median_seconds(run, repeats, warmup):
    for _ in range(warmup):
        run()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return float(np.median(times))


# ---------------------------------------------------------------- FLOPs from the graph

def conv_flops(op, shapes):
    """2 x multiply-adds of one convolution or matmul, from the shapes of its inputs and outputs."""
    if op.type == "MatMul":
        m, k = shapes[0]
        n = shapes[1][0] if op.get_attr("transpose_b") else shapes[1][1]
        if op.get_attr("transpose_a"):
            m, k = k, m
        return 2.0 * m * n * k
    if op.type == "Conv2D":  # input, filter -> output
        kernel, out = shapes[1], shapes[2]
        return 2.0 * np.prod(out) * kernel[0] * kernel[1] * kernel[2]
    if op.type == "Conv2DBackpropInput":  # sizes, filter, out_backprop
        kernel, small = shapes[1], shapes[2]
        return 2.0 * np.prod(small) * kernel[0] * kernel[1] * kernel[2]
    kernel, small = shapes[3], shapes[2]  # Conv2DBackpropFilter: input, sizes, out_backprop -> filter
    return 2.0 * np.prod(small) * kernel[0] * kernel[1] * kernel[2]


def ops_needed_by(op):
    """op and every op it depends on, through data and control edges."""
    seen, todo = {op}, [op]
    while todo:
        current = todo.pop()
        for parent in [tensor.op for tensor in current.inputs] + list(current.control_inputs):
            if parent not in seen:
                seen.add(parent)
                todo.append(parent)
    return seen


def model_gflops(sess, model, fetch, image_size):
    """GFLOP per image of the convolutions and matmuls that `fetch` runs, shapes taken from one image."""
    ops = [op for op in ops_needed_by(getattr(fetch, "op", fetch)) if op.type in CONV_OPS]
    tensors = {op.name: [tf.shape(t) for t in list(op.inputs) + list(op.outputs)] for op in ops}
    feed = training.feed(model, np.zeros((1, image_size, image_size, 3), np.float32),
                     np.zeros((1, image_size, image_size, 1), np.int32))
    shapes = sess.run(tensors, feed_dict=feed)
    return sum(conv_flops(op, shapes[op.name]) for op in ops) / 1e9


# ---------------------------------------------------------------- the runs

def synthetic_reader(image_size, batch_size, folder):
    """A BatchDatset over a few synthetic scenes, read and resized like the real data."""
    data_dir = os.path.join(folder, "Data_zoo")
    demo.write_scene_dataset(data_dir, num_training=4 * batch_size, num_validation=1,
                             min_size=image_size // 2, max_size=image_size * 2)
    train_records, _ = scene_parsing.read_dataset(data_dir)
    return BatchDatset(train_records, {"resize": True, "resize_size": image_size})


def time_reader(args, folder):
    """images/s of BatchDatset alone over --reader_pairs ADE-sized pairs (JPEG images, PNG labels, 375-500 px a
    side), read and resized to --image_size in batches of --batch_size, with 1 thread and with one per usable core:
    passes over all pairs, the two thread counts in turn so both see the same load, the median of --repeats rounds
    after one that fills the file cache."""
    data_dir = os.path.join(folder, "reader_data")
    demo.write_scene_dataset(data_dir, num_training=args.reader_pairs, num_validation=1,
                             min_size=READER_SIZES[0], max_size=READER_SIZES[1], seed=3)
    records = scene_parsing.read_dataset(data_dir)[0]
    cores = usable_cores()
    times = {1: [], cores: []}
    options = {"resize": True, "resize_size": args.image_size}
    with BatchDatset(records, dict(options, threads=1)) as one, \
            BatchDatset(records, dict(options, threads=cores)) as every:
        for round_number in range(args.repeats + 1):
            for threads, reader in ((1, one), (cores, every)):
                started = time.perf_counter()
                for _ in reader.batches(args.batch_size):
                    pass
                if round_number:
                    times[threads].append(time.perf_counter() - started)
    return {"reader_threads_all": cores,
            "reader_images_per_sec_1_thread": len(records) / float(np.median(times[1])),
            "reader_images_per_sec_all_threads": len(records) / float(np.median(times[cores]))}


def load_weights(args, folder):
    """VGG weights from --model_dir, or random ones of --widths written to `folder`."""
    if os.path.exists(os.path.join(args.model_dir, MODEL_FILE)) and not args.quick:
        return matconvnet.load_vgg(args.model_dir, "file:///" + MODEL_FILE)
    widths = tuple(int(width) for width in args.widths.split(","))
    print("Random VGG weights, widths %s, fc_width %d" % (widths, args.fc_width))
    demo.write_vgg_mat(os.path.join(folder, MODEL_FILE), widths, args.fc_width)
    return matconvnet.load_vgg(folder, "file:///" + MODEL_FILE)


def naive_runs(args, weights, mean_pixel, reader):
    """The original graph and loop (default session, numpy feed_dict, the loss run again on log steps) as functions
    to time alongside the optimised ones: ({"naive_train", "naive_loss_again": function}, {"naive_infer": ...}),
    and the model's FLOPs counted in this graph (the original ops)."""
    with tf.Graph().as_default():
        model = graphs.build_model(weights, mean_pixel, Net(fc_width=args.fc_width, convs_as_matmul=False))
        sess = tf.compat.v1.Session()
        sess.run(tf.compat.v1.global_variables_initializer())
        model.pretrained.load(sess)
        images, annotations = reader.next_batch(args.batch_size)
        feed = {model.image: images, model.annotation: annotations, model.keep_probability: 0.85}
        infer_feed = {model.image: images, model.keep_probability: 1.0}
        flops = {"model_gflops_per_image": model_gflops(sess, model, model.logits, args.image_size),
                 "train_gflops_per_image": model_gflops(sess, model, model.train_op, args.image_size)}
    training = {"naive_train": lambda: sess.run(model.train_op, feed_dict=feed),
                "naive_loss_again": lambda: sess.run([model.loss, model.train_summary], feed_dict=feed)}
    return training, {"naive_infer": lambda: sess.run(model.pred_annotation, feed_dict=infer_feed)}, flops


def run(args):
    if args.quick:
        args.widths, args.fc_width, args.image_size, args.large_size = "4,8,8,16,16", 16, 64, 96
        args.repeats, args.warmup, args.native_sizes, args.reader_pairs = 2, 1, "40,90", min(args.reader_pairs, 16)
    if args.caffe_only:
        return {"caffe_import": time_caffe_import(args), "settings": run_settings(args)}
    with tempfile.TemporaryDirectory(prefix="fcn_benchmark_") as folder:
        reader_speed = time_reader(args, folder)
    if args.reader_only:
        return dict(reader_speed, settings=run_settings(args))
    precisions = (FLOAT32, BFLOAT16) if mixed_precision_type(False)[0] == BFLOAT16 else (FLOAT32,)
    if BFLOAT16 not in precisions:
        print("This CPU has neither %s: bfloat16 is not measured" % " nor ".join(BFLOAT16_CPU_FLAGS))
    peaks = benchmark_runs.peak_runs(*((512, (1, 28, 64)) if args.quick else (2048, (2, 56, 256))),
                                     precisions=precisions)
    with tempfile.TemporaryDirectory(prefix="fcn_benchmark_") as folder:
        weights, mean_pixel = load_weights(args, folder)
        peak_functions = {name: run for name, (run, _) in peaks.items()}
        with synthetic_reader(args.image_size, args.batch_size, folder) as reader:
            naive_training, naive_inference, flops = naive_runs(args, weights, mean_pixel, reader)
            training = benchmark_runs.time_training(args, weights, mean_pixel, reader, precisions,
                                                    dict(peak_functions, **naive_training))
            replicated = time_replicas(args, weights, mean_pixel, reader)
        predictors = {precision: benchmark_runs.predictor_session(args, weights, mean_pixel, precision)
                      for precision in precisions}
        inference = benchmark_runs.time_inference(args, predictors, dict(peak_functions, **naive_inference))
        sess, predictor = predictors[FLOAT32]
        large = np.zeros((1, args.large_size, args.large_size, 3), np.uint8)
        large_s = median_seconds(lambda: sess.run(predictor.labels, {predictor.images: large}), args.repeats,
                                 args.warmup)
        batch = np.zeros((args.batch_size, args.image_size, args.image_size, 3), np.uint8)
        profiles = {precision: benchmark_runs.op_profile(*predictors[precision], batch) for precision in precisions}
        min_size, max_size = (int(side) for side in args.native_sizes.split(","))
        records = benchmark_runs.native_size_images(folder, args.native_images, min_size, max_size)
        evaluation = benchmark_runs.time_native_evaluation(records, predictors)
    results = summary(args, flops, training, inference, peaks, precisions)
    results.update(native_evaluation_summary(evaluation, len(records), precisions))
    results.update(replicated)
    for precision, (nodes, kinds) in profiles.items():
        prefix = "bf16_" if precision == BFLOAT16 else ""
        results.update({prefix + "infer_profile_ms": nodes, prefix + "infer_profile_by_op_ms": kinds})
    results.update({"infer_ms_%d" % args.large_size: 1000 * large_s, "bfloat16_cpu": BFLOAT16 in precisions,
                    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0})
    results.update(reader_speed)
    results["caffe_import"] = time_caffe_import(args)
    results["settings"] = run_settings(args)
    return results


def time_caffe_import(args):
    """The figures of importing a random CAFFE_NET caffemodel of --widths and --fc_width (benchmarks.time_import)
    and of predicting with the imported net, in a temporary folder removed afterwards; the load averages at its
    start and end."""
    widths = tuple(int(width) for width in args.widths.split(","))
    width, height = (int(side) for side in args.caffe_image.split("x"))
    results = {"net": CAFFE_NET, "widths": list(widths), "fc_width": args.fc_width, "image": args.caffe_image,
               "load_average_start": list(os.getloadavg())}
    with tempfile.TemporaryDirectory(prefix="fcn_benchmark_caffe_") as folder:
        caffemodel = os.path.join(folder, CAFFE_NET + ".caffemodel")
        results.update(benchmark_runs.write_random_caffemodel(caffemodel, widths, args.fc_width, CAFFE_NET))
        print("Wrote %s: %.0f MB in %.1f s" % (caffemodel, results["caffemodel_mb"], results["write_s"]))
        logs_dir, imported = benchmark_runs.time_import(FCN_SCRIPT, caffemodel, folder)
        results.update(imported)
        child = "import benchmark; benchmark.imported_predict(%r, %d, %d, %d, %d)" % (
            logs_dir, width, height, args.repeats, args.warmup)
        _, _, output = benchmark_runs.timed_process([sys.executable, "-c", child], cwd=os.path.dirname(FCN_SCRIPT))
        results.update(json.loads(next(line[len(PREDICT_LINE):] for line in output.splitlines()
                                        if line.startswith(PREDICT_LINE))))
        image = os.path.join(folder, "image.png")
        Image.fromarray(random_image(width, height)).save(image)
        results["predict_command_s"], results["predict_command_peak_rss_mb"], _ = benchmark_runs.timed_process(
            [sys.executable, FCN_SCRIPT, "--mode=predict", "--logs_dir=" + logs_dir, "--input=" + image,
             "--model_dir=" + folder, "--output_dir=" + os.path.join(folder, "predictions")])
    results["load_average_end"] = list(os.getloadavg())
    return results


def random_image(width, height):
    return np.random.RandomState(0).randint(0, 256, (height, width, 3)).astype(np.uint8)


def imported_predict(logs_dir, width, height, repeats, warmup):
    """Run in a new process by time_caffe_import: FCN.py's settings for --mode=predict --logs_dir=logs_dir (the
    folder holds no VGG file, so the weights come from the checkpoint alone, as after an import), then
    benchmarks.time_imported_predict on a random image; prints its figures on one line."""
    FCN.parse_flags(["FCN.py", "--mode=predict", "--logs_dir=" + logs_dir, "--input=" + logs_dir,
                     "--model_dir=" + os.path.dirname(logs_dir)])
    settings, _ = FCN.settings_from(FCN.FLAGS, {name for name in FCN.FLAG_NAMES if FCN.FLAGS[name].present})
    figures = benchmark_runs.time_imported_predict(settings, FCN.open_dataset(settings), random_image(width, height),
                                                   repeats, warmup)
    print(PREDICT_LINE + json.dumps(figures))


def run_settings(args):
    return {"image_size": args.image_size, "large_size": args.large_size, "batch_size": args.batch_size,
            "fc_width": args.fc_width, "repeats": args.repeats, "xla": args.xla, "native_images": args.native_images,
            "native_sizes": args.native_sizes, "replicas": args.replicas, "reader_pairs": args.reader_pairs,
            "load_average": os.getloadavg()[0], "cpu": cpu_model()}


def time_replicas(args, weights, mean_pixel, reader):
    """Training images/s with each replica count of --replicas, --batch_size per replica (distribute.py: one replica
    per GPU, or per logical CPU device on a machine without GPUs, where it checks the path and cannot be faster)."""
    result = {}
    for replicas in (int(count) for count in args.replicas.split(",")):
        with tf.Graph().as_default():
            cluster = distribute.make_cluster(replicas)
            model = cluster.build_model(weights, mean_pixel, Net(fc_width=args.fc_width), Training())
            with cluster.session(args.xla) as sess:
                sess.run(tf.compat.v1.global_variables_initializer())
                model.pretrained.load(sess)
                images, annotations = reader.next_batch(args.batch_size * replicas)
                feed = training.feed(model, images, annotations, keep_prob=0.85)
                step_s = median_seconds(lambda: training.train_step(sess, model, feed), args.repeats, args.warmup)
        result["replicas_%d_train_images_per_sec" % replicas] = args.batch_size * replicas / step_s
    return result


def summary(args, flops, training, inference, peaks, precisions):
    """The keys of benchmark.json from the interleaved runs: each rate divided by the peak of its own round, each
    ratio the median of the rounds' ratios."""
    train_times, losses, data_wait = training
    forward, train = flops["model_gflops_per_image"], flops["train_gflops_per_image"]
    train_s, infer_s = np.asarray(train_times["train_" + FLOAT32]), np.asarray(inference["infer_" + FLOAT32])
    naive_s = np.asarray(train_times["naive_train"]) + np.asarray(train_times["naive_loss_again"]) / args.log_every
    train_peaks = benchmark_runs.peak_gflops(train_times, peaks)
    infer_peaks = benchmark_runs.peak_gflops(inference, peaks)
    results = dict(flops, **{
        "peak_gflops": float(np.median(infer_peaks)),
        "peak_matmul_gflops": float(np.median(peaks["matmul_" + FLOAT32][1] / 1e9 / np.asarray(
            inference["matmul_" + FLOAT32]))),
        "peak_conv_gflops": float(np.median(peaks["conv_" + FLOAT32][1] / 1e9 / np.asarray(
            inference["conv_" + FLOAT32]))),
        "train_images_per_sec": args.batch_size / float(np.median(train_s)),
        "train_flop_utilization": float(np.median(train * args.batch_size / train_s / train_peaks)),
        "infer_ms_%d" % args.image_size: 1000 * float(np.median(infer_s)),
        "infer_flop_utilization": float(np.median(forward * args.batch_size / infer_s / infer_peaks)),
        "naive_train_images_per_sec": args.batch_size / float(np.median(naive_s)),
        "naive_train_flop_utilization": float(np.median(train * args.batch_size / naive_s / train_peaks)),
        "naive_infer_ms_%d" % args.image_size: 1000 * float(np.median(inference["naive_infer"])),
        "speedup_vs_naive": benchmark_runs.median_ratio(naive_s, train_s),
        "data_wait_fraction": data_wait,
        "train_loss": float(losses[FLOAT32]),
    })
    if BFLOAT16 in precisions:
        results.update({
            "bf16_peak_gflops": float(np.median(benchmark_runs.peak_gflops(inference, peaks, BFLOAT16))),
            "bf16_train_speedup": benchmark_runs.median_ratio(train_s, train_times["train_" + BFLOAT16]),
            "bf16_infer_speedup": benchmark_runs.median_ratio(infer_s, inference["infer_" + BFLOAT16]),
            "bf16_infer_ms_%d" % args.image_size: 1000 * float(np.median(inference["infer_" + BFLOAT16])),
            "bf16_train_loss": float(losses[BFLOAT16]),
        })
    return results


def native_evaluation_summary(seconds, num_images, precisions):
    """images/s of evaluate's network at --infer_size=0: one image at a time in float32 (before), and in batches of
    a padded size in each precision; the gain of the fastest over the first."""
    results = {"native_images_per_sec_one_at_a_time": num_images / seconds["one_" + FLOAT32]}
    for precision in precisions:
        results["native_images_per_sec_batched_" + precision] = num_images / seconds["batched_" + precision]
        if precision != FLOAT32:
            results["native_images_per_sec_one_at_a_time_" + precision] = num_images / seconds["one_" + precision]
    results["native_evaluate_speedup"] = (max(num_images / seconds["batched_" + precision] for precision in precisions)
                                          / results["native_images_per_sec_one_at_a_time"])
    return results


def print_table(results):
    rows = [(key, value) for key, value in results.items() if not isinstance(value, dict)]
    width = max([len(key) for key, _ in rows], default=0)
    for key, value in rows:
        print("%-*s  %10.3f" % (width, key, value))
    for key, value in results.get("caffe_import", {}).items():
        print("caffe_import %-30s %s" % (key, "%.3f" % value if isinstance(value, float) else value))
    for key in (key for key, value in results.items() if key.endswith("_ms") and isinstance(value, dict)):
        print("%s: %s" % (key, ", ".join("%s %.0f" % item for item in results[key].items())))
    print("settings: %s" % json.dumps(results["settings"]))


def main(argv=None):
    args = build_parser().parse_args(argv)
    tf.compat.v1.disable_eager_execution()
    results = run(args)
    print_table(results)
    with open(args.json, "w") as out:
        json.dump(results, out, indent=2)
    print("Wrote %s" % args.json)
    return results


if __name__ == "__main__":
    main()
