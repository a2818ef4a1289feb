"""A shim for tools that still run ``setup.py``; the metadata is in setup.cfg."""

from setuptools import setup

setup()
