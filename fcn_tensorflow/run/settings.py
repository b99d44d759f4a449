"""The settings of one run: every flag's value, read once from the command line (FCN.py), with model.json's and the
derived defaults applied, and handed to the mode. Read-only, so what a mode reads is what the run was given."""


class Settings(object):
    """Attributes named like the flags (settings.logs_dir, settings.batch_size, ...)."""
    __slots__ = ("_values",)

    def __init__(self, **values):
        object.__setattr__(self, "_values", dict(values))

    def __getattr__(self, name):
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError("no setting named %r" % name) from None

    def __setattr__(self, name, value):
        raise AttributeError("settings are read-only: %s stays %r" % (name, self._values.get(name)))

    def as_dict(self):
        return dict(self._values)

    def __repr__(self):
        return "Settings(%s)" % ", ".join("%s=%r" % item for item in sorted(self._values.items()))
