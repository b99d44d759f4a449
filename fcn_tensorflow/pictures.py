"""Pictures of label maps: colours, overlays, the side-by-side with titles and legend, PNG files.

No TensorFlow import here.
"""
import os

import imageio.v2 as imageio
import numpy as np
from PIL import Image, ImageDraw

PANEL_TITLES = ("input", "ground truth", "prediction")
LEGEND_COLUMN_WIDTH = 160  # pixels of one legend column: a swatch, an index and a short class name


def colorize(labels, palette):
    """Label map (H, W) or (H, W, 1) of class indices -> RGB uint8 (H, W, 3)."""
    labels = np.asarray(labels)
    if labels.ndim == 3:
        labels = labels[..., 0]
    return palette[np.clip(labels, 0, len(palette) - 1)]


def overlay(image, labels, palette, opacity=0.5):
    """The label colours blended over an RGB photo of the same height and width (uint8)."""
    blend = (1 - opacity) * np.asarray(image, np.float32) + opacity * colorize(labels, palette)
    return np.round(blend).astype(np.uint8)


def save_image(image, save_dir, name, mean=None):
    """Save an image as save_dir/name.png (uint8); with `mean`, add it back first (the original's signature)."""
    if mean is not None:
        image = np.clip(np.asarray(image) + np.asarray(mean), 0, 255)
    path = os.path.join(save_dir, name + ".png")
    imageio.imwrite(path, np.asarray(image).astype(np.uint8))
    return path


def side_by_side(pictures, palette, class_names, titles=PANEL_TITLES, legend_columns=3, min_height=192):
    """One RGB picture: a title over each panel, the photo, each label map coloured, then a legend of the
    classes shown."""
    photo, label_maps = np.asarray(pictures[0], np.uint8), [np.asarray(p) for p in pictures[1:]]
    panels = [photo] + [colorize(labels, palette) for labels in label_maps]
    zoom = max(1, min_height // photo.shape[0])  # small inputs are enlarged so the text stays readable
    row = np.concatenate(panels, axis=1).repeat(zoom, axis=0).repeat(zoom, axis=1)
    panel_width = photo.shape[1] * zoom
    title_height = 16
    canvas = Image.new("RGB", (row.shape[1], title_height + row.shape[0]), (255, 255, 255))
    canvas.paste(Image.fromarray(row), (0, title_height))
    draw = ImageDraw.Draw(canvas)
    for position, title in enumerate(titles[:len(panels)]):
        draw.text((position * panel_width + 4, 2), title, fill=(0, 0, 0))
    return with_legend(np.asarray(canvas), label_maps, palette, class_names, legend_columns)


def with_legend(picture, label_maps, palette, class_names, columns=None, column_width=LEGEND_COLUMN_WIDTH):
    """The RGB picture with a legend under it: a swatch, the index and the name of each class present in the
    label maps, in `columns` columns (default: as many of column_width pixels as fit, at least one; the picture
    is widened with white when one does not fit)."""
    present = sorted(set(np.unique(np.concatenate([np.asarray(labels).ravel() for labels in label_maps])).tolist()))
    picture = np.asarray(picture, np.uint8)
    width = max(picture.shape[1], column_width if columns is None else 0)
    columns = columns or max(1, width // column_width)
    line_height, swatch = 14, 10
    rows = (len(present) + columns - 1) // columns
    canvas = Image.new("RGB", (width, picture.shape[0] + 6 + rows * line_height), (255, 255, 255))
    canvas.paste(Image.fromarray(picture), (0, 0))
    draw = ImageDraw.Draw(canvas)
    column_width = width // columns
    for position, label in enumerate(present):
        x = (position % columns) * column_width + 4
        y = picture.shape[0] + 4 + (position // columns) * line_height
        draw.rectangle([x, y + 1, x + swatch, y + 1 + swatch], fill=tuple(int(c) for c in palette[label]),
                       outline=(0, 0, 0))
        name = class_names[label] if label < len(class_names) else str(label)
        draw.text((x + swatch + 4, y), "%d %s" % (label, name), fill=(0, 0, 0))
    return np.asarray(canvas)
