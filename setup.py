"""Where the package's files come from; what the package is lives in pyproject.toml.

The pretrained models stay in the repository's saved_models/ (where `kerascnn train --out
saved_models/cnn` refreshes them) and ship as the package data `kerascnn/saved_models/`: the mapping
below makes the wheel's copy from the one folder, so there are never two copies to drift apart.
`kerascnn.SAVED_MODELS` finds them in either place.
"""
from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["kerascnn", "kerascnn.*", "cli", "cli.*"]), "kerascnn.saved_models"],
    package_dir={"kerascnn.saved_models": "saved_models"},
    # all of each run folder: the model and what `kerascnn train` wrote beside it (metrics, figures)
    # kerascnn serve's page: plain HTML, JavaScript and CSS, nothing fetched from elsewhere
    package_data={"kerascnn.saved_models": ["*/*"], "kerascnn.serve": ["static/*"]},
    include_package_data=False,  # package_data above is the whole list (the run folders are not packages)
)
