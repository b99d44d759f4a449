"""--mode=import: one of the paper's released Caffe FCNs (read by data/released_fcns.py) written as this project's
model: a checkpoint at step 0 and model.json in logs_dir, from which predict, evaluate, visualize, export and
fine-tuning (--init_checkpoint) run as from a trained model. The network is the paper's: VGG16 in the Caffe geometry.
"""
import os
import shutil
import time

import tensorflow as tf

from fcn_tensorflow.data import datasets
from fcn_tensorflow.data import downloads
from fcn_tensorflow.data import matconvnet
from fcn_tensorflow.data import released_fcns
from fcn_tensorflow.data import voc
from fcn_tensorflow.net import layers as utils
from fcn_tensorflow.net import network
from fcn_tensorflow.net import spec
from fcn_tensorflow.net.spec import Net
from fcn_tensorflow.run import checkpoints
from fcn_tensorflow.run import model_record


def caffemodel_path(caffemodel, model_dir, url="", timeout=downloads.DOWNLOAD_TIMEOUT):
    """The file --caffemodel names: a path as it is; a released net's name (voc-fcn8s, ...) its file in model_dir,
    downloaded from url (default: the reference's host) when absent."""
    if caffemodel not in released_fcns.KNOWN:
        return caffemodel
    file_name = released_fcns.KNOWN[caffemodel].file
    url = url or released_fcns.URL_ROOT + file_name
    by_hand = os.path.join(model_dir, file_name)
    if os.path.exists(by_hand):
        return by_hand
    try:
        downloads.maybe_download_and_extract(model_dir, url, timeout=timeout)
    except OSError as error:
        raise IOError("%s is not in %s and could not be downloaded (%s): download %s by hand and put it at %s"
                      % (file_name, model_dir, error, url, by_hand)) from None
    return downloads.local_path(model_dir, url)


def import_mode(path, logs_dir, output="semantic", dataset=None, image_size=224):
    """Read the caffemodel at `path` and write its checkpoint (step 0) and model.json into logs_dir, which holds no
    checkpoint; one line says what was imported. Nothing is left in logs_dir when a step fails."""
    started = time.time()
    imported = released_fcns.import_net(path, output, dataset)
    classes = imported_classes(imported)
    created = downloads.missing_folders(logs_dir)
    before = set() if created else set(os.listdir(logs_dir))
    record = model_record.of_import(imported, imported_network(imported), classes, image_size, path)
    try:
        os.makedirs(logs_dir, exist_ok=True)
        write_checkpoint(imported, logs_dir)
        model_record.write(logs_dir, record)
    except BaseException:
        remove_written(logs_dir, created, before)
        raise
    known = released_fcns.KNOWN.get(imported.net)
    print("Imported %s (%s head, VGG16%s) from %s into %s: %s; it runs on each image at its own size (--infer_size=0, "
          "the Caffe geometry) [%.1f s]" % (imported.net, imported.head, ", published: " + known.published if known
                                            else "", os.path.basename(path), logs_dir,
                                            model_record.described(record), time.time() - started))


def imported_classes(imported):
    """The datasets.Classes of an imported net: its dataset's names, colours and ignore label; class k and the
    devkit's colours for a class count of no known dataset."""
    if imported.dataset is None:
        names = ["class %d" % index for index in range(imported.num_classes)]
        return datasets.Classes(imported.num_classes, names, voc.voc_palette(imported.num_classes), None)
    if imported.dataset not in datasets.FIXED_LISTS:
        raise ValueError("--dataset=%s names no classes of an imported model: leave --dataset out, or pass the one it "
                         "was trained on (%s)" % (imported.dataset, ", ".join(
                             name for name in datasets.FIXED_LISTS if name != "ade20k")))
    names, palette = datasets.class_list(imported.dataset)
    if len(names) != imported.num_classes:
        raise ValueError("the %s net scores %d classes, --dataset=%s has %d: leave --dataset out, or name the "
                         "dataset it was trained on" % (imported.net, imported.num_classes, imported.dataset,
                                                        len(names)))
    return datasets.Classes(imported.num_classes, names, palette, datasets.KINDS[imported.dataset].ignore_label)


def write_checkpoint(imported, logs_dir):
    """Build the imported net's variables, fill them with the file's values and save them (and a global step of 0)
    as logs_dir/model.ckpt-0. Every variable must come from the file: one the graph has and the file not (or the
    reverse) is a ValueError."""
    variables = imported.variables
    with tf.Graph().as_default():
        image = tf.compat.v1.placeholder(tf.float32, [None, None, None, 3])
        network.inference(image, 1.0, vgg_weights(variables), imported.mean_pixel, imported_network(imported))
        step = tf.compat.v1.train.get_or_create_global_step()
        graph_variables = {var.op.name: var for var in tf.compat.v1.global_variables() if var is not step}
        if set(graph_variables) != set(variables):
            raise ValueError("the %s network has variables %s the file does not fill, and the file %s the network "
                             "lacks" % (imported.net, sorted(set(graph_variables) - set(variables)),
                                        sorted(set(variables) - set(graph_variables))))
        loader = utils.PretrainedLoader([(graph_variables[name], value) for name, value in variables.items()])
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            loader.load(sess)
            loader.release()
            tf.compat.v1.train.Saver().save(sess, os.path.join(logs_dir, checkpoints.CHECKPOINT_NAME), global_step=0)


def imported_network(imported):
    """The spec.Net of an imported model: the paper's VGG16 in the Caffe geometry, upsampling fixed as there."""
    return Net(imported.num_classes, imported.fc_width, imported.head, learn_upsampling=False,
               convs_as_matmul=False, backbone="vgg16", geometry="caffe")


def vgg_weights(variables):
    """{layer: (kernel, bias)} of VGG16's conv layers and fc6/fc7 from `variables` (checkpoint names): the shapes
    network.vgg_net and the head build their variables from."""
    return {layer: tuple(variables[name] for name in spec.checkpoint_names(layer))
            for layer in released_fcns.VGG16_CONVS + matconvnet.FC_LAYERS}


def remove_written(logs_dir, created, before):
    """Remove what an import that failed wrote: logs_dir itself when it made it, else the files it added."""
    if created:
        shutil.rmtree(created[-1], ignore_errors=True)
        return
    for name in set(os.listdir(logs_dir)) - before:
        os.remove(os.path.join(logs_dir, name))
