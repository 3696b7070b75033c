# The must-fail twin of the CI storm is run by its test (test_load_ci.py), not
# collected as a load file of its own by the rig's pytest plugin.
collect_ignore_glob = ["files/*.load.yaml"]
