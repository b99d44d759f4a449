"""Small stand-ins for the real downloads, used by `make demo` and by the tests.

- write_vgg_mat: a VGG19 file in the MatConvNet beta16 layout (the same 43 layers, struct fields and
  `normalization`), with narrow, He-initialised random weights.
- write_scene_dataset: ADEChallengeData2016/ with synthetic scenes drawn from a few ADE20K classes
  (sky, wall, floor, tree and some objects), images as JPEG and labels as PNG in 0..150.
- the same scenes in the other layouts FCN.py reads: write_voc_dataset (VOCdevkit/VOC2012, palette PNGs with
  255 borders), write_sbd_dataset (SBD's .mat files), write_folder_dataset (index or colour masks, 5 or 2
  classes), write_arrays_dataset (.npy, integer or one-hot labels).

The program demo_data.py (at the root) writes them for `make demo`.
"""
import os
import zipfile

import imageio.v2 as imageio
import numpy as np
from PIL import Image
import scipy.io

from fcn_tensorflow.data import datasets
from fcn_tensorflow.data import matconvnet
from fcn_tensorflow.data import voc

# ADE20K class indices (objectInfo150.csv) and the base colours the synthetic scenes paint them with.
OTHER, WALL, SKY, FLOOR, TREE, PERSON, CAR, PAINTING = 0, 1, 3, 4, 5, 13, 21, 23
CLASS_COLORS = {WALL: (200, 190, 170), SKY: (110, 160, 230), FLOOR: (120, 85, 50), TREE: (40, 120, 40),
                PERSON: (220, 60, 60), CAR: (240, 200, 30), PAINTING: (150, 40, 160)}
OBJECTS = (PERSON, CAR, PAINTING)


# ---------------------------------------------------------------- VGG19 .mat

def _struct(**fields):
    """A 1x1 MATLAB struct with fields in the given order."""
    record = np.empty((1, 1), dtype=[(name, object) for name in fields])
    for name, value in fields.items():
        record[0, 0][name] = value
    return record


def _cell(*items):
    cell = np.empty((1, len(items)), dtype=object)
    for index, item in enumerate(items):
        cell[0, index] = item
    return cell


def write_vgg_mat(path, widths=matconvnet.VGG19_WIDTHS, fc_width=4096, num_imagenet_classes=1000, seed=0,
                  backbone="vgg19"):
    """Write a MatConvNet beta16-layout VGG19 (or VGG16) file with random He-initialised weights."""
    rng = np.random.RandomState(seed)
    layers = []
    conv_shapes = matconvnet.conv_shapes(widths, fc_width, num_imagenet_classes, backbone)
    for name in matconvnet.layer_names(backbone):
        if name in conv_shapes:
            shape = conv_shapes[name]
            std = np.sqrt(2.0 / np.prod(shape[:3]))
            kernel = (rng.standard_normal(shape) * std).astype(np.float32)
            bias = np.zeros((1, shape[3]), np.float32)
            layers.append(_struct(weights=_cell(kernel, bias), pad=np.array([[0, 0, 0, 0]] if name.startswith("fc")
                                  else [[1, 1, 1, 1]], np.float64), type="conv", name=name,
                                  stride=np.array([[1, 1]], np.float64)))
        elif name.startswith("relu"):
            layers.append(_struct(type="relu", name=name))
        elif name.startswith("pool"):
            layers.append(_struct(name=name, stride=np.array([[2, 2]], np.float64),
                                  pad=np.array([[0, 1, 0, 1]], np.float64), type="pool", method="max",
                                  pool=np.array([[2, 2]], np.float64)))
        else:
            layers.append(_struct(type="softmax", name=name))
    average_image = np.tile(np.array(matconvnet.IMAGENET_MEAN_PIXEL, np.float32), (224, 224, 1))
    normalization = _struct(averageImage=average_image, keepAspect=np.array([[1]], np.uint8),
                            border=np.array([[32, 32]], np.float64), imageSize=np.array([[224, 224, 3]], np.float64),
                            interpolation="bilinear")
    names = _cell(*["class%d" % index for index in range(num_imagenet_classes)])
    classes = _struct(name=names, description=names)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    scipy.io.savemat(path, {"layers": _cell(*layers), "classes": classes, "normalization": normalization})
    return path


# ---------------------------------------------------------------- synthetic scenes

def draw_scene(rng, height, width):
    """(image uint8 (H, W, 3), labels uint8 (H, W)): sky over a wall or trees, a floor, a few objects."""
    labels = np.full((height, width), WALL, np.uint8)
    rows = np.arange(height)[:, None]
    cols = np.arange(width)[None, :]
    horizon = int(height * rng.uniform(0.25, 0.5))
    floor_line = int(height * rng.uniform(0.65, 0.85))
    labels[rows[:, 0] < horizon] = SKY
    labels[rows[:, 0] >= floor_line] = FLOOR
    for _ in range(rng.randint(1, 4)):
        cx, cy = rng.uniform(0, width), rng.uniform(horizon * 0.6, floor_line)
        rx, ry = rng.uniform(0.06, 0.15) * width, rng.uniform(0.1, 0.25) * height
        labels[((cols - cx) / rx) ** 2 + ((rows - cy) / ry) ** 2 < 1] = TREE
    for _ in range(rng.randint(1, 4)):
        obj = OBJECTS[rng.randint(len(OBJECTS))]
        w, h = int(rng.uniform(0.1, 0.25) * width), int(rng.uniform(0.1, 0.3) * height)
        x, y = rng.randint(0, width - w), rng.randint(horizon // 2, height - h)
        labels[y:y + h, x:x + w] = obj
        labels[y:y + h, x] = OTHER  # unlabelled borders, as annotators leave them
    image = np.zeros((height, width, 3), np.float64)
    for label, color in CLASS_COLORS.items():
        jitter = rng.uniform(-25, 25, 3)
        image[labels == label] = np.array(color) + jitter
    image[labels == OTHER] = 90
    image += rng.normal(0, 12, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8), labels


def write_scene_dataset(data_dir, num_training=40, num_validation=10, min_size=48, max_size=96, seed=0):
    """Write data_dir/ADEChallengeData2016 in the real layout; returns that folder."""
    rng = np.random.RandomState(seed)
    root = os.path.join(data_dir, "ADEChallengeData2016")
    for split, count, prefix in (("training", num_training, "ADE_train_"), ("validation", num_validation, "ADE_val_")):
        image_dir = os.path.join(root, "images", split)
        annotation_dir = os.path.join(root, "annotations", split)
        os.makedirs(image_dir, exist_ok=True)
        os.makedirs(annotation_dir, exist_ok=True)
        for index in range(1, count + 1):
            height, width = rng.randint(min_size, max_size + 1, size=2)
            image, labels = draw_scene(rng, height, width)
            stem = "%s%08d" % (prefix, index)
            imageio.imwrite(os.path.join(image_dir, stem + ".jpg"), image, quality=95)
            imageio.imwrite(os.path.join(annotation_dir, stem + ".png"), labels)
    with open(os.path.join(root, "objectInfo150.txt"), "w") as info:
        info.write("Idx\tRatio\tTrain\tVal\tName\n")
    with open(os.path.join(root, "sceneCategories.txt"), "w") as scenes:
        for split, count, prefix in (("training", num_training, "ADE_train_"), ("validation", num_validation, "ADE_val_")):
            for index in range(1, count + 1):
                scenes.write("%s%08d street\n" % (prefix, index))
    return root


# ---------------------------------------------------------------- the same scenes in the other layouts

# The classes the scenes become: VOC's (unlabelled borders 255) and those of a folder or arrays set of your own.
VOC_OF_SCENE = {OTHER: 255, WALL: 0, SKY: 0, FLOOR: 0, TREE: 16, PERSON: 15, CAR: 7, PAINTING: 20}
OWN_CLASSES = ("background", "tree", "person", "car", "painting")
OWN_OF_SCENE = {OTHER: 0, WALL: 0, SKY: 0, FLOOR: 0, TREE: 1, PERSON: 2, CAR: 3, PAINTING: 4}
BINARY_CLASSES = ("background", "object")
BINARY_OF_SCENE = {OTHER: 0, WALL: 0, SKY: 0, FLOOR: 0, TREE: 0, PERSON: 1, CAR: 1, PAINTING: 1}


def relabel(labels, mapping):
    """The scene's ADE20K labels mapped to another class list."""
    table = np.zeros(256, np.uint8)
    for scene_label, label in mapping.items():
        table[scene_label] = label
    return table[labels]


def voc_labels(labels):
    """VOC labels of a scene: its classes, and 255 on every pixel next to another class (VOC's object outlines)."""
    voc_labelled = relabel(labels, VOC_OF_SCENE)
    border = np.zeros(voc_labelled.shape, bool)
    for axis in (0, 1):
        changes = np.diff(voc_labelled, axis=axis) != 0
        border[tuple(slice(None, -1) if a == axis else slice(None) for a in (0, 1))] |= changes
        border[tuple(slice(1, None) if a == axis else slice(None) for a in (0, 1))] |= changes
    voc_labelled[border] = 255
    return voc_labelled


def scenes(count, min_size, max_size, seed):
    """`count` (image, ADE20K labels) scenes of sides in min_size..max_size."""
    rng = np.random.RandomState(seed)
    for _ in range(count):
        height, width = rng.randint(min_size, max_size + 1, size=2)
        yield draw_scene(rng, height, width)


def write_palette_png(path, labels):
    """A palette ("P") PNG whose pixel values are the labels and whose colours are the VOC devkit's."""
    picture = Image.fromarray(labels, "P")
    picture.putpalette(voc.voc_palette().ravel().tolist())
    picture.save(path)


def write_voc_dataset(data_dir, num_training=40, num_validation=10, min_size=48, max_size=96, seed=0):
    """Write data_dir/VOCdevkit/VOC2012 as the VOC tar extracts (JPEGs, palette PNGs with 255 borders, the
    Segmentation lists); returns {'training': ids, 'validation': ids}."""
    root = os.path.join(data_dir, voc.VOC_ROOT)
    for folder in ("JPEGImages", "SegmentationClass", os.path.join("ImageSets", "Segmentation")):
        os.makedirs(os.path.join(root, folder), exist_ok=True)
    ids = {"training": ["2012_%06d" % index for index in range(num_training)],
           "validation": ["2012_%06d" % index for index in range(num_training, num_training + num_validation)]}
    all_ids = ids["training"] + ids["validation"]
    for name, (image, labels) in zip(all_ids, scenes(len(all_ids), min_size, max_size, seed)):
        imageio.imwrite(os.path.join(root, "JPEGImages", name + ".jpg"), image, quality=95)
        write_palette_png(os.path.join(root, "SegmentationClass", name + ".png"), voc_labels(labels))
    for list_name, names in (("train", ids["training"]), ("val", ids["validation"]), ("trainval", all_ids)):
        with open(os.path.join(root, "ImageSets", "Segmentation", list_name + ".txt"), "w") as id_file:
            id_file.write("".join(name + "\n" for name in names))
    return ids


def write_sbd_dataset(sbd_dir, train_ids, val_ids, min_size=48, max_size=96, seed=1):
    """Write sbd_dir/benchmark_RELEASE/dataset as the SBD release holds it: img/<id>.jpg, cls/<id>.mat (struct
    GTcls with Segmentation, no 255), train.txt and val.txt."""
    root = os.path.join(sbd_dir, "benchmark_RELEASE", "dataset")
    for folder in ("img", "cls"):
        os.makedirs(os.path.join(root, folder), exist_ok=True)
    for name, (image, labels) in zip(train_ids + val_ids, scenes(len(train_ids + val_ids), min_size, max_size, seed)):
        imageio.imwrite(os.path.join(root, "img", name + ".jpg"), image, quality=95)
        segmentation = relabel(labels, {**VOC_OF_SCENE, OTHER: 0})
        scipy.io.savemat(os.path.join(root, "cls", name + ".mat"), {"GTcls": {
            "Segmentation": segmentation, "CategoriesPresent": np.unique(segmentation[segmentation > 0])}})
    for list_name, names in (("train", train_ids), ("val", val_ids)):
        with open(os.path.join(root, list_name + ".txt"), "w") as id_file:
            id_file.write("".join(name + "\n" for name in names))
    return root


def write_folder_dataset(data_dir, num_training=40, num_validation=10, min_size=48, max_size=96, seed=0,
                         colors=False, binary=False):
    """Write data_dir/images/<split>/ and annotations/<split>/ with the scenes as 5 classes (or 2 with binary),
    annotations as index PNGs and the names in classes.txt, or with colors as RGB masks and classes.csv."""
    class_names, mapping = (BINARY_CLASSES, BINARY_OF_SCENE) if binary else (OWN_CLASSES, OWN_OF_SCENE)
    palette = voc.voc_palette(len(class_names))
    drawn = scenes(num_training + num_validation, min_size, max_size, seed)
    for split, number in (("training", num_training), ("validation", num_validation)):
        for folder in ("images", "annotations"):
            os.makedirs(os.path.join(data_dir, folder, split), exist_ok=True)
        for index in range(number):
            image, labels = next(drawn)
            stem = "%s_%04d" % (split, index)
            imageio.imwrite(os.path.join(data_dir, "images", split, stem + ".png"), image)
            labels = relabel(labels, mapping)
            imageio.imwrite(os.path.join(data_dir, "annotations", split, stem + ".png"),
                            palette[labels] if colors else labels)
    with open(os.path.join(data_dir, datasets.CLASS_COLORS_FILE if colors else datasets.CLASS_NAMES_FILE),
              "w") as class_file:
        for name, color in zip(class_names, palette):
            class_file.write("%s,%d,%d,%d\n" % ((name,) + tuple(color)) if colors else name + "\n")
    return class_names


def write_arrays_dataset(data_dir, num_training=40, num_validation=10, size=64, seed=0, one_hot=False):
    """Write {train,validation}_{images,labels}.npy: uint8 [N, size, size, 3] scenes and their 5 classes as
    uint8 [N, size, size] or one-hot float32 [N, size, size, 5]; written through memory maps, so any N fits."""
    os.makedirs(data_dir, exist_ok=True)
    drawn = scenes(num_training + num_validation, size, size, seed)
    for split, number in (("training", num_training), ("validation", num_validation)):
        images_path, labels_path = datasets.array_paths(data_dir, datasets.ARRAY_PREFIXES[split])
        images = np.lib.format.open_memmap(images_path, "w+", np.uint8, (number, size, size, 3))
        labels_shape = (number, size, size) + ((len(OWN_CLASSES),) if one_hot else ())
        labels = np.lib.format.open_memmap(labels_path, "w+", np.float32 if one_hot else np.uint8, labels_shape)
        for index in range(number):
            image, scene_labels = next(drawn)
            images[index] = image
            own = relabel(scene_labels, OWN_OF_SCENE)
            labels[index] = np.eye(len(OWN_CLASSES), dtype=np.float32)[own] if one_hot else own
        images.flush()
        labels.flush()
        del images, labels
    return OWN_CLASSES


def zip_folder(folder, zip_path):
    """Zip `folder` so that it extracts to a folder of the same name (as ADEChallengeData2016.zip does)."""
    parent = os.path.dirname(os.path.abspath(folder))
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as archive:
        for directory, _, files in os.walk(folder):
            for name in sorted(files):
                path = os.path.join(directory, name)
                archive.write(path, os.path.relpath(path, parent))
    return zip_path

