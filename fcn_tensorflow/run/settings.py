"""The settings of one run: every flag's value, read once from the command line (FCN.py) and handed to the mode.
Read-only: a derived value is a new Settings (replace), so what a mode reads is what the user asked for."""


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
        raise AttributeError("settings are read-only: settings.replace(%s=...) makes a changed copy" % name)

    def replace(self, **changes):
        """A copy with `changes`; a name that is not a setting is a KeyError."""
        unknown = set(changes) - set(self._values)
        if unknown:
            raise KeyError("no setting named %s" % ", ".join(sorted(unknown)))
        return Settings(**dict(self._values, **changes))

    def as_dict(self):
        return dict(self._values)

    def __repr__(self):
        return "Settings(%s)" % ", ".join("%s=%r" % item for item in sorted(self._values.items()))
