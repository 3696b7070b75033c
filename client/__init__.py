"""The Accord reconnecting client: the system under test.

`client.core` is a pure (sans-I/O) state machine; `client.driver` runs it against
real sockets; `client.ui` derives what the user sees from the signal stream;
`client.timeline` records everything observable.
"""
