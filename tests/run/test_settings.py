"""settings.py: the run's settings are read-only; a changed copy leaves the original as it was."""
import pytest

from fcn_tensorflow.run.settings import Settings


def test_settings_are_read_only_and_replace_makes_a_copy():
    settings = Settings(batch_size=2, logs_dir="logs/")
    assert settings.batch_size == 2 and settings.as_dict() == {"batch_size": 2, "logs_dir": "logs/"}
    with pytest.raises(AttributeError, match="read-only"):
        settings.batch_size = 3
    with pytest.raises(AttributeError, match="no setting named 'batch'"):
        settings.batch
    changed = settings.replace(batch_size=3)
    assert (changed.batch_size, settings.batch_size) == (3, 2)
    with pytest.raises(KeyError, match="no setting named batch"):
        settings.replace(batch=3)
    assert repr(settings) == "Settings(batch_size=2, logs_dir='logs/')"
