"""The version is written once (convcalc.__version__); the installed package's metadata reads it from there."""

from importlib.metadata import PackageNotFoundError, version

import pytest

import convcalc


def test_the_installed_version_is_the_package_version():
    try:
        installed = version("convcalc")
    except PackageNotFoundError:  # run from a source tree that is not installed
        pytest.skip("convcalc is not installed")
    assert installed == convcalc.__version__
