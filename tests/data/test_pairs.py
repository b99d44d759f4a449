"""pairs.py: list files of ids, pairs whose files exist, and a required split without any."""
import pytest

from fcn_tensorflow.data import pairs
from fcn_tensorflow.data.reader import DataError


def test_ids_pairs_and_required_splits(tmp_path, capsys):
    (tmp_path / "ids.txt").write_text("a\n\nb\n")
    assert pairs.read_ids(str(tmp_path / "ids.txt")) == ["a", "b"]
    assert pairs.read_ids(str(tmp_path / "missing.txt"), required=False) == []
    with pytest.raises(DataError, match="missing.txt is missing"):
        pairs.read_ids(str(tmp_path / "missing.txt"))
    for name in ("a.jpg", "a.png", "b.jpg"):
        (tmp_path / name).write_bytes(b"")
    records = pairs.existing_pairs([(str(tmp_path / "a.jpg"), str(tmp_path / "a.png")),
                                    (str(tmp_path / "b.jpg"), str(tmp_path / "b.png"))])
    assert [record["filename"] for record in records] == ["a"]
    assert "Left out, missing: %s" % (tmp_path / "b.png") in capsys.readouterr().out
    pairs.require_pairs([], "validation", ("training",), "there")  # not required: no error
    with pytest.raises(DataError, match="No image/annotation pairs in the training split: expected them in there"):
        pairs.require_pairs([], "training", ("training",), "there")
