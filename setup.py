"""Package discovery only; everything else is in pyproject.toml.

templates/ and samples/ live at the top of the repository (the design card's layout) but
install as data packages inside labreport: labreport.templates and labreport.samples.
"""
from setuptools import find_packages, setup

setup(
    packages=find_packages(include=["labreport", "labreport.*", "collectors", "collectors.*"])
    + ["labreport.templates", "labreport.samples"],
    package_dir={"labreport.templates": "templates", "labreport.samples": "samples"},
)
