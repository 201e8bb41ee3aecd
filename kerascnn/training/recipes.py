"""Named training recipes (`kerascnn train --recipe NAME`, `TrainConfig.from_recipe`): the TrainConfig
fields that differ from its defaults, which are the assignment's recipe.

"fast" trains the assignment's network to >= 99% test accuracy (mean of 3 seeds) in <= 8 s of
training on two CPU cores; every lever was chosen on the validation split
(benchmarks/bench_fast_recipe.py; all levers tried: benchmarks/results/fast_recipe_cpu2.jsonl).
"""
RECIPES: dict[str, dict] = {
    "assignment": {},
    "fast": {"epochs": 1, "batch_size": 64, "lr": 4e-3, "lr_schedule": "warmup_cosine", "warmup": 0.2,
             "label_smoothing": 0.1, "val_every": 0},
}
