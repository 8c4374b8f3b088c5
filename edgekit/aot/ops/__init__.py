"""Operator emitters: one module per op family, each registering with `base.register`.

Modules here are imported by `base.load_all()` (every module of this package),
so adding an operator is adding a module; nothing else needs editing.
"""
