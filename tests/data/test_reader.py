"""data_reader.py: the original epoch semantics, streaming reads, odd image formats and bad pairs."""
import os
import re

import numpy as np
import pytest
from PIL import Image

from fcn_tensorflow.data import augment
from fcn_tensorflow.data import voc
from fcn_tensorflow.data import reader as dataset

SIZE = 8


def write_pair(folder, name, value=0, mode="RGB", image_size=(24, 16), annotation_size=None, labels=1):
    """An image of constant grey `value` saved in `mode` and its label PNG; returns the record."""
    image = Image.new("RGB", image_size, (value, value, value))
    image = image.convert(mode, palette=Image.ADAPTIVE) if mode == "P" else image.convert(mode)
    image_path = os.path.join(str(folder), name + (".jpg" if mode in ("RGB", "CMYK") else ".png"))
    image.save(image_path, quality=100)  # PNG ignores the quality
    annotation_path = os.path.join(str(folder), name + "_label.png")
    Image.fromarray(np.full((annotation_size or image_size)[::-1], labels, np.uint8)).save(annotation_path)
    return {"image": image_path, "annotation": annotation_path, "filename": name}


def make_reader(records, **options):
    return dataset.BatchDatset(records, dict({"resize": True, "resize_size": SIZE, "num_classes": 151}, **options))


def values(images):
    """The grey value of each image in a batch, which tells the test which record it came from."""
    return [int(round(image.mean())) for image in images]


@pytest.fixture
def numbered(tmp_path):
    """Five pairs whose images are grey 0, 40, 80, 120, 160 in this listed order."""
    return [write_pair(tmp_path, "pair%d" % index, 40 * index) for index in range(5)]


def test_nothing_is_read_before_the_first_batch(tmp_path, monkeypatch):
    """Reads happen only for records handed to the reading threads; none is handed over before next_batch."""
    submitted = []
    real_submit = dataset.BatchDatset._submit
    monkeypatch.setattr(dataset.BatchDatset, "_submit", lambda reader, *args: submitted.append(args) or
                        real_submit(reader, *args))
    missing = [{"image": str(tmp_path / ("%d.jpg" % index)), "annotation": str(tmp_path / ("%d.png" % index))}
               for index in range(1000)]
    with make_reader(missing) as reader:
        assert submitted == [] and reader._tasks.empty()
        assert reader.epochs_completed == 0 and reader.batch_offset == 0
        with pytest.raises(dataset.DataError, match=r"the first is .*/0\.jpg"):
            reader.next_batch(2)
        assert len(submitted) > 0


def test_epochs_keep_the_listed_order_first_then_shuffle_and_drop_the_tail(numbered, capsys):
    with make_reader(numbered) as reader:
        first, second = reader.next_batch(2), reader.next_batch(2)
        assert values(first[0]) == [0, 40] and values(second[0]) == [80, 120]
        assert first[0].shape == (2, SIZE, SIZE, 3) and first[0].dtype == np.uint8
        assert first[1].shape == (2, SIZE, SIZE, 1) and first[1].dtype == np.uint8
        assert "Epochs completed" not in capsys.readouterr().out
        seen = []
        for _ in range(2):
            images, _ = reader.next_batch(2)
            seen += values(images)
        assert reader.epochs_completed == 1 and reader.batch_offset == 4
        assert capsys.readouterr().out.splitlines() == ["Epochs completed: 1"]
        assert len(set(seen)) == 4  # one epoch: each record at most once, the fifth is the dropped tail
        reader.next_batch(2)
        assert reader.epochs_completed == 2 and capsys.readouterr().out == "Epochs completed: 2\n"
    with make_reader(numbered, report_epochs=False) as quiet:  # as the validation readers are made
        for _ in range(5):
            quiet.next_batch(2)
        assert quiet.epochs_completed == 2 and capsys.readouterr().out == ""


def test_threads_default_to_the_usable_cores_and_change_nothing_in_the_batches(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 3, 5}, raising=False)
    assert dataset.usable_cores() == 3
    monkeypatch.delattr(os, "sched_getaffinity")
    monkeypatch.setattr(os, "cpu_count", lambda: 7)
    records = [write_pair(tmp_path, "pair%d" % index, 10 * index, image_size=(24 + index, 16)) for index in range(11)]
    open(records[4]["image"], "wb").close()  # a bad pair, skipped in every epoch; shuffles and augmentation too
    read = {}
    for threads in (None, 1):
        np.random.seed(3)
        augmentation = augment.Augmentation(SIZE, (0.5, 2.0), np.zeros(3), seed=1)
        with make_reader(records, threads=threads, max_bad_fraction=0.5, augment=augmentation) as reader:
            assert len(reader._threads) == (threads or 7)
            read[threads] = [reader.next_batch(3) for _ in range(9)] + [reader.get_random_batch(4)]
            read[threads] = [array for batch in read[threads] + list(reader.batches(3)) for array in batch]
    assert len(read[None]) == len(read[1]) == 28
    for seven, one in zip(read[None], read[1]):
        np.testing.assert_array_equal(seven, one)


def test_reset_batch_offset_and_random_batch(numbered):
    with make_reader(numbered) as reader:
        first = values(reader.next_batch(2)[0])
        reader.next_batch(2)
        reader.reset_batch_offset()
        assert values(reader.next_batch(2)[0]) == first
        reader.reset_batch_offset(3)
        assert values(reader.next_batch(2)[0]) == [120, 160]
        images, annotations = reader.get_random_batch(3)
        assert images.shape == (3, SIZE, SIZE, 3) and annotations.shape == (3, SIZE, SIZE, 1)


def test_reads_ahead_a_bounded_number_of_pairs(numbered, monkeypatch):
    loaded = []

    def counting_load_pair(*args):
        loaded.append(args[0]["image"])
        return load_pair(*args)
    load_pair = dataset.load_pair
    monkeypatch.setattr(dataset, "load_pair", counting_load_pair)
    with make_reader(numbered * 200) as reader:
        reader.next_batch(2)
        for slot in list(reader._window):
            assert slot.done.wait(timeout=60)
        assert len(loaded) == (dataset.PREFETCH_BATCHES + 1) * 2
        threads = reader._threads
    assert not any(thread.is_alive() for thread in threads)


def test_get_records_and_batches_cover_the_split_in_order(numbered):
    with make_reader(numbered) as reader:
        assert [values(images) for images, _ in reader.batches(2)] == [[0, 40], [80, 120], [160]]
        images, annotations = reader.get_records()
        assert values(images) == [0, 40, 80, 120, 160] and annotations.shape == (5, SIZE, SIZE, 1)


@pytest.mark.parametrize("mode", ["L", "LA", "RGBA", "P", "CMYK", "I;16"])
def test_any_image_mode_becomes_rgb(tmp_path, mode):
    record = write_pair(tmp_path, "odd", 100, mode=mode)
    with make_reader([record, record]) as reader:
        images, annotations = reader.next_batch(2)
    assert images.shape == (2, SIZE, SIZE, 3) and images.dtype == np.uint8
    assert np.all(np.abs(images.astype(int) - 100) <= 3)  # CMYK goes through JPEG, which is lossy
    assert np.all(annotations == 1)


def test_palette_annotation_gives_its_indices(tmp_path):
    record = write_pair(tmp_path, "pal", 50)
    labels = Image.fromarray(np.full((16, 24), 7, np.uint8)).convert("P")
    labels.putpalette([value for index in range(256) for value in (index, 255 - index, 0)])
    labels.save(record["annotation"])
    assert Image.open(record["annotation"]).mode == "P"
    with make_reader([record, record]) as reader:
        _, annotations = reader.next_batch(2)
    assert np.all(annotations == 7)


def test_annotation_of_another_size_is_resized_like_its_image(tmp_path, capsys):
    record = write_pair(tmp_path, "odd_size", 30, image_size=(24, 16), annotation_size=(12, 8))
    image, annotation, warning = dataset.load_pair(record)
    assert image.shape == (16, 24, 3) and annotation.shape == (16, 24, 1)
    with make_reader([record, record]) as reader:
        _, annotations = reader.next_batch(2)
        reader.next_batch(2)
    assert annotations.shape == (2, SIZE, SIZE, 1) and np.all(annotations == 1)
    assert capsys.readouterr().out.count("Warning: %s is 12x8 but its image is 24x16" % record["annotation"]) == 1


def _corrupt(record):
    with open(record["image"], "wb") as image_file:
        image_file.write(os.urandom(2000))


def _truncate(record):
    with open(record["image"], "rb") as image_file:
        data = image_file.read()
    with open(record["image"], "wb") as image_file:
        image_file.write(data[:len(data) // 2])


def _empty(record):
    open(record["image"], "wb").close()


def _labels_out_of_range(record):
    Image.fromarray(np.full((16, 24), 151, np.uint8)).save(record["annotation"])


def _missing_annotation(record):
    os.remove(record["annotation"])


BAD_PAIRS = {  # how to spoil a pair -> (the file named, words of the reason)
    "corrupt": (_corrupt, "image", "cannot identify image file"),
    "truncated": (_truncate, "image", "Truncated"),
    "zero_byte": (_empty, "image", "cannot identify image file"),
    "labels_out_of_range": (_labels_out_of_range, "annotation", "labels 151..151 outside 0..150"),
    "missing_annotation": (_missing_annotation, "annotation", "No such file"),
}


@pytest.mark.parametrize("kind", sorted(BAD_PAIRS))
def test_bad_pair_is_skipped_named_counted_and_the_batch_filled(tmp_path, capsys, kind):
    spoil, named, reason = BAD_PAIRS[kind]
    records = [write_pair(tmp_path, "pair%d" % index, 40 * index) for index in range(4)]
    spoil(records[1])
    with make_reader(records, max_bad_fraction=0.5) as reader:
        images, _ = reader.next_batch(2)
        assert values(images) == [0, 80]
        assert values(reader.next_batch(1)[0]) == [120]
        assert list(reader.bad_pairs) == [1]
        skipped = [line for line in capsys.readouterr().out.splitlines() if line.startswith("Skipping")]
        assert len(skipped) == 1 and records[1][named] in skipped[0] and reason in skipped[0]
        for _ in range(6):  # later epochs neither read it again nor report it again
            reader.next_batch(2)
        assert "Skipping" not in capsys.readouterr().out
        assert reader.summary().startswith("Skipped 1 of 4 image/annotation pairs:")
    assert records[1][named] in capsys.readouterr().out  # close() prints the summary


def test_more_than_one_percent_bad_stops_with_the_first_named(tmp_path):
    good = write_pair(tmp_path, "good", 10)
    bad = [write_pair(tmp_path, "bad%d" % index, 10) for index in range(3)]
    for record in bad:
        _empty(record)
    with make_reader([good] * 198 + bad[:2]) as reader:  # 2 of 200 is 1%: still fine
        for _ in range(101):
            reader.next_batch(2)
        assert len(reader.bad_pairs) == 2
    with make_reader(bad + [good] * 197) as reader:  # 3 of 200 is too many
        with pytest.raises(dataset.DataError, match="3 of 200 .*the first is %s" % re.escape(bad[0]["image"])):
            reader.next_batch(2)


def test_fewer_readable_pairs_than_a_batch_is_a_clear_error(tmp_path):
    records = [write_pair(tmp_path, "pair%d" % index) for index in range(3)]
    _empty(records[0])
    with make_reader(records, max_bad_fraction=1.0) as reader:
        with pytest.raises(dataset.DataError, match="Only 2 of 3 .* fewer than the batch size 3"):
            for _ in range(3):
                reader.next_batch(3)


def labelled_pair(folder, name, labels, value=50):
    """write_pair with the (16, 24) `labels` as its annotation."""
    record = write_pair(folder, name, value)
    write_labels(record, labels)
    return record


def half_and_half(left, right):
    labels = np.full((16, 24), left, np.uint8)
    labels[:, 12:] = right
    return labels


@pytest.mark.parametrize("num_bad, stops", [(1, False), (2, False), (3, True)])
def test_a_run_stops_only_when_more_than_1_percent_and_more_than_2_pairs_are_bad(tmp_path, capsys, num_bad, stops):
    """40 pairs: one or two bad ones are skipped, each named once; three stop the run."""
    good = labelled_pair(tmp_path, "good", half_and_half(0, 1))
    bad = [labelled_pair(tmp_path, "bad%d" % index, half_and_half(0, 200)) for index in range(3)]
    with make_reader(bad[:num_bad] + [good] * (40 - num_bad)) as reader:
        if stops:
            with pytest.raises(dataset.DataError, match="3 of 40 .*the first is %s" % re.escape(bad[0]["annotation"])):
                for _ in range(25):
                    reader.next_batch(2)
            return
        for _ in range(25):  # more than an epoch
            reader.next_batch(2)
    skipped = [line for line in capsys.readouterr().out.splitlines() if line.startswith("Skipping")]
    assert len(skipped) == num_bad and all(record["annotation"] in line for record, line in zip(bad, skipped))


def test_the_bad_pair_rule_needs_more_than_1_percent_and_more_than_2():
    dataset.check_bad_fraction(2, 100, "x")  # 2%, but only 2
    dataset.check_bad_fraction(2, 2, "x")  # all, but only 2: a split of which none can be read is refused elsewhere
    dataset.check_bad_fraction(3, 300, "x")  # 3, but 1% exactly
    with pytest.raises(dataset.DataError, match="3 of 299"):
        dataset.check_bad_fraction(3, 299, "x")


def test_a_class_without_pixels_in_the_first_epoch_is_named_once(tmp_path, capsys):
    names = ["background", "object", "person"]
    masks = [labelled_pair(tmp_path, "mask%d" % index, half_and_half(0, 255)) for index in range(4)]
    with make_reader(masks, num_classes=3, ignore_label=255, class_names=names) as reader:
        for _ in range(9):  # four epochs and a bit
            reader.next_batch(2)
    lines = [line for line in capsys.readouterr().out.splitlines() if "no pixel" in line]
    assert len(lines) == 1 and "class 1 (object), class 2 (person) have no pixel" in lines[0]
    assert "class 0" not in lines[0] and "255" not in lines[0]

    mixed = [labelled_pair(tmp_path, "mixed%d" % index, half_and_half(index, index + 1)) for index in range(2)]
    with make_reader(mixed, num_classes=3, class_names=names) as reader:
        for _ in range(4):
            reader.next_batch(2)
    assert "no pixel" not in capsys.readouterr().out


def test_label_values_make_the_listed_values_classes_in_order(tmp_path):
    record = labelled_pair(tmp_path, "mask", half_and_half(0, 255))
    _, annotation, _ = dataset.load_pair(record, SIZE, num_classes=2, label_values=(0, 255))
    assert set(np.unique(annotation)) == {0, 1} and np.all(annotation[:, SIZE // 2:] == 1)
    with make_reader([record] * 2, num_classes=2, label_values=(0, 255)) as reader:
        assert set(np.unique(reader.next_batch(2)[1])) == {0, 1}
    with pytest.raises(dataset.BadPairError, match=re.escape("labels 255..255 outside 0..1 (2 classes); 0/255 masks? "
                                                             "pass --label_values=0,255")):
        dataset.load_pair(record, num_classes=2)


# ---------------------------------------------------------------- other datasets: ignore label, colours, SBD, arrays

def write_labels(record, labels, palette=None):
    """Save (H, W) labels as the record's annotation: grey, or a palette PNG (VOC's) with `palette`."""
    picture = Image.fromarray(np.asarray(labels, np.uint8), "P" if palette is not None else "L")
    if palette is not None:
        picture.putpalette(palette.ravel().tolist())
    picture.save(record["annotation"])


def test_ignore_label_passes_resizing_and_other_labels_past_the_classes_are_bad(tmp_path, capsys):
    record = write_pair(tmp_path, "voc", 50, image_size=(24, 16))
    labels = np.full((16, 24), 15, np.uint8)
    labels[:, 12:] = 255  # a VOC border, kept (nearest) through the resize to 8 x 8
    write_labels(record, labels, voc.voc_palette())
    with make_reader([record, record], num_classes=21, ignore_label=255) as reader:
        _, annotations = reader.next_batch(2)
    assert set(np.unique(annotations)) == {15, 255} and np.all(annotations[:, :, 6:] == 255)

    labels[0, 0] = 30
    write_labels(record, labels, voc.voc_palette())
    with pytest.raises(dataset.BadPairError, match=re.escape(
            "labels 30..30 outside 0..20 (21 classes) and not the ignore label 255")):
        dataset.load_pair(record, SIZE, num_classes=21, ignore_label=255)
    with pytest.raises(dataset.BadPairError, match=re.escape("labels 30..255 outside 0..20 (21 classes)")):
        dataset.load_pair(record, SIZE, num_classes=21)


def test_colour_masks_map_through_the_class_colours_and_an_unknown_colour_is_bad(tmp_path):
    colors = np.array([[0, 0, 0], [255, 0, 0], [0, 0, 255]], np.uint8)
    record = write_pair(tmp_path, "mask", 50)
    labels = np.zeros((16, 24), np.uint8)
    labels[4:8] = 2
    labels[:, :3] = 1
    Image.fromarray(colors[labels]).save(record["annotation"])
    _, annotation, _ = dataset.load_pair(record, num_classes=3, label_colors=colors)
    np.testing.assert_array_equal(annotation[..., 0], labels)

    rgb = colors[labels]
    rgb[0, 5:9] = (10, 20, 30)
    Image.fromarray(rgb).convert("RGBA").save(record["annotation"])
    with pytest.raises(dataset.BadPairError, match=re.escape("colour (10, 20, 30) at 4 pixels is not in classes.csv")):
        dataset.load_pair(record, num_classes=3, label_colors=colors)


def test_sbd_mat_gives_its_segmentation(tmp_path):
    import scipy.io

    labels = np.arange(12, dtype=np.uint8).reshape(3, 4) % 21
    path = str(tmp_path / "2008_000002.mat")
    scipy.io.savemat(path, {"GTcls": {"Segmentation": labels, "CategoriesPresent": np.unique(labels)}})
    np.testing.assert_array_equal(dataset.read_annotation(path), labels)


def array_records(tmp_path, images, labels):
    np.save(str(tmp_path / "images.npy"), images)
    np.save(str(tmp_path / "labels.npy"), labels)
    return [{"image": str(tmp_path / "images.npy"), "annotation": str(tmp_path / "labels.npy"), "index": index,
             "filename": "item%d" % index} for index in range(len(images))]


def test_array_items_with_integer_or_one_hot_labels(tmp_path):
    rng = np.random.RandomState(0)
    images = rng.uniform(0, 255, (3, 12, 10, 3)).astype(np.float32)
    labels = rng.randint(0, 4, (3, 12, 10))
    one_hot = np.eye(4, dtype=np.float32)[labels]
    for form in (labels, one_hot):
        records = array_records(tmp_path, images, form)
        image, annotation, _ = dataset.load_pair(records[2], num_classes=4)
        np.testing.assert_array_equal(image, np.round(images[2]).astype(np.uint8))
        np.testing.assert_array_equal(annotation[..., 0], labels[2])
        with make_reader(records, num_classes=4) as reader:
            batch_images, batch_labels = reader.next_batch(3)
        assert batch_images.shape == (3, SIZE, SIZE, 3) and batch_labels.shape == (3, SIZE, SIZE, 1)

    one_hot[1, 0, :3] = 0  # three pixels without a class
    records = array_records(tmp_path, images.astype(np.uint8)[..., :1], one_hot)  # grey images too
    assert dataset.load_pair(records[0])[0].shape == (12, 10, 3)
    with pytest.raises(dataset.BadPairError, match=r"labels\.npy\[1\]: 3 pixels have an all-zero one-hot vector"):
        dataset.load_pair(records[1], num_classes=4)
    _, annotation, _ = dataset.load_pair(records[1], num_classes=4, ignore_label=255)
    assert np.all(annotation[0, :3] == 255) and np.all(annotation[1:, :, 0] == labels[1, 1:])


def test_array_labels_past_the_classes_name_the_item(tmp_path):
    labels = np.zeros((2, 12, 10), np.int64)
    labels[1, 3, 3] = 7
    records = array_records(tmp_path, np.zeros((2, 12, 10, 3), np.uint8), labels)
    with make_reader(records + records[:1] * 198, num_classes=2) as reader:
        reader.next_batch(2)
    assert list(reader.bad_pairs) == [1]
    assert str(reader.bad_pairs[1]) == "%s[1]: labels 7..7 outside 0..1 (2 classes)" % records[1]["annotation"]
