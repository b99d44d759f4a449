"""predictions.py: how evaluate groups images into batches of one size, and skips bad pairs."""
import re

import numpy as np
import pytest
from PIL import Image

import BatchDatsetReader as dataset
import predictions


def test_batches_group_images_of_a_padded_size_and_leave_unreadable_ones_alone(tmp_path):
    records = []
    for name, size in (("broken", None), ("a", (40, 30)), ("b", (33, 40)), ("c", (64, 64)), ("d", (40, 30))):
        path = str(tmp_path / (name + ".png"))
        if size:
            Image.new("RGB", size).save(path)
        else:
            open(path, "wb").close()
        records.append({"image": path, "annotation": path, "filename": name})
    names = [[record["filename"] for record in batch] for batch in predictions.batches_of_a_size(records, 32)]
    assert names == [["a", "d"], ["b", "c"], ["broken"]]  # 64x32 (width x height) before 64x64; the broken one last
    exact = [[record["filename"] for record in batch] for batch in predictions.batches_of_a_size(records, 1)]
    assert exact == [["b"], ["a", "d"], ["c"], ["broken"]]
    assert [len(batch) for batch in predictions.batches_of_a_size(records[1:] * 3, 32, max_pixels=2 * 64 * 32)] \
        == [2, 2, 2, 1, 1, 1, 1, 1, 1]


def test_evaluate_skips_a_bad_pair_but_stops_at_more_than_one_percent_as_training_does(tmp_path, capsys):
    image, annotation = str(tmp_path / "good.png"), str(tmp_path / "good_labels.png")
    Image.new("RGB", (8, 6)).save(image)
    Image.fromarray(np.full((6, 8), 3, np.uint8)).save(annotation)
    good = {"image": image, "annotation": annotation, "filename": "good"}
    bad = [{"image": str(tmp_path / ("bad%d.jpg" % index)), "annotation": annotation, "filename": "bad%d" % index}
           for index in range(3)]
    for record in bad:
        open(record["image"], "wb").close()
    options = {"num_classes": 151, "ignore_label": None, "label_colors": None}

    def usable(records):
        bad_pairs = []
        return [predictions.usable_pair(record, options, bad_pairs, len(records)) for record in records]

    pairs = usable([good] * 198 + bad[:2])  # 2 of 200 is 1%: skipped, each with a line naming the file
    assert sum(pair is None for pair in pairs) == 2 and pairs[0][1].shape == (6, 8)
    skipped = [line for line in capsys.readouterr().out.splitlines() if line.startswith("Skipping")]
    assert [line.split(":")[0] for line in skipped] == ["Skipping " + bad[0]["image"], "Skipping " + bad[1]["image"]]
    with pytest.raises(dataset.DataError, match="3 of 200 .*the first is %s" % re.escape(bad[0]["image"])):
        usable(bad + [good] * 197)
