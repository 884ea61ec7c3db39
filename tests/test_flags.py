"""The flags primitive: clean/robust flags, resuming from a flag file, keeping the examples."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from robench.attacks import build_attack
from robench.config import AttackConfig
from robench.data import ArrayDataset
from robench.data.batches import TensorBatches
from robench.data.convert import to_float_chw
from robench.flags import compute_flags
from robench.runs import FlagStore
from robench.runtime import Runtime

CPU = Runtime.select("cpu")
N, BS = 26, 8  # four batches, the last one short


def _data(n: int = N) -> ArrayDataset:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, 8, 8, 3), dtype=np.uint8)
    labels = rng.integers(0, 3, n)
    return ArrayDataset(images, labels, ("a", "b", "c"))


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(192, 16), nn.ReLU(), nn.Linear(16, 3)).eval()


def _attack():
    return build_attack(AttackConfig(eps="8/255", step_size="2/255", steps=3))


def _reference(model: nn.Module, data: ArrayDataset) -> tuple[np.ndarray, np.ndarray]:
    """Clean and robust flags computed by hand, batch by batch with the evaluation's seeds."""
    from robench.flags import attack_generator

    attack = _attack()
    clean, robust = [], []
    for b, start in enumerate(range(0, len(data), BS)):
        x = to_float_chw(data.images[start : start + BS])
        y = torch.from_numpy(data.labels[start : start + BS])
        with torch.no_grad():
            ok = model(x).argmax(1) == y
        x_adv = attack.perturb(model, x, y, attack_generator(CPU, attack, 5, b))
        with torch.no_grad():
            rob = ok & (model(x_adv).argmax(1) == y)
        clean.append(ok.numpy())
        robust.append(rob.numpy())
    return np.concatenate(clean), np.concatenate(robust)


def test_flags_match_a_batch_by_batch_reference():
    model, data = _model(), _data()
    flags = compute_flags(model, data, runtime=CPU, batch_size=BS, attack=_attack(), seed=5)
    clean, robust = _reference(model, data)
    assert np.array_equal(flags.clean, clean) and np.array_equal(flags.robust, robust)
    assert flags.ra < flags.ta  # the attack fooled someone: the comparison above can fail
    assert flags.ta == pytest.approx(100 * clean.mean())


def test_resumes_from_a_partial_flag_file_and_keeps_every_batch_of_examples(tmp_path):
    model, data = _model(), _data()
    store = FlagStore(tmp_path).file("pgd", {"x": 1}, N)
    full = compute_flags(
        model, data, runtime=CPU, batch_size=BS, attack=_attack(), seed=5, keep_examples=True
    )
    # A first evaluation stopped after two batches: its flags and examples are on disk.
    store.save(full.clean[: 2 * BS], full.robust[: 2 * BS])
    store.save_examples(0, full.examples[:BS])
    store.save_examples(1, full.examples[BS : 2 * BS])
    seen = []
    resumed = compute_flags(
        model,
        data,
        runtime=CPU,
        batch_size=BS,
        attack=_attack(),
        seed=5,
        store=store,
        keep_examples=True,
        on_batch=seen.append,
    )
    assert seen == [2 * BS, BS, N - 3 * BS]  # the stored part first, then the two missing
    assert np.array_equal(resumed.robust, full.robust)
    assert torch.equal(resumed.examples, full.examples)
    assert store.is_complete() and store.examples_done(4) == 4


def test_examples_missing_from_a_complete_file_are_crafted_again(tmp_path):
    model, data = _model(), _data()
    store = FlagStore(tmp_path).file("pgd", {}, N)
    plain = compute_flags(model, data, runtime=CPU, batch_size=BS, attack=_attack(), store=store)
    assert plain.examples is None and store.examples_done(4) == 0
    kept = compute_flags(
        model, data, runtime=CPU, batch_size=BS, attack=_attack(), store=store, keep_examples=True
    )
    assert np.array_equal(kept.robust, plain.robust) and kept.examples.shape == (N, 3, 8, 8)
    delta = (kept.examples - to_float_chw(data.images)).abs().amax()
    assert 0 < float(delta) <= 8 / 255 + 1e-6


def test_kept_examples_rescore_to_the_robust_flags():
    """Scoring the model on its own kept examples gives back exactly its robust flags."""
    model, data = _model(), _data()
    flags = compute_flags(
        model, data, runtime=CPU, batch_size=BS, attack=_attack(), keep_examples=True
    )
    batches = TensorBatches(flags.examples, torch.from_numpy(data.labels), BS)
    rescored = compute_flags(model, batches, runtime=CPU, batch_size=BS)
    assert np.array_equal(flags.clean & rescored.clean, flags.robust)


def test_a_v1_or_torn_flag_file_is_recomputed(tmp_path):
    model, data = _model(), _data()
    store = FlagStore(tmp_path).file("clean", {}, N)
    with open(store.path, "wb") as handle:  # the v1 format: measured flags only
        np.savez(handle, flags=np.ones(N, dtype=bool), format=np.array("robench-flags-v1"))
    flags = compute_flags(model, data, runtime=CPU, batch_size=BS, store=store)
    assert not flags.clean.all()  # not the v1 file's all-true flags
    store.path.write_bytes(b"torn")
    again = compute_flags(model, data, runtime=CPU, batch_size=BS, store=store)
    assert np.array_equal(again.clean, flags.clean)


class _Rank:
    """Enough of a torchrun DistContext for an attack that cannot be shared out."""

    def __init__(self, rank: int) -> None:
        self.rank, self.enabled, self.is_main = rank, True, rank == 0

    def on_main(self, work):
        return work() if self.is_main else None


def test_an_attack_that_cannot_be_shared_runs_on_rank_0_and_the_others_read_its_flags(tmp_path):
    model, data = _model(), _data()
    attack = _attack()
    attack.distributable = False  # as AutoAttack: it owns its batching
    store = FlagStore(tmp_path).file("aa", {}, N)
    common = {"runtime": CPU, "batch_size": BS, "attack": attack, "store": store}
    main = compute_flags(model, data, dist=_Rank(0), **common)
    alone = compute_flags(model, data, **{**common, "store": None})
    assert np.array_equal(main.robust, alone.robust)
    attack.perturb = lambda *a, **k: pytest.fail("rank 1 attacked")
    other = compute_flags(model, data, dist=_Rank(1), **common)
    assert np.array_equal(other.robust, main.robust) and np.array_equal(other.clean, main.clean)
    with pytest.raises(ValueError, match="needs a flag file"):
        compute_flags(model, data, dist=_Rank(1), **{**common, "store": None})


def test_an_unreadable_batch_of_examples_is_crafted_again(tmp_path):
    model, data = _model(), _data()
    store = FlagStore(tmp_path).file("pgd", {}, N)
    common = {"runtime": CPU, "batch_size": BS, "attack": _attack(), "store": store}
    first = compute_flags(model, data, keep_examples=True, **common)
    (store.examples_dir / "000002.npy").write_bytes(b"torn")  # a hostile or broken file
    assert store.examples_done(4) == 2
    again = compute_flags(model, data, keep_examples=True, **common)
    assert torch.equal(again.examples, first.examples)
    assert np.array_equal(again.robust, first.robust)


def test_compute_seconds_are_stored_and_carried_through_a_resume(tmp_path):
    """Rows rebuilt from complete flags (a rerun, a cluster's report job) still say what the
    evaluation cost: the stored prefix's seconds plus the resumed part's."""
    model, data = _model(), _data()
    store = FlagStore(tmp_path).file("pgd", {}, N)
    full = compute_flags(model, data, runtime=CPU, batch_size=BS, attack=_attack())
    store.save(full.clean[: 2 * BS], full.robust[: 2 * BS], seconds=100.0)
    assert store.load().seconds == 100.0
    resumed = compute_flags(model, data, runtime=CPU, batch_size=BS, attack=_attack(), store=store)
    # both stored batches are kept, so all 100 s count, plus the two batches computed now
    assert 100.0 < resumed.seconds < 100.0 + 60
    stored = store.load().seconds
    assert stored == pytest.approx(resumed.seconds, abs=0.5)
    again = compute_flags(model, data, runtime=CPU, batch_size=BS, attack=_attack(), store=store)
    assert again.seconds >= stored  # nothing recomputed, the cost is still known


def test_a_flag_file_without_seconds_reads_as_zero_seconds(tmp_path):
    store = FlagStore(tmp_path).file("clean", {}, 3)
    clean = np.array([True, False, True])
    with open(store.path, "wb") as handle:  # a file written before seconds were stored
        np.savez(handle, clean=clean, flags=clean, format=np.array("robench-flags-v2"))
    stored = store.load()
    assert np.array_equal(stored.measured, clean) and stored.seconds == 0.0
