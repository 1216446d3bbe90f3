"""Applying plans: the parallel executor that commits each step to state as it ends."""
