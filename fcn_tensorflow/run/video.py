"""Predict on a video (--mode=predict --input=clip.mp4): OUT/clip.mp4, each frame with its labels' colours blended
over it (pictures.overlay, at the input's size, without the legend predict's pictures carry: it would change the
size), at the input's frame rate, and the label maps OUT/clip/00000.png, 00001.png, ... Frames run through the
network in batches. A file cut short (a download stopped, a recording not closed) yields the frames before the cut:
they are written, and the rest are named in one line, as predict names a bad image of a folder.

No TensorFlow here: the caller hands a labels_of_batch(frames) that runs the predictor. Reading and writing need
the imageio-ffmpeg package (requirements-export.txt), which brings its own ffmpeg binary.
"""
import math
import os

import imageio.v2 as imageio

from fcn_tensorflow import console
from fcn_tensorflow import pictures

VIDEO_EXTENSIONS = (".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv", ".flv", ".ts")
MOST_FRAMES_PER_BATCH = 8  # more frames per run gain little on a CPU and hold more frames in memory
EXTRA_PACKAGE = "imageio-ffmpeg"
CONTAINER_SLACK = 1  # frames a container's duration may promise beyond its picture (start offsets, edit lists)


def is_video(path):
    """Whether predict takes `path` as a video: a file named like one (imageio picks its reader by the name too)."""
    return not os.path.isdir(path) and path.lower().endswith(VIDEO_EXTENSIONS)


def missing_support():
    """None when video can be read and written here, else one sentence saying what to install."""
    try:
        import imageio_ffmpeg
        imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError) as error:
        return ("reading and writing video needs the %s package (%s): pip install -r requirements-export.txt, or "
                "pip install %s" % (EXTRA_PACKAGE, error, EXTRA_PACKAGE))
    return None


def output_paths(input_path, output_dir):
    """(the overlay video output_dir/<stem>.mp4, the folder output_dir/<stem>/ of its label maps)."""
    stem = os.path.splitext(os.path.basename(input_path))[0]
    return os.path.join(output_dir, stem + ".mp4"), os.path.join(output_dir, stem)


def open_video(path):
    """(imageio reader, its metadata: fps, size (width, height), duration); OSError in a line when it is no video."""
    try:
        reader = imageio.get_reader(path, "ffmpeg")
        meta = reader.get_meta_data()
    except Exception as error:  # imageio reports what ffmpeg could not read as OSError, RuntimeError, ...
        raise OSError("%s cannot be read as a video (%s)" % (path, str(error).strip().splitlines()[0])) from None
    return reader, meta


def frames_promised(meta):
    """The frame count the container's duration and frame rate give, or None when it does not say. Not with a sound
    track: the duration is then the longer of the two, and a clip whose sound outlasts its picture is not cut."""
    duration, fps = meta.get("duration"), meta.get("fps")
    if not duration or not fps or not math.isfinite(duration * fps) or meta.get("audio_codec"):
        return None
    return int(round(duration * fps))


def frames_counted(path):
    """The frames of the file's picture, counted without decoding them (for the progress line), or None."""
    import imageio_ffmpeg  # video needs it: FCN.py checks it is there (missing_support)
    try:
        return imageio_ffmpeg.count_frames_and_secs(path)[0]
    except Exception:  # a file ffmpeg cannot count only loses the progress line's total
        return None


def readable_frames(reader, broken):
    """The frames of the reader up to its end or the first that cannot be decoded (that error goes to `broken`)."""
    frames = iter(reader)
    while True:
        try:
            frame = next(frames)
        except StopIteration:
            return
        except Exception as error:  # ffmpeg's reader reports a cut or damaged stream in several exception types
            broken.append(error)
            return
        yield frame


def batches(items, size):
    """Lists of `size` consecutive items (the last may be shorter)."""
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def frames_per_batch(height, width, max_pixels):
    """How many frames of this size run at once: up to max_pixels, at least 1, at most MOST_FRAMES_PER_BATCH."""
    return max(1, min(MOST_FRAMES_PER_BATCH, max_pixels // max(1, height * width)))


def labelled_frames(frames, labels_of_batch, batch_size):
    """(frame, uint8 label map) of each frame, the frames run in batches of batch_size through labels_of_batch."""
    for batch in batches(frames, batch_size):
        yield from zip(batch, labels_of_batch(batch))


def frame_writer(path, fps, height, width):
    """An imageio writer of H.264 at the input's size and frame rate: 4:2:0 colour (what every player shows) when
    both sides are even, as it needs, else 4:4:4 (the size is kept, some players cannot show it)."""
    even = height % 2 == 0 and width % 2 == 0
    return imageio.get_writer(path, "ffmpeg", fps=fps, codec="libx264", macro_block_size=1,
                              pixelformat="yuv420p" if even else "yuv444p", ffmpeg_log_level="error")


def predict_video(input_path, output_dir, labels_of_batch, palette, max_pixels):
    """Write the overlay video and the label maps of input_path's frames into output_dir; labels_of_batch(frames)
    returns a uint8 (H, W) label map per RGB frame; batches hold up to max_pixels. Returns the number of frames
    that could not be read (0, or those after a cut); OSError when no frame can be read."""
    reader, meta = open_video(input_path)
    video_path, labels_dir = output_paths(input_path, output_dir)
    width, height = meta["size"]
    promised, broken, written = frames_promised(meta), [], 0
    with reader:
        os.makedirs(labels_dir, exist_ok=True)
        with frame_writer(video_path, meta["fps"], height, width) as writer:
            frames = readable_frames(reader, broken)
            labelled = labelled_frames(frames, labels_of_batch, frames_per_batch(height, width, max_pixels))
            total = promised or frames_counted(input_path)
            for frame, labels in console.progress(labelled, total, "Predicting %s" % input_path, unit="frames"):
                pictures.save_image(labels, labels_dir, "%05d" % written)
                writer.append_data(pictures.overlay(frame, labels, palette))
                written += 1
    if not written:
        for path in (video_path, labels_dir):  # nothing of a video no frame of which could be read
            if os.path.isdir(path):
                os.rmdir(path)
            elif os.path.exists(path):
                os.remove(path)
        raise OSError("no frame of %s can be read%s" % (input_path, explained(broken)))
    missing = report_cut(input_path, written, promised, broken)
    print("Predicted %d frames of %s into %s (%.4g frames/s) and %s/" % (written, input_path, video_path,
                                                                          meta["fps"], labels_dir))
    return missing


def report_cut(input_path, written, promised, broken):
    """Say in one line which frames were not read (after a cut or a frame ffmpeg cannot decode); returns how many
    (at least 1 when the reader failed, even if the file does not say how many frames it holds)."""
    short = promised is not None and promised > written + CONTAINER_SLACK
    if not short and not broken:
        return 0
    if short:
        print("Skipping frames %d..%d of %s: its duration promises %d frames, only the first %d can be read "
              "(a file cut short?)%s" % (written, promised - 1, input_path, promised, written, explained(broken)))
    else:
        print("Skipping the frames from %d on of %s: they cannot be read%s" % (written, input_path, explained(broken)))
    return promised - written if short else 1


def explained(broken):
    """'' or ' (the reader's first line)'."""
    return " (%s)" % str(broken[0]).strip().splitlines()[0] if broken and str(broken[0]).strip() else ""
