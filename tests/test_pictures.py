"""pictures.py: colours, overlays, the titled side-by-side with its legend, and PNG files."""
import imageio.v2 as imageio
import numpy as np

from fcn_tensorflow import pictures
from fcn_tensorflow.data import scene_parsing


def test_colorize_and_overlay():
    palette = scene_parsing.ade20k_palette()
    colors = pictures.colorize(np.array([[0, 1], [3, 3]]), palette)
    assert colors.shape == (2, 2, 3) and tuple(colors[1, 1]) == tuple(palette[3])
    blend = pictures.overlay(np.zeros((2, 2, 3), np.uint8), np.array([[1, 1], [1, 1]]), palette)
    assert tuple(blend[0, 0]) == (60, 60, 60)  # half of wall's (120, 120, 120)


def test_side_by_side_has_titles_three_panels_and_a_legend():
    palette, names = scene_parsing.ade20k_palette(), scene_parsing.ade20k_class_names()
    photo = np.full((32, 40, 3), 7, np.uint8)
    truth = np.full((32, 40), 3, np.uint8)
    picture = pictures.side_by_side([photo, truth, truth], palette, names)
    zoom, title = 6, 16  # enlarged 6x to 192 rows, under a 16-row title strip
    assert picture.shape[1] == 3 * 40 * zoom and picture.shape[0] > title + 32 * zoom
    np.testing.assert_array_equal(picture[title + 5, 45 * zoom], palette[3])
    np.testing.assert_array_equal(picture[title + 5, 5], photo[0, 0])
    for panel in range(3):  # dark title text over each panel, on white
        strip = picture[:title, panel * 40 * zoom:(panel + 1) * 40 * zoom]
        assert (strip < 100).any() and (strip == 255).mean() > 0.8


def test_save_image_with_and_without_the_mean(tmp_path):
    pictures.save_image(np.full((4, 5, 3), 10.0), str(tmp_path), "plain")
    pictures.save_image(np.full((4, 5, 3), -20.0), str(tmp_path), "centred", mean=[30, 40, 300])
    assert imageio.imread(str(tmp_path / "plain.png"))[0, 0].tolist() == [10, 10, 10]
    assert imageio.imread(str(tmp_path / "centred.png"))[0, 0].tolist() == [10, 20, 255]


def test_with_legend_lists_only_the_classes_present_under_the_picture():
    palette = np.array([[200, 0, 0], [0, 200, 0], [0, 0, 200], [200, 200, 0]], np.uint8)
    picture = np.full((30, 50, 3), 255, np.uint8)
    labels = np.zeros((30, 50), np.uint8)
    labels[:, 25:] = 2
    drawn = pictures.with_legend(picture, [labels], palette, ["zero", "one", "two", "three"])
    np.testing.assert_array_equal(drawn[:30, :50], picture)
    legend = drawn[30:].reshape(-1, 3)
    assert drawn.shape[0] > 30 + 10 and drawn.shape[1] == pictures.LEGEND_COLUMN_WIDTH  # widened to fit a column
    shown = {tuple(color) for color in palette if (legend == color).all(axis=1).any()}
    assert shown == {(200, 0, 0), (0, 0, 200)}  # the swatches of classes 0 and 2, not 1 and 3
    assert (legend < 100).all(axis=1).any()  # dark text: the index and name
