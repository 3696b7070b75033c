"""`accord-rig conform URL`: probe any Accord server over its public REST API and
gateway, run the same probes against a fake server started on loopback, and compare.

- `conform.wire`: the target (URL, TLS trust), accounts, REST replies, gateway sockets.
- `conform.probes`: the one registry of probes (name, what it checks, the function).
- `conform.command`: the `accord-rig conform` subcommand (table or JSON, exit codes).

See docs/conform.md.
"""
