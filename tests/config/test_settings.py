from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from config import (
    ServerSettings,
    SettingsError,
    StationSettings,
    load_server_settings,
    load_station_settings,
)
from config.settings import GiB, MiB

DATA_DIR = "/srv/postern"
BASE_ENV = {"POSTERN_DATA_DIR": DATA_DIR}


def server_env(**overrides: str) -> dict[str, str]:
    return {**BASE_ENV, **{f"POSTERN_{name.upper()}": value for name, value in overrides.items()}}


# --- server: defaults and overrides ------------------------------------------


def test_server_defaults():
    settings = load_server_settings(BASE_ENV)
    assert settings == ServerSettings(
        data_dir=Path(DATA_DIR),
        argon2_opslimit=3,
        argon2_memlimit=64 * 1024 * 1024,
        max_message_chars=100_000,
        max_nojs_request_bytes=500 * 1024 * 1024,
        max_resumable_file_bytes=4 * 1024 * 1024 * 1024,
        max_files_per_submission=20,
    )


def test_server_ignores_unrelated_variables():
    env = {**BASE_ENV, "HOME": "/root", "POSTERN_STATION_HOME": "/home/j"}
    assert load_server_settings(env) == load_server_settings(BASE_ENV)


def test_server_overrides():
    env = server_env(
        argon2_opslimit="4",
        argon2_memlimit=str(256 * MiB),
        max_message_chars="5000",
        max_nojs_request_bytes=str(MiB),
        max_resumable_file_bytes=str(8 * GiB),
        max_files_per_submission="1",
    )
    settings = load_server_settings(env)
    assert settings == ServerSettings(
        data_dir=Path(DATA_DIR),
        argon2_opslimit=4,
        argon2_memlimit=256 * MiB,
        max_message_chars=5000,
        max_nojs_request_bytes=MiB,
        max_resumable_file_bytes=8 * GiB,
        max_files_per_submission=1,
    )


def test_each_integer_field_has_an_override():
    integer_fields = [f.name for f in dataclasses.fields(ServerSettings) if f.type == "int"]
    defaults = load_server_settings(BASE_ENV)
    for name in integer_fields:
        raised = getattr(defaults, name) + 1
        settings = load_server_settings(server_env(**{name: str(raised)}))
        assert getattr(settings, name) == raised, name


@pytest.mark.parametrize(("text", "value"), [("1", True), ("true", True), ("0", False),
                                             ("false", False)])  # fmt: skip
def test_boolean_override(text: str, value: bool):
    assert load_server_settings(server_env(secure_cookie=text)).secure_cookie is value
    assert load_server_settings(BASE_ENV).secure_cookie is False


@pytest.mark.parametrize("text", ["", "yes", "True", "2", " 1"])
def test_bad_boolean_is_rejected(text: str):
    with pytest.raises(SettingsError) as error:
        load_server_settings(server_env(secure_cookie=text))
    assert str(error.value) == f"POSTERN_SECURE_COOKIE must be 1, true, 0 or false, got {text!r}"


@pytest.mark.parametrize(("text", "value"), [("1", True), ("true", True), ("0", False),
                                             ("false", False)])  # fmt: skip
def test_purge_after_ack_is_on_by_default_and_can_be_turned_off(text: str, value: bool):
    assert load_server_settings(BASE_ENV).purge_after_ack is True
    settings = load_server_settings(server_env(purge_after_ack=text))
    assert settings.purge_after_ack is value


def test_purge_after_ack_must_be_a_boolean():
    with pytest.raises(SettingsError) as error:
        load_server_settings(server_env(purge_after_ack="yes"))
    assert str(error.value) == "POSTERN_PURGE_AFTER_ACK must be 1, true, 0 or false, got 'yes'"
    with pytest.raises(SettingsError, match=r"^POSTERN_PURGE_AFTER_ACK must be a boolean"):
        ServerSettings(data_dir=Path(DATA_DIR), purge_after_ack=1)  # type: ignore[arg-type]


@given(memlimit=st.integers(min_value=64 * MiB, max_value=4398046510080))
def test_any_memlimit_in_range_is_taken(memlimit: int):
    settings = load_server_settings(server_env(argon2_memlimit=str(memlimit)))
    assert settings.argon2_memlimit == memlimit


SECRET_URL = "postgresql://postern:hunter2-secret@db.internal:5432/postern"  # noqa: S105 - a test value


def test_the_database_is_the_data_directory_s_sqlite_file_unless_a_url_is_set():
    assert load_server_settings(BASE_ENV).database_url is None
    assert load_server_settings(server_env(database_url="")).database_url is None
    assert load_server_settings(server_env(database_url=SECRET_URL)).database_url == SECRET_URL


def test_the_database_url_is_never_shown():
    settings = load_server_settings(server_env(database_url=SECRET_URL))
    assert "hunter2" not in repr(settings)
    assert "hunter2" not in str(settings)


@pytest.mark.parametrize(
    "url",
    ["mysql://postern:hunter2-secret@db/x", "hunter2-secret", "postgres://u:hunter2-secret@h/d"],
)
def test_a_database_url_of_another_kind_is_refused_without_repeating_it(url: str):
    with pytest.raises(SettingsError, match="POSTERN_DATABASE_URL") as raised:
        load_server_settings(server_env(database_url=url))
    assert "hunter2" not in str(raised.value)


def test_settings_are_frozen():
    settings = load_server_settings(BASE_ENV)
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.max_message_chars = 1  # type: ignore[misc]


# --- server: bad values -------------------------------------------------------


def test_data_dir_is_required():
    with pytest.raises(SettingsError, match=r"^POSTERN_DATA_DIR must be set"):
        load_server_settings({})


def test_data_dir_must_not_be_empty():
    with pytest.raises(SettingsError, match=r"^POSTERN_DATA_DIR must be set"):
        load_server_settings({"POSTERN_DATA_DIR": ""})


def test_data_dir_must_be_absolute():
    with pytest.raises(
        SettingsError, match=r"^POSTERN_DATA_DIR must be an absolute path, got 'data'$"
    ):
        load_server_settings({"POSTERN_DATA_DIR": "data"})


@pytest.mark.parametrize("text", ["", "abc", "3.0", "-3", "+3", " 3", "3 ", "3_000", "0x10", "٣"])
def test_non_integer_is_rejected(text: str):
    with pytest.raises(SettingsError) as error:
        load_server_settings(server_env(argon2_opslimit=text))
    assert str(error.value) == (
        f"POSTERN_ARGON2_OPSLIMIT must be a non-negative decimal integer, got {text!r}"
    )


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("argon2_opslimit", "2", "POSTERN_ARGON2_OPSLIMIT must be at least 3, got 2"),
        (
            "argon2_opslimit",
            str(2**32),
            "POSTERN_ARGON2_OPSLIMIT must be at most 4294967295, got 4294967296",
        ),
        (
            "argon2_memlimit",
            str(64 * MiB - 1),
            "POSTERN_ARGON2_MEMLIMIT must be at least 67108864 (64 MiB), got 67108863",
        ),
        (
            "argon2_memlimit",
            "4398046510081",
            (
                "POSTERN_ARGON2_MEMLIMIT must be at most 4398046510080 (4294967295 KiB), "
                "got 4398046510081"
            ),
        ),
        ("max_message_chars", "0", "POSTERN_MAX_MESSAGE_CHARS must be at least 1, got 0"),
        ("max_nojs_request_bytes", "0", "POSTERN_MAX_NOJS_REQUEST_BYTES must be at least 1, got 0"),
        (
            "max_resumable_file_bytes",
            "0",
            "POSTERN_MAX_RESUMABLE_FILE_BYTES must be at least 1, got 0",
        ),
        (
            "max_files_per_submission",
            "0",
            "POSTERN_MAX_FILES_PER_SUBMISSION must be at least 1, got 0",
        ),
    ],
)
def test_out_of_range_is_rejected(name: str, value: str, message: str):
    with pytest.raises(SettingsError) as error:
        load_server_settings(server_env(**{name: value}))
    assert str(error.value) == message


def test_login_and_codename_budgets_are_separate_settings():
    defaults = load_server_settings(BASE_ENV)
    assert (defaults.login_derivations_per_minute, defaults.login_concurrent_derivations) == (30, 4)
    assert defaults.codename_derivations_per_minute == 20
    assert defaults.codename_concurrent_derivations == 2
    settings = load_server_settings(
        server_env(
            codename_derivations_per_minute="5",
            codename_concurrent_derivations="7",
            login_concurrent_derivations="8",
        )
    )
    assert (settings.codename_derivations_per_minute, settings.codename_concurrent_derivations) == (
        5,
        7,
    )


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"codename_concurrent_derivations": "4"},
            (
                "POSTERN_CODENAME_CONCURRENT_DERIVATIONS must be below "
                "POSTERN_LOGIN_CONCURRENT_DERIVATIONS (4): the slots left over are for logins "
                "alone, got 4"
            ),
        ),
        (
            {"login_concurrent_derivations": "1", "codename_concurrent_derivations": "1"},
            "POSTERN_LOGIN_CONCURRENT_DERIVATIONS must be at least 2, got 1",
        ),
        (
            {"codename_derivations_per_minute": "0"},
            "POSTERN_CODENAME_DERIVATIONS_PER_MINUTE must be at least 1, got 0",
        ),
    ],
)
def test_codenames_never_take_every_derivation_slot(values: dict[str, str], message: str):
    with pytest.raises(SettingsError) as error:
        load_server_settings(server_env(**values))
    assert str(error.value) == message


def test_settings_error_is_a_value_error():
    assert issubclass(SettingsError, ValueError)


def test_direct_construction_is_checked_too():
    with pytest.raises(SettingsError, match=r"^POSTERN_ARGON2_MEMLIMIT must be at least"):
        ServerSettings(data_dir=Path(DATA_DIR), argon2_memlimit=MiB)
    with pytest.raises(
        SettingsError, match=r"^POSTERN_MAX_FILES_PER_SUBMISSION must be an integer"
    ):
        ServerSettings(data_dir=Path(DATA_DIR), max_files_per_submission=True)


# --- station ------------------------------------------------------------------


def test_station_home():
    settings = load_station_settings({"POSTERN_STATION_HOME": "/home/journalist/postern"})
    assert settings == StationSettings(home=Path("/home/journalist/postern"))


def test_station_home_is_required():
    with pytest.raises(SettingsError, match=r"^POSTERN_STATION_HOME must be set"):
        load_station_settings({"POSTERN_DATA_DIR": DATA_DIR})


def test_station_home_must_be_absolute():
    with pytest.raises(
        SettingsError, match=r"^POSTERN_STATION_HOME must be an absolute path, got '~/postern'$"
    ):
        load_station_settings({"POSTERN_STATION_HOME": "~/postern"})
