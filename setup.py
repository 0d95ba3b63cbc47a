# Everything lives in pyproject.toml; this file lets older tools install the package too.
from setuptools import setup

setup()
