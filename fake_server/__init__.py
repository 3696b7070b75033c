"""Scriptable fake Accord server: TLS REST + gateway, SQLite, history, fault control."""

from fake_server.app import FakeServer, FaultResult, ServerInfo
from fake_server.config import ServerConfig
from fake_server.errors import ApiError
from fake_server.faults import FaultSpecError, parse_fault

__all__ = ["ApiError", "FakeServer", "FaultResult", "FaultSpecError", "ServerConfig", "ServerInfo",
           "parse_fault"]
