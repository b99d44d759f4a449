"""How fast FCN-8s trains and predicts here, against this machine's peak and against the naive port.

    python benchmark.py                 # full width, 224x224, batch 2; writes benchmark.json (a few minutes)
    python benchmark.py --quick         # a smoke run of the same steps on a narrow net and small images

Also the images/s of training with 1 and 2 replicas (--replicas; on a machine without GPUs, logical CPU
devices that share the same cores: a check of the path, not a speed-up).

Peak: the best of a large matmul and a VGG-sized convolution. FLOPs: the convolutions and matmuls of the
original graph (tf.nn ops) counted from their shapes. Optimised: FCN.build_model + session.make_session and
the feed and step of --mode=train. Naive: the original graph, a default session, the loss run a second
time every log_every steps. Times are medians of --repeats runs after --warmup runs.
"""
import argparse
import json
import os
import resource
import tempfile
import time

import numpy as np
import tensorflow as tf

import BatchDatsetReader as dataset
import demo_data
import distribute
import FCN
import matconvnet
import modes
import read_MITSceneParsingData as scene_parsing
import session

MODEL_FILE = matconvnet.MODEL_FILE
CONV_OPS = ("Conv2D", "Conv2DBackpropInput", "Conv2DBackpropFilter", "MatMul")


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
    parser.add_argument("--mixed_precision", action="store_true", help="... and with --mixed_precision")
    parser.add_argument("--replicas", default="1,2",
                        help="time training with these replica counts too (FCN.py --replicas, --batch_size each)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: widths 4,8,8,16,16, fc_width 16, 64x64 and 96x96, 2 repeats")
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


# ---------------------------------------------------------------- the machine

def peak_gflops(matmul_size, conv_shape, repeats, warmup):
    """GFLOP/s of a square matmul and of a 3x3 SAME convolution (batch, side, channels in = out)."""
    results = {}
    batch, side, channels = conv_shape
    with tf.Graph().as_default():
        a = tf.Variable(tf.random.normal([matmul_size, matmul_size]))
        b = tf.Variable(tf.random.normal([matmul_size, matmul_size]))
        matmul = tf.reduce_sum(tf.matmul(a, b))
        x = tf.Variable(tf.random.normal([batch, side, side, channels]))
        w = tf.Variable(tf.random.normal([3, 3, channels, channels]))
        conv = tf.reduce_sum(tf.nn.conv2d(x, w, 1, "SAME"))
        with session.make_session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            flops = {"matmul": 2.0 * matmul_size ** 3, "conv": 2.0 * batch * side * side * 9 * channels * channels}
            for name, fetch in (("matmul", matmul), ("conv", conv)):
                results[name] = flops[name] / median_seconds(lambda: sess.run(fetch), repeats, warmup) / 1e9
    return results


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
    feed = modes.feed(model, np.zeros((1, image_size, image_size, 3), np.float32),
                     np.zeros((1, image_size, image_size, 1), np.int32))
    shapes = sess.run(tensors, feed_dict=feed)
    return sum(conv_flops(op, shapes[op.name]) for op in ops) / 1e9


# ---------------------------------------------------------------- the runs

def synthetic_reader(image_size, batch_size, folder):
    """A BatchDatset over a few synthetic scenes, read and resized like the real data."""
    data_dir = os.path.join(folder, "Data_zoo")
    demo_data.write_scene_dataset(data_dir, num_training=4 * batch_size, num_validation=1,
                                  min_size=image_size // 2, max_size=image_size * 2)
    train_records, _ = scene_parsing.read_dataset(data_dir)
    return dataset.BatchDatset(train_records, {"resize": True, "resize_size": image_size})


def load_weights(args, folder):
    """VGG weights from --model_dir, or random ones of --widths written to `folder`."""
    if os.path.exists(os.path.join(args.model_dir, MODEL_FILE)) and not args.quick:
        return FCN.load_vgg(args.model_dir, "file:///" + MODEL_FILE)
    widths = tuple(int(width) for width in args.widths.split(","))
    print("Random VGG weights, widths %s, fc_width %d" % (widths, args.fc_width))
    demo_data.write_vgg_mat(os.path.join(folder, MODEL_FILE), widths, args.fc_width)
    return FCN.load_vgg(folder, "file:///" + MODEL_FILE)


def start_session(sess, model):
    sess.run(tf.compat.v1.global_variables_initializer())
    model.pretrained.load(sess)


def time_training(sess, model, reader, batch_size, args):
    """The steps of --mode=train: next_batch, feed, train_step; the median step, the share of waiting, the last loss."""
    step_times, wait_times, losses = [], [], []
    for itr in range(args.warmup + args.repeats):
        started = time.perf_counter()
        images, annotations = reader.next_batch(batch_size)
        feed = modes.feed(model, images, annotations, keep_prob=0.85)
        fed = time.perf_counter()
        loss, _ = modes.train_step(sess, model, feed, with_summary=itr % args.log_every == 0)
        losses.append(float(loss))
        if itr >= args.warmup:
            step_times.append(time.perf_counter() - started)
            wait_times.append(fed - started)
    return {"train_step_s": float(np.median(step_times)),
            "data_wait_fraction": float(np.sum(wait_times) / np.sum(step_times)), "train_loss": losses[-1]}


def time_optimised(args, weights, mean_pixel, reader):
    """The --mode=train path: make_session and the training steps; then inference at both sizes."""
    with tf.Graph().as_default():
        model = FCN.build_model(weights, mean_pixel, fc_width=args.fc_width, mixed_precision=args.mixed_precision)
        with session.make_session(args.xla) as sess:
            start_session(sess, model)
            result = time_training(sess, model, reader, args.batch_size, args)
            for size, batch in ((args.image_size, args.batch_size), (args.large_size, 1)):
                feed = modes.feed(model, np.zeros((batch, size, size, 3), np.uint8))
                result["infer_s_%d" % size] = median_seconds(
                    lambda: sess.run(model.pred_annotation, feed_dict=feed), args.repeats, args.warmup)
    return result


def time_replicas(args, weights, mean_pixel, reader):
    """Training images/s with each replica count of --replicas, --batch_size per replica (distribute.py: one replica
    per GPU, or per logical CPU device on a machine without GPUs, where it checks the path and cannot be faster)."""
    result = {}
    for replicas in (int(count) for count in args.replicas.split(",")):
        with tf.Graph().as_default():
            cluster = distribute.make_cluster(replicas)
            model = cluster.build_model(weights, mean_pixel, fc_width=args.fc_width,
                                        mixed_precision=args.mixed_precision)
            with cluster.session(args.xla) as sess:
                start_session(sess, model)
                step_s = time_training(sess, model, reader, args.batch_size * replicas, args)["train_step_s"]
        result["replicas_%d_train_images_per_sec" % replicas] = args.batch_size * replicas / step_s
    return result


def time_naive(args, weights, mean_pixel, reader):
    """The original graph and loop: default session, numpy feed_dict, the loss run again on log steps.

    Also counts the model's FLOPs in this graph (the original ops)."""
    result = {}
    with tf.Graph().as_default():
        model = FCN.build_model(weights, mean_pixel, fc_width=args.fc_width, convs_as_matmul=False)
        with tf.compat.v1.Session() as sess:
            start_session(sess, model)
            images, annotations = reader.next_batch(args.batch_size)
            feed = {model.image: images, model.annotation: annotations, model.keep_probability: 0.85}
            step = median_seconds(lambda: sess.run(model.train_op, feed_dict=feed), args.repeats, args.warmup)
            again = median_seconds(lambda: sess.run([model.loss, model.train_summary], feed_dict=feed),
                                   max(1, args.repeats // 2), 1)
            result["naive_train_step_s"] = step + again / args.log_every
            infer_feed = {model.image: images, model.keep_probability: 1.0}
            result["naive_infer_s"] = median_seconds(
                lambda: sess.run(model.pred_annotation, feed_dict=infer_feed), args.repeats, args.warmup)
            result["model_gflops_per_image"] = model_gflops(sess, model, model.logits, args.image_size)
            result["train_gflops_per_image"] = model_gflops(sess, model, model.train_op, args.image_size)
    return result


def run(args):
    if args.quick:
        args.widths, args.fc_width, args.image_size, args.large_size = "4,8,8,16,16", 16, 64, 96
        args.repeats, args.warmup = 2, 1
    peak_sizes = ((512, (1, 28, 64)) if args.quick else (2048, (2, 56, 256)))
    peaks = peak_gflops(*peak_sizes, repeats=args.repeats, warmup=args.warmup)
    with tempfile.TemporaryDirectory(prefix="fcn_benchmark_") as folder:
        weights, mean_pixel = load_weights(args, folder)
        with synthetic_reader(args.image_size, args.batch_size, folder) as reader:
            naive = time_naive(args, weights, mean_pixel, reader)
            optimised = time_optimised(args, weights, mean_pixel, reader)
            replicated = time_replicas(args, weights, mean_pixel, reader)

    peak = max(peaks.values())
    forward, train = naive["model_gflops_per_image"], naive["train_gflops_per_image"]
    train_ips = args.batch_size / optimised["train_step_s"]
    naive_ips = args.batch_size / naive["naive_train_step_s"]
    infer_224 = optimised["infer_s_%d" % args.image_size]
    return {
        "peak_gflops": peak,
        "peak_matmul_gflops": peaks["matmul"],
        "peak_conv_gflops": peaks["conv"],
        "model_gflops_per_image": forward,
        "train_gflops_per_image": train,
        "train_images_per_sec": train_ips,
        "train_flop_utilization": train * train_ips / peak,
        "infer_ms_%d" % args.image_size: 1000 * infer_224,
        "infer_ms_%d" % args.large_size: 1000 * optimised["infer_s_%d" % args.large_size],
        "infer_flop_utilization": forward * args.batch_size / infer_224 / peak,
        "naive_train_images_per_sec": naive_ips,
        "naive_train_flop_utilization": train * naive_ips / peak,
        "naive_infer_ms_%d" % args.image_size: 1000 * naive["naive_infer_s"],
        "speedup_vs_naive": train_ips / naive_ips,
        "data_wait_fraction": optimised["data_wait_fraction"],
        "train_loss": optimised["train_loss"],
        **replicated,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "settings": {"image_size": args.image_size, "large_size": args.large_size, "batch_size": args.batch_size,
                     "infer_batch": [args.batch_size, 1], "fc_width": args.fc_width, "repeats": args.repeats,
                     "xla": args.xla, "mixed_precision": args.mixed_precision,
                     "load_average": os.getloadavg()[0]},
    }


def print_table(results):
    rows = [(key, value) for key, value in results.items() if key != "settings"]
    width = max(len(key) for key, _ in rows)
    for key, value in rows:
        print("%-*s  %10.3f" % (width, key, value))
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
