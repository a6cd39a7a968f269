"""Helpers shared by more than one test folder.

Tests run in pytest's importlib mode with ``tests/`` as a package root, so a test module imports
these relatively, e.g. ``from ..helpers.dicom_copies import copied_series``. Nothing here is
collected as a test. A helper used by one folder only stays in that folder.
"""
