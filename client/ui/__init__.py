"""accord-rig."""
