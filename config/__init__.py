"""Typed settings for the Postern server and the journalist station."""

from config.settings import (
    ServerSettings,
    SettingsError,
    StationSettings,
    load_server_settings,
    load_station_settings,
)

__all__ = [
    "ServerSettings",
    "SettingsError",
    "StationSettings",
    "load_server_settings",
    "load_station_settings",
]
