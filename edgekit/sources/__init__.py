"""Source models, loaded in the framework each was written in."""
