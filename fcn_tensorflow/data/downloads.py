"""Downloads with a timeout and progress, and archive extraction that stays inside its folder.

A download goes to <file>.part and is renamed when whole; a failed one leaves behind no file and no
folder that was not there before. No TensorFlow import here.
"""
import os
import shutil
import socket
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile

from fcn_tensorflow import console

DOWNLOAD_TIMEOUT = 60.0  # seconds to connect, and between two pieces of data


class DownloadError(IOError):
    """A download that failed; the message names the URL and the reason."""


def local_path(dir_path, url):
    """Where the file of `url` lives in dir_path: under the URL's own file name."""
    return os.path.join(dir_path, url_file_name(url))


def url_file_name(url):
    return url.split("/")[-1]


def download(url, dest_path, timeout=DOWNLOAD_TIMEOUT, out=None):
    """Fetch url to dest_path through <dest_path>.part, so a cut download never looks whole."""
    partial_path = dest_path + ".part"
    print("Downloading %s" % url)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(partial_path, "wb") as partial:
            total = int(response.headers.get("Content-Length") or 0)
            reporter = console.Progress(">> Downloading %s, MB" % url_file_name(url), total, "MB", out, scale=1e6)
            done = 0
            for chunk in iter(lambda: response.read(1 << 20), b""):
                partial.write(chunk)
                done += len(chunk)
                reporter.update(done)
            reporter.close()
        if total and done != total:
            raise DownloadError("it stopped at %d of %d bytes" % (done, total))
    except (OSError, socket.timeout, urllib.error.URLError) as error:
        if os.path.exists(partial_path):
            os.remove(partial_path)
        raise DownloadError("could not download %s: %s" % (url, _reason(error, timeout)))
    os.replace(partial_path, dest_path)
    print("Successfully downloaded %s (%d bytes)" % (os.path.basename(dest_path), done))
    return dest_path


def _reason(error, timeout):
    if isinstance(error, socket.timeout) or "timed out" in str(error):
        return "no answer within %g s" % timeout
    if isinstance(error, urllib.error.URLError) and not isinstance(error, urllib.error.HTTPError):
        return str(error.reason)
    return str(error)


def maybe_download_and_extract(dir_path, url_name, is_tarfile=False, is_zipfile=False, timeout=DOWNLOAD_TIMEOUT,
                               extracted_folder=None):
    """Download url_name into dir_path unless its file is there; with is_tarfile or is_zipfile, extract it too.

    An archive placed by hand is extracted as well, unless the folder it extracts to (extracted_folder, relative
    to dir_path; by default the one it is named after) is already there. Nothing is created when the download
    fails."""
    filepath = local_path(dir_path, url_name)
    if not os.path.exists(filepath):
        created = missing_folders(dir_path)
        os.makedirs(dir_path, exist_ok=True)
        try:
            download(url_name, filepath, timeout)
        except DownloadError:
            for folder in created:
                os.rmdir(folder)
            raise
    extracted = os.path.join(dir_path, extracted_folder) if extracted_folder else os.path.splitext(filepath)[0]
    if (is_tarfile or is_zipfile) and not os.path.exists(extracted):
        extract(filepath, dir_path)
    return filepath


def ensure_extracted(data_dir, url, folder, timeout=DOWNLOAD_TIMEOUT):
    """data_dir/folder, extracted first from url's archive (placed in data_dir by hand, or downloaded) when it is
    not there yet. IOError naming what to place by hand when that fails."""
    path = os.path.join(data_dir, folder)
    if os.path.isdir(path):
        return path
    try:
        maybe_download_and_extract(data_dir, url, is_tarfile=True, timeout=timeout, extracted_folder=folder)
    except UnsafeArchiveError:
        raise
    except OSError as error:
        raise IOError("No data at %s (%s). Download %s by hand and put it (or the folder it extracts to) in %s, "
                      "or pass --data_dir." % (path, error, url, data_dir))
    if not os.path.isdir(path):
        raise IOError("%s holds no %s: is it the right archive? Delete it, or pass another --data_url"
                      % (local_path(data_dir, url), folder))
    return path


def missing_folders(dir_path):
    """The folders os.makedirs(dir_path) would create, deepest first."""
    missing = []
    path = os.path.abspath(dir_path)
    while not os.path.exists(path):
        missing.append(path)
        path = os.path.dirname(path)
    return missing


def extract(archive_path, dir_path):
    """Extract a zip or tar archive into dir_path through a temporary folder, so a cut extraction never looks
    complete. A member that would land outside dir_path (absolute name, '..', a link out) refuses the archive."""
    print("Extracting %s ..." % archive_path)
    partial = tempfile.mkdtemp(prefix=".extracting-", dir=dir_path)
    try:
        if zipfile.is_zipfile(archive_path):
            with zipfile.ZipFile(archive_path) as archive:
                _check_member_names(archive_path, archive.namelist())
                archive.extractall(partial)
        else:
            with tarfile.open(archive_path) as archive:
                _check_member_names(archive_path, archive.getnames())
                try:
                    archive.extractall(partial, filter="data")
                except tarfile.FilterError as error:
                    raise UnsafeArchiveError("%s: %s; not extracted" % (archive_path, error))
        _move_into(partial, dir_path)
    finally:
        shutil.rmtree(partial, ignore_errors=True)


def _move_into(source_dir, target_dir):
    """Move what source_dir holds into target_dir; into a folder that exists, entry by entry (so extracting VOC2012
    into a VOCdevkit/ that holds VOC2007 keeps it)."""
    for name in os.listdir(source_dir):
        source, target = os.path.join(source_dir, name), os.path.join(target_dir, name)
        if os.path.isdir(target) and os.path.isdir(source) and not os.path.islink(source):
            _move_into(source, target)
        else:
            os.replace(source, target)


class UnsafeArchiveError(IOError):
    """An archive with a member that would be written outside its target folder."""


def _check_member_names(archive_path, names):
    for name in names:
        parts = name.replace("\\", "/").split("/")
        if name.startswith(("/", "\\")) or os.path.isabs(name) or ":" in parts[0] or ".." in parts:
            raise UnsafeArchiveError("%s holds member %r, which would land outside the folder it is extracted "
                                     "to; not extracted. Use an archive from the official source." % (archive_path, name))
