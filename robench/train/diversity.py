"""The diversity-promoting regulariser of ensemble pretraining (paper eq. 4).

g = log det(G^T G + ridge * I), G = [g_1 / |g_1|, ..., g_M / |g_M|] per example, g_i the
flattened input gradient of task i's loss. The columns have unit length, so G^T G has ones on
its diagonal and det(G^T G) <= 1 (Hadamard's inequality): g <= 0, and g reaches its maximum
(log(1 + ridge)^M, about 0) exactly when the tasks' gradients are orthogonal. Parallel
gradients make G^T G singular; the ridge (1e-5, as in the authors' code after Pang et al.
2019) keeps the log finite there (about M-1 times log(ridge)).

The math runs in float32 with autocast off, and the determinant of the small M x M matrix in
float64: under bf16 autocast the Gram matrix would otherwise be rounded to 8 bits of mantissa,
far coarser than the ridge it must resolve.
"""

from __future__ import annotations

import torch

_TINY = 1e-12  # a zero gradient gives a zero column (and a very negative g), not NaN


def diversity_logdet(grads: list[torch.Tensor], ridge: float = 1e-5) -> torch.Tensor:
    """Batch mean of log det(G^T G + ridge * I); grads are M tensors shaped (N, ...).

    Differentiable in the gradients: computed from gradients taken with create_graph=True,
    its own gradient reaches the inputs and the weights (double backprop).
    """
    if len(grads) < 2:
        raise ValueError(f"the diversity of {len(grads)} gradient(s) is undefined; need >= 2")
    device_type = grads[0].device.type
    with torch.autocast(device_type=device_type, enabled=False):
        flat = torch.stack([g.float().flatten(1) for g in grads], dim=2)  # (N, D, M)
        unit = flat / flat.norm(dim=1, keepdim=True).clamp_min(_TINY)
        gram = unit.transpose(1, 2) @ unit  # (N, M, M)
        eye = torch.eye(len(grads), device=gram.device, dtype=torch.float64)
        logdet = torch.logdet(gram.double() + ridge * eye)
    return logdet.mean().float()
