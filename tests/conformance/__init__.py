"""One conformance harness for every label reader/writer pair (see ``formats.py``)."""
