"""objget peer benchmark harness: `python -m bench` (see bench/README.md).

Not part of the objget package and not imported by it; it only runs tools as a user would.
"""
