"""The fake server's protocol logic, sans I/O (see fake_server.core.server)."""

from fake_server.core.io import Close, Drop, HttpReply, Out, SendText
from fake_server.core.server import FaultResult, ServerCore

__all__ = ["Close", "Drop", "FaultResult", "HttpReply", "Out", "SendText", "ServerCore"]
