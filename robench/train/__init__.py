"""Training: the one resumable-run lifecycle and a named step function per mode.

stage.py        train_suite: each pretraining once, then the fine-tunings -> run records
lifecycle.py    the run lifecycle (skip, resume, epochs, checkpoints, result) and TrainEnv
finetune.py     FinetuneJob: fine-tuning / end-to-end training, validation TA and RA
pretrain.py     PretrainJob: P2 / P3 / PS pretraining of the trunk on a pretext task
steps.py        ClassifierStep (ST/AT), PretextStep (P2/P3/PS)
rotation_aux.py RotationAuxStep: the Figure 3 baseline (AT with a rotation head)
ensemble_pretrain.py, diversity.py  EnsembleStep: ensemble pretraining with the log-det term
loop.py         run_epoch: the inner loop, seeded per step, mid-epoch checkpoints
schedule.py     learning rates and the optimiser; transfer.py: the trunk from pretraining
ddp.py          DistributedDataParallel with global-batch BatchNorm
"""
