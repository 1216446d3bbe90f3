"""The audit log: what was applied, by whom, from which commit, in a tamper-evident chain."""
