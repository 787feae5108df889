"""The names a choice field of the run config may hold, each list declared once.

The config's field contracts (bench/config.py) and the engine module that implements each name
both import them from here; this module imports nothing, so a config, ``xbmbench --help`` and
grid enumeration stay free of torch. The miner's distances belong to the variants
(``variants.options.MINER_DISTANCES``) and the augmentations to their task (bench/tasks.py).
"""

from __future__ import annotations

HEADS = ("l2", "l2_bn", "l2_ln")  # the embedding heads of paper table 3 (bench/engine/model.py)
# keyed: each sample's augmentation drawn from (seed, epoch, position), re-creatable and the same
# for any num_workers; global: the global generators, as runs made before keyed draws
DRAW_MODES = ("keyed", "global")  # bench/engine/draws.py
MEMORY_INITS = ("queue", "prefill")  # empty after the warm-up (PML) | a random subset
LOSSES = ("supcon", "xbm_contrastive")  # bench/engine/registry.py
OPTIMIZERS = ("adamw", "sgd")  # bench/engine/registry.py
LAUNCHERS = ("local", "submitit-local", "slurm")  # bench/launch (reproduce --launcher)
