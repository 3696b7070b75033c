"""Load tests: Locust users that each run the real client against a fake server."""
