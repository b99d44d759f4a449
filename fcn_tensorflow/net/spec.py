"""What a network is, without TensorFlow: its heads, its parameters (Net), how it trains (Training), and the names
its variables have in checkpoints. The command line checks --head and reads checkpoints' shapes before TensorFlow
loads; network.py builds from these."""
import collections

from fcn_tensorflow.data import released_fcns
from fcn_tensorflow.data.matconvnet import SCOPE, checkpoint_names, variable_names  # noqa: F401 (their home)
from fcn_tensorflow.data.scene_parsing import NUM_OF_CLASSESS

PAPER_HEADS = ("fcn32s", "fcn16s", "fcn8s", "fcn8s_atonce")
HEADS = ("original",) + PAPER_HEADS
# each paper head's last upsampling, named upscore<N>; at-once is FCN-8s trained in one stage, its skips scaled
FINAL_STRIDE = {"fcn32s": 32, "fcn16s": 16, "fcn8s": 8, "fcn8s_atonce": 8}
BACKBONES = ("vgg19", "vgg16")
# same: every convolution SAME, images padded to a multiple of 32 (the original's); caffe: the reference's exact
# Caffe geometry (conv1_1 padded by 100, fc6 valid, upsamplings without padding, then crops at these offsets)
GEOMETRIES = ("same", "caffe")
CAFFE_CONV1_PAD = 100
CAFFE_SKIP_CROPS = {"score_pool4": 5, "score_pool3": 9}  # where each skip's scores are cropped (score_pool4c, ...)
CAFFE_SCORE_CROP = {"fcn32s": 19, "fcn16s": 27, "fcn8s": 31, "fcn8s_atonce": 31}  # the last crop, `score`
ATONCE_SKIP_SCALES = released_fcns.SCALES  # at-once: pool4, pool3 scaled before scoring
# The checkpoint variable whose length is the model's class count, per head.
CLASS_SCORE_BIAS = dict({"original": SCOPE + "/b8"}, **{head: SCOPE + "/score_fr/bias" for head in PAPER_HEADS})

# What shapes the network (the same values rebuild the graph its checkpoints restore into), and how it is built.
Net = collections.namedtuple("Net", ["num_classes", "fc_width", "head", "learn_upsampling", "convs_as_matmul",
                                     "debug", "backbone", "geometry"])
Net.__new__.__defaults__ = (NUM_OF_CLASSESS, 4096, "original", True, True, False, "vgg19", "same")
# How the network trains: the optimizer's step, the loss's ignore label, the precision it computes in
# ("float32"; "float16": the optimizer scales the loss; "bfloat16": the session's rewrite does the rest), the
# loss's weight of each class (None: unweighted, the original's loss), and whether the loss is the pixels' mean (the
# original's) or their sum (the reference's Caffe SoftmaxWithLoss, normalize: false).
Training = collections.namedtuple("Training", ["learning_rate", "optimizer", "momentum", "weight_decay",
                                               "ignore_label", "precision", "class_weights", "loss_sum"])
Training.__new__.__defaults__ = (1e-4, "adam", 0.9, 0.0, None, "float32", None, False)


def paper_recipe(head, dataset=None):
    """The settings of the reference's solve.py and solver.prototxt for `head` (--recipe=paper): SGD with momentum
    0.99, a learning rate by head (SIFT Flow's FCN-8s: 1e-12), weight decay 5e-4, the loss summed over pixels, one
    image a batch at its own size, the bilinear upsampling kept fixed."""
    rates = dict({"fcn32s": 1e-10, "fcn16s": 1e-12, "fcn8s": 1e-14, "fcn8s_atonce": 1e-10},
                 **({"fcn8s": 1e-12} if dataset == "siftflow" else {}))
    return {"optimizer": "momentum", "momentum": 0.99, "weight_decay": 5e-4, "loss": "sum", "batch_size": 1,
            "image_size": 0, "learn_upsampling": False, "learning_rate": rates.get(head, 1e-10)}
