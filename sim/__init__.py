"""Simulation mode: the client core and the server core on one virtual clock,
joined by a simulated network that models every Toxiproxy toxic (docs/simulation.md)."""
