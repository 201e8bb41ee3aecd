from setuptools import find_packages, setup

setup(
    name="kerascnn",
    version="0.1.0",
    description="Train, inspect, attack and export a classic MNIST CNN, one command per experiment",
    python_requires=">=3.11,<3.12",
    packages=find_packages(include=["kerascnn", "kerascnn.*", "cli", "cli.*"]),
    install_requires=[
        "tensorflow==2.21.*",
        "keras>=3.10,<4",
        "tensorflow-datasets==4.9.10",
        # tensorflow-datasets 4.9.10 imports it without declaring it
        "importlib_resources",
        # `kerascnn train --tensorboard`: TensorFlow 2.21 no longer brings it along
        "tensorboard>=2.20",
        "numpy>=1.26",
        "matplotlib>=3.8",
        "click>=8.1",
        "pillow>=10",
    ],
    extras_require={"dev": ["pytest>=8"]},
    entry_points={"console_scripts": ["kerascnn=cli.main:cli"]},
)
