"""The asyncio driver: runs the pure client core against real TLS sockets."""

from client.driver.base import DriverError
from client.driver.driver import AsyncClientDriver
from client.driver.errors import classify
from client.driver.tls import client_ssl_context

__all__ = ["AsyncClientDriver", "DriverError", "classify", "client_ssl_context"]
