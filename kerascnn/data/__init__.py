"""The data: tasks (a dataset's shape, classes and splits; picking one image), its sources
(tensorflow-datasets, IDX files, image folders), a user's picture, the training pipeline."""
