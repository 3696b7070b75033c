"""View models: what the user sees, as a pure fold of the (time, signal) stream."""

from client.ui.view_state import ViewState, diff_snapshots

__all__ = ["ViewState", "diff_snapshots"]
