"""Search in one process: Hyperopt's `fmin` loop, the in-memory `Trials`, early stopping and
Hyperopt's plotting of a `Trials` object."""
