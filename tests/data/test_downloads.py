"""downloads.py: downloads served on 127.0.0.1 (whole, cut, silent), and archives that stay inside their folder."""
import io
import os
import tarfile
import zipfile

import pytest

from fcn_tensorflow.data import downloads
from tests.helpers import TENSORFLOW_LOADED, run_python, UNREACHABLE, fcn_command, serve_directory, silent_server


def test_download_says_where_from_shows_progress_and_completes(tmp_path, capsys):
    served = tmp_path / "served"
    served.mkdir()
    (served / "weights.bin").write_bytes(os.urandom(3 * 2 ** 20 + 17))
    with serve_directory(str(served)) as url:
        path = downloads.maybe_download_and_extract(str(tmp_path / "dest"), url + "/weights.bin")
        captured = capsys.readouterr()
    assert open(path, "rb").read() == (served / "weights.bin").read_bytes()
    assert not os.path.exists(path + ".part")
    assert captured.out.startswith("Downloading %s/weights.bin\n" % url)
    # not a terminal: a line every 10%, not a line rewritten with \r
    assert "\r" not in captured.err and ">> Downloading weights.bin, MB 3.1/3.1" in captured.err.splitlines()[-1]


def test_a_cut_download_leaves_no_whole_looking_file_and_no_new_folder(tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    (served / "cut_weights.bin").write_bytes(os.urandom(2 ** 20))
    dest = tmp_path / "Model_zoo" / "vgg"
    with serve_directory(str(served)) as url:
        with pytest.raises(downloads.DownloadError, match=r"could not download .*cut_weights.bin: it stopped at"):
            downloads.maybe_download_and_extract(str(dest), url + "/cut_weights.bin")
    assert os.listdir(str(tmp_path)) == ["served"]


def test_a_silent_server_times_out_naming_the_url(tmp_path):
    with silent_server() as url:
        with pytest.raises(downloads.DownloadError, match=r"could not download %s/file.zip: no answer within 0.5 s"
                                                          % url):
            downloads.maybe_download_and_extract(str(tmp_path / "data"), url + "/file.zip", timeout=0.5)
    assert not os.path.exists(tmp_path / "data")


def test_a_silent_data_server_ends_fcn_py_in_bounded_time_with_the_file_to_place(tmp_path, vgg_mat):
    """The whole command line: the URL, the file to place by hand, and no --data_dir left behind."""
    data_dir = tmp_path / "Data_zoo" / "MIT_SceneParsing"
    with silent_server() as url:
        result = fcn_command("--mode=evaluate", "--data_dir=%s" % data_dir, "--data_url=%s/ADEChallengeData2016.zip" % url,
                             "--download_timeout=1", "--model_dir=%s" % vgg_mat, "--logs_dir=%s" % (tmp_path / "logs"),
                             timeout=120)
    assert result.returncode == 1
    assert "Downloading %s/ADEChallengeData2016.zip" % url in result.stdout
    assert result.stderr.splitlines() == [
        "FCN.py: error: No data at %s (could not download %s/ADEChallengeData2016.zip: no answer within 1 s). "
        "Download %s/ADEChallengeData2016.zip by hand and put it (or the folder it extracts to) in %s, or pass "
        "--data_dir." % (data_dir / "ADEChallengeData2016", url, url, data_dir)]
    assert not os.path.exists(tmp_path / "Data_zoo")


def test_a_refused_connection_names_the_reason(tmp_path):
    with pytest.raises(downloads.DownloadError, match="could not download %sx.mat: .*[Cc]onnection refused" % UNREACHABLE):
        downloads.download(UNREACHABLE + "x.mat", str(tmp_path / "x.mat"))
    assert os.listdir(str(tmp_path)) == []


def test_downloading_does_not_load_tensorflow():
    words, stderr = run_python("from fcn_tensorflow import console, pictures; "
                               "from fcn_tensorflow.data import downloads, matconvnet" + TENSORFLOW_LOADED)
    assert words == ["False"], stderr


# ---------------------------------------------------------------- extraction

def tar_with(path, *members):
    """A tar holding text files under these member names (and `link:name->target` symlinks)."""
    with tarfile.open(path, "w") as archive:
        for name in members:
            info = tarfile.TarInfo(name.split("->")[0][len("link:"):] if name.startswith("link:") else name)
            if name.startswith("link:"):
                info.type, info.linkname = tarfile.SYMTYPE, name.split("->")[1]
                archive.addfile(info)
            else:
                info.size = 5
                archive.addfile(info, io.BytesIO(b"hello"))
    return str(path)


def test_a_tar_extracts_into_its_folder_through_a_temporary_one(tmp_path):
    archive = tar_with(tmp_path / "VOCtrainval.tar", "VOCdevkit/VOC2012/a.txt", "VOCdevkit/VOC2012/b.txt")
    target = tmp_path / "data"
    target.mkdir()
    downloads.extract(archive, str(target))
    assert sorted(os.listdir(target / "VOCdevkit" / "VOC2012")) == ["a.txt", "b.txt"]
    assert os.listdir(target) == ["VOCdevkit"]


@pytest.mark.parametrize("member", ["../escape.txt", "/etc/escape.txt", "data/../../escape.txt",
                                    "link:data/evil->/etc/passwd", "link:data/up->../../.."])
def test_a_tar_member_that_would_land_outside_is_refused(tmp_path, member):
    archive = tar_with(tmp_path / "bad.tar", "data/good.txt", member)
    target = tmp_path / "target"
    target.mkdir()
    with pytest.raises(downloads.UnsafeArchiveError, match="bad.tar.*not extracted"):
        downloads.extract(archive, str(target))
    assert os.listdir(target) == [] and not os.path.exists(tmp_path / "escape.txt")


@pytest.mark.parametrize("member", ["../escape.txt", "/abs/escape.txt"])
def test_a_zip_member_that_would_land_outside_is_refused(tmp_path, member):
    archive = str(tmp_path / "bad.zip")
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("data/good.txt", "hello")
        zipped.writestr(member, "hello")
    target = tmp_path / "target"
    target.mkdir()
    with pytest.raises(downloads.UnsafeArchiveError, match="holds member %r" % member):
        downloads.extract(archive, str(target))
    assert os.listdir(target) == []
