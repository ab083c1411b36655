"""Non-neural baselines fitted on the training split and served like a retriever.

`most-popular`, `itemknn` (recency-weighted co-occurrence) and `ease` (Steck 2019). Use
:func:`fit_on_dataset` to fit one on a dataset's train split with its hyperparameters chosen on
val, then hand `.baseline` to the evaluator wherever a retriever goes.
"""

from rar.baselines.base import Baseline, BaselineConfig, FitLeakError, NotFittedError
from rar.baselines.registry import BASELINES, baseline_class, build_baseline
from rar.baselines.selection import FittedBaseline, fit_on_dataset, select_on_validation

__all__ = [
    "BASELINES",
    "Baseline",
    "BaselineConfig",
    "FitLeakError",
    "FittedBaseline",
    "NotFittedError",
    "baseline_class",
    "build_baseline",
    "fit_on_dataset",
    "select_on_validation",
]
