"""predictions.py: how evaluate groups images into batches of one size."""
from PIL import Image

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
