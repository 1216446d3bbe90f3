"""Planning: fingerprints, the diff against state, the plan model and its renderers. Pure: no I/O."""
