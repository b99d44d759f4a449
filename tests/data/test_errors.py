"""errors.py: a bad pair names its file and the reason; reader.py raises the same classes."""
from fcn_tensorflow.data import errors
from fcn_tensorflow.data import reader


def test_a_bad_pair_names_the_file_and_the_reason():
    error = errors.BadPairError("a/b.png", "labels 255..255 outside 0..1 (2 classes)")
    assert (error.path, error.reason, str(error)) == ("a/b.png", "labels 255..255 outside 0..1 (2 classes)",
                                                      "a/b.png: labels 255..255 outside 0..1 (2 classes)")
    assert reader.BadPairError is errors.BadPairError and reader.DataError is errors.DataError
