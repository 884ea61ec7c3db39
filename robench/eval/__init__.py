"""Evaluation: registered eval suites turn per-example flags into rows of their boards.

suites/       one file and one registry entry per suite (pgd20, autoattack, unforeseen,
              corruptions): evaluations, accepted overrides, rows, board schema
evaluator.py  Evaluator: sanity checks once, flags on demand (robench.flags), resumable
targets.py    what is evaluated: a trained run, an ensemble of runs, your own model
user_model.py your FILE.py:FACTORY and its weights (weights_only, checked key by key)
request.py    EvalRequest: `robench eval`'s arguments as one validated request
stage.py      the evaluation stage: targets x suite -> rows, one target at a time
sanity.py     the checks before any attack (training mode, randomness, gradient masking)
transfer.py   the transfer matrix and overlaps (Table 4, Figure 5) from kept examples
"""
