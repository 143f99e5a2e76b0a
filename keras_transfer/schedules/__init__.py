"""Learning rate schedules Keras lacks, and the DANN lambda ramp.

Keras already has `ExponentialDecay`, `PiecewiseConstantDecay`,
`PolynomialDecay`, `InverseTimeDecay`, `CosineDecay` (with warmup) and
`CosineDecayRestarts` (SGDR); use those. `LinearWarmup` adds a warmup to any
of them, `StepOffset` starts one at a later optimizer step.
"""

from keras_transfer.schedules.dann_decay import DANNDecay
from keras_transfer.schedules.dann_lambda import DANNLambda
from keras_transfer.schedules.inverse_square_root_decay import (
    InverseSquareRootDecay,
)
from keras_transfer.schedules.linear_warmup import LinearWarmup
from keras_transfer.schedules.one_cycle import OneCycle
from keras_transfer.schedules.step_offset import StepOffset

__all__ = [
    "DANNDecay",
    "DANNLambda",
    "InverseSquareRootDecay",
    "LinearWarmup",
    "OneCycle",
    "StepOffset",
]
