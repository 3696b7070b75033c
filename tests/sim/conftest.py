"""tests/sim/files holds scenario files explore wrote; they are run on purpose by
test_explore.py (one must fail), never collected as scenarios."""

collect_ignore = ["files"]
