"""The channel layer the settings pick."""

from __future__ import annotations

import pytest

from mysite import settings


def test_in_memory_layer_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)

    assert settings._channel_layers() == {
        "default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}
    }


def test_redis_layer_when_redis_url_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6390/2")

    assert settings._channel_layers() == {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": ["redis://127.0.0.1:6390/2"]},
        }
    }


def test_sqlite_test_database_is_a_file() -> None:
    # The live server and the consumers' database threads need a file.
    assert str(settings.DATABASES["default"]["TEST"]["NAME"]).endswith(".sqlite3")
