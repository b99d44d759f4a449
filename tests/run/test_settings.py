"""settings.py: the run's settings are read-only, and say which name is not a setting."""
import pytest

from fcn_tensorflow.run.settings import Settings


def test_settings_are_read_only():
    settings = Settings(batch_size=2, logs_dir="logs/")
    assert settings.batch_size == 2 and settings.as_dict() == {"batch_size": 2, "logs_dir": "logs/"}
    with pytest.raises(AttributeError, match="read-only: batch_size stays 2"):
        settings.batch_size = 3
    with pytest.raises(AttributeError, match="no setting named 'batch'"):
        settings.batch
    assert repr(settings) == "Settings(batch_size=2, logs_dir='logs/')"
