"""What the data modules raise when data cannot be used (reader.py re-exports both, as the original's users and
the modes know them). No TensorFlow here."""


class DataError(Exception):
    """The data cannot be used as it is; the message says what to fix."""


class BadPairError(Exception):
    """One image/annotation pair that cannot be used: `path` names the file, `reason` what is wrong."""

    def __init__(self, path, reason):
        super(BadPairError, self).__init__("%s: %s" % (path, reason))
        self.path, self.reason = path, reason
