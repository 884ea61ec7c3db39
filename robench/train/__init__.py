"""Training: the ST/AT loop, its schedule, checkpoints and run directories."""
