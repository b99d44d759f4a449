"""video.py: predict on a video writes an overlay video with the input's frame count, size and frame rate, and
the label map of each frame as predict labels that frame alone; a file cut short yields the frames before the cut
and one line for the rest; without imageio-ffmpeg, one line says what to install."""
import os
import sys

import imageio.v2 as imageio
import numpy as np
import pytest

from fcn_tensorflow.run import video
from tests.helpers import validation_folder

FPS = 12.5


def write_clip(path, frames, fps=FPS, faststart=False):
    """An H.264 video of the frames; faststart puts the index first, as files served on the web have it, so a
    cut file still tells its duration."""
    writer = imageio.get_writer(path, "ffmpeg", fps=fps, codec="libx264", macro_block_size=1,
                                output_params=["-movflags", "+faststart"] if faststart else None)
    for frame in frames:
        writer.append_data(frame)
    writer.close()
    return path


def scene_frames(flags, count=12, size=(40, 56)):
    """count frames of size: the validation scenes cropped and moving, so the labels change from frame to frame."""
    scenes = [imageio.imread(os.path.join(validation_folder(flags, "images"), name))
              for name in sorted(os.listdir(validation_folder(flags, "images")))]
    scenes = [np.pad(scene, ((0, 64), (0, 64), (0, 0)), mode="reflect") for scene in scenes]
    return [scenes[index % len(scenes)][index:index + size[0], 2 * index:2 * index + size[1]] for index in range(count)]


def decoded(path):
    reader = imageio.get_reader(path, "ffmpeg")
    frames, meta = [frame for frame in reader], reader.get_meta_data()
    reader.close()
    return frames, meta


def label_maps(folder):
    return [imageio.imread(os.path.join(folder, name)) for name in sorted(os.listdir(folder))]


def test_videos_are_told_by_their_names_and_batched_by_their_size():
    assert video.is_video("a/clip.MP4") and video.is_video("clip.avi") and not video.is_video("photo.png")
    assert video.output_paths("in/clip.avi", "out") == (os.path.join("out", "clip.mp4"), os.path.join("out", "clip"))
    assert video.frames_per_batch(40, 56, 4 * 512 * 512) == video.MOST_FRAMES_PER_BATCH
    assert video.frames_per_batch(1080, 1920, 4 * 512 * 512) == 1
    assert [len(batch) for batch in video.batches(range(12), 5)] == [5, 5, 2]
    assert video.frames_promised({"duration": 1.2, "fps": 10.0}) == 12
    assert video.frames_promised({"duration": float("inf"), "fps": 10.0}) is None
    assert video.frames_promised({"duration": 2.0, "fps": 10.0, "audio_codec": "aac"}) is None  # sound may outlast


def test_odd_sizes_are_written_at_their_size(tmp_path):
    path = str(tmp_path / "odd.mp4")
    with video.frame_writer(path, FPS, 41, 57) as writer:
        for value in range(3):
            writer.append_data(np.full((41, 57, 3), 80 * value, np.uint8))
    frames, meta = decoded(path)
    assert len(frames) == 3 and frames[0].shape == (41, 57, 3) and meta["fps"] == FPS


def test_a_frame_that_cannot_be_decoded_ends_the_reading_in_one_line(capsys):
    def damaged():
        yield from (np.zeros((4, 4, 3), np.uint8), np.ones((4, 4, 3), np.uint8))
        raise RuntimeError("Invalid NAL unit size\nmore of ffmpeg's log")

    broken = []
    assert len(list(video.readable_frames(damaged(), broken))) == 2 and len(broken) == 1
    assert video.report_cut("clip.mp4", 2, None, broken) == 1
    assert video.report_cut("clip.mp4", 12, 12, []) == 0
    assert capsys.readouterr().out == "Skipping the frames from 2 on of clip.mp4: they cannot be read (Invalid NAL " \
                                      "unit size)\n"


@pytest.mark.parametrize("flags", [{}, {"tta": "flip"}])
def test_predict_writes_the_overlay_video_and_each_frames_labels(trained_flags, run_fcn, tmp_path, capsys, flags):
    trained_flags = dict(trained_flags, **flags)
    clip = write_clip(str(tmp_path / "clip.mp4"), scene_frames(trained_flags))
    assert run_fcn("predict", input=clip, output_dir=str(tmp_path / "out"), **trained_flags) == 0
    overlay, meta = decoded(str(tmp_path / "out" / "clip.mp4"))
    assert len(overlay) == 12 and overlay[0].shape == (40, 56, 3) and meta["fps"] == FPS
    labels = label_maps(str(tmp_path / "out" / "clip"))
    assert sorted(os.listdir(str(tmp_path / "out" / "clip")))[:2] == ["00000.png", "00001.png"] and len(labels) == 12
    assert "Predicted 12 frames" in capsys.readouterr().out

    # the network saw the decoded frames (mp4 is lossy): predict those frames as images, one at a time
    frames = decoded(clip)[0]
    os.makedirs(str(tmp_path / "frames"))
    for index, frame in enumerate(frames):
        imageio.imwrite(str(tmp_path / "frames" / ("%05d.png" % index)), frame)
    run_fcn("predict", input=str(tmp_path / "frames"), output_dir=str(tmp_path / "images"), **trained_flags)
    for index, frame_labels in enumerate(labels):
        expected = imageio.imread(str(tmp_path / "images" / ("%05d.png" % index)))
        np.testing.assert_array_equal(frame_labels, expected)
    assert len({frame_labels.tobytes() for frame_labels in labels}) > 1  # the frames differ, so do their labels


def test_a_cut_video_yields_its_frames_before_the_cut_and_one_line(trained_flags, run_fcn, tmp_path, capsys):
    whole = write_clip(str(tmp_path / "whole.mp4"), scene_frames(trained_flags), faststart=True)
    cut = str(tmp_path / "cut.mp4")
    with open(whole, "rb") as source, open(cut, "wb") as target:
        target.write(source.read()[:os.path.getsize(whole) // 2])
    read = len(decoded(cut)[0])
    assert 0 < read < 12
    assert run_fcn("predict", input=cut, output_dir=str(tmp_path / "out"), **trained_flags) == 2
    out = capsys.readouterr().out
    skipped = [line for line in out.splitlines() if line.startswith("Skipping")]
    assert skipped == ["Skipping frames %d..11 of %s: its duration promises 12 frames, only the first %d can be "
                       "read (a file cut short?)" % (read, cut, read)], out
    assert len(decoded(str(tmp_path / "out" / "cut.mp4"))[0]) == read
    assert len(label_maps(str(tmp_path / "out" / "cut"))) == read


def test_a_file_that_is_no_video_is_one_error_line(trained_flags, run_fcn, tmp_path):
    fake = tmp_path / "notes.mp4"
    fake.write_text("not a video")
    with pytest.raises(SystemExit, match=r"^FCN.py: error: .*notes.mp4 cannot be read as a video \(") as error:
        run_fcn("predict", input=str(fake), output_dir=str(tmp_path / "out"), **trained_flags)
    assert "\n" not in str(error.value)


def test_without_imageio_ffmpeg_one_line_names_the_package(trained_flags, run_fcn, tmp_path, monkeypatch):
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"")
    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)  # import imageio_ffmpeg raises ImportError
    with pytest.raises(SystemExit, match=r"^FCN.py: error: --input=.*clip.mp4 is a video: reading and writing video "
                                         r"needs the imageio-ffmpeg package .*pip install -r requirements-export.txt"):
        run_fcn("predict", input=str(clip), **trained_flags)


def test_the_overlay_video_never_overwrites_its_input(trained_flags, run_fcn, tmp_path):
    clip = write_clip(str(tmp_path / "clip.mp4"), scene_frames(trained_flags, count=2))
    with pytest.raises(SystemExit, match="would overwrite it"):
        run_fcn("predict", input=clip, output_dir=str(tmp_path), **trained_flags)
