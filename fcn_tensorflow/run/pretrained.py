"""Where a run's starting weights come from: the VGG file (MatConvNet's .mat, or for VGG16 Caffe's ImageNet
.caffemodel), or, when a checkpoint will bring every weight, only its shapes, so a trained or imported model runs
without the 510 MB file."""
import os

from fcn_tensorflow.data import matconvnet
from fcn_tensorflow.data import released_fcns
from fcn_tensorflow.net import graphs
from fcn_tensorflow.net.spec import PAPER_HEADS
from fcn_tensorflow.run import checkpoints
from fcn_tensorflow.run import model_record
from fcn_tensorflow.run import session


def load_vgg(settings, with_fc=True):
    """matconvnet.load_vgg as the settings say; the paper's heads take fc6 and fc7 too, unless with_fc is False.
    VGG16 comes from the Caffe ImageNet file instead when --model_dir holds it (or names it) and not the .mat."""
    fc_width = settings.fc_width if with_fc and settings.head in PAPER_HEADS else None
    caffe_file = vgg16_caffemodel(settings)
    if caffe_file:
        weights, mean_pixel = released_fcns.vgg16_weights(caffe_file)
        width = weights["fc6"][0].shape[-1]
        if fc_width and fc_width != width:
            raise ValueError("%s has fc6 and fc7 %d wide: pass --fc_width=%d" % (caffe_file, width, width))
        if settings.transpose_vgg_kernels:  # as matconvnet.load_vgg does for the original's checkpoints
            weights = {name: (kernel.transpose(1, 0, 2, 3), bias) for name, (kernel, bias) in weights.items()}
        return {name: pair for name, pair in weights.items() if fc_width or name not in matconvnet.FC_LAYERS}, \
            mean_pixel
    return matconvnet.load_vgg(settings.model_dir, settings.model_url, settings.transpose_vgg_kernels,
                               fc_width=fc_width, timeout=settings.download_timeout, backbone=settings.backbone)


def vgg16_caffemodel(settings):
    """The VGG_ILSVRC_16_layers.caffemodel --backbone=vgg16 starts from: --model_dir itself when it names a
    .caffemodel, else the file in that folder when its .mat is not there; None otherwise."""
    if settings.backbone != "vgg16":
        return None
    if settings.model_dir.endswith(".caffemodel"):
        return settings.model_dir
    in_folder = os.path.join(settings.model_dir, released_fcns.VGG16_CAFFE_FILE)
    mat_file = matconvnet.vgg_file(settings.model_dir, settings.model_url)
    return in_folder if os.path.isfile(in_folder) and not os.path.exists(mat_file) else None


def vgg_unless_restored(settings, found_checkpoints, with_fc=None):
    """(VGG weights, mean pixel) of a run restoring found_checkpoints (or none). The mean is always the model's: the
    one model.json records beside the newest checkpoint (the beta16 file's ImageNet mean for a logs_dir of the
    original, which has none), never another model's file in --model_dir (an imported VOC model's differs).
    The weights: the VGG file's when training starts from them (with_fc: also fc6 and fc7; a resumed training too,
    so its graph stays as it was) or when there is no checkpoint; else only shapes from the checkpoint, which
    brings every value, so a trained or imported model needs no 510 MB file."""
    if not found_checkpoints:
        return load_vgg(settings, with_fc=True if with_fc is None else with_fc)
    newest, saved_shapes = session.newest_listable(found_checkpoints)
    record = model_record.read(os.path.dirname(newest)) or {}
    mean_pixel = model_record.mean_pixel(record)
    vgg_file = matconvnet.vgg_file(settings.model_dir, settings.model_url)
    if with_fc and (os.path.exists(vgg_file) or vgg16_caffemodel(settings)):
        return load_vgg(settings, with_fc=True)[0], mean_pixel
    print("Restoring every weight from %s, so no VGG file is needed: VGG shapes from the checkpoint, mean pixel (%s) "
          "%s" % (newest, ", ".join("%.2f" % value for value in mean_pixel),
                  "from model.json" if "mean_pixel" in record else "(the beta16 file's ImageNet mean)"))
    return graphs.vgg_shapes_from_checkpoint(saved_shapes, settings.backbone, newest), mean_pixel


def start_checkpoint(settings):
    """[the checkpoint --init_checkpoint names] (resolved), or []."""
    resolved = checkpoints.resolve_checkpoint(settings.init_checkpoint or "")
    return [resolved] if resolved else []
