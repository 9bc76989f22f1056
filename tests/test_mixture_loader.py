"""MixtureLoader: batches built in reusable shared slots equal the plain batches, whatever the workers."""

from __future__ import annotations

import numpy as np
import pytest

from lasskit import soundgen
from lasskit.manifest import Clip, write_manifest
from lasskit.mixing import MixSpec

torch = pytest.importorskip("torch")

SR = 16000
CLASSES = ["tone", "alarm", "chirp", "hum", "rain", "bird"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    from lasskit.mixing import mixture_dataset

    root = tmp_path_factory.mktemp("loader")
    clips = []
    for i in range(8):
        name = CLASSES[i % 6]
        cls = soundgen.CLASSES[name]
        soundgen.write_clip(root / "audio" / f"k{i}.wav", name, 1.0, seed=i)
        clips.append(Clip(f"k{i}", f"audio/k{i}.wav", 1.0, SR, SR, "gen", "train", list(cls.captions),
                          list(cls.labels)))
    write_manifest(root / "manifest.csv", clips)
    return mixture_dataset([root / "manifest.csv"], MixSpec(-5, 5, duration=0.5, num=40, seed=3), jobs=1)


def expected(dataset, batch: int):
    out = []
    for first in range(0, len(dataset), batch):
        items = [dataset[i] for i in range(first, min(first + batch, len(dataset)))]
        out.append((torch.stack([m for m, _, _ in items]), torch.stack([r for _, r, _ in items]),
                    [q for *_, q in items]))
    return out


@pytest.mark.parametrize("workers", [0, 1, 2])
def test_batches_equal_the_items_whatever_the_workers(dataset, workers):
    from lasskit.mixing.torch_dataset import MixtureLoader

    want = expected(dataset, 6)  # 40 rows in batches of 6: the last batch has 4 rows
    got = list(MixtureLoader(dataset, batch_size=6, workers=workers, prefetch=2))  # every batch kept alive
    assert len(got) == len(want) == 7
    for (m, r, q), (em, er, eq) in zip(got, want):
        assert torch.equal(m, em) and torch.equal(r, er) and q == eq
        assert m.shape[1] == dataset.planner.spec.length == 8000
        # each batch is this process's own memory: later batches never overwrite it
        assert not m.is_shared() and not r.is_shared()


def test_slots_are_used_and_reused_by_workers(dataset):
    from lasskit.mixing import torch_dataset as td

    loader = td.MixtureLoader(dataset, batch_size=4, workers=1, prefetch=2)
    seen = []
    original = td._unslot

    def spy(iterator, slots, pin):
        for raw in iterator:
            seen.append(type(raw).__name__)
            yield from original(iter([raw]), slots, pin)

    td._unslot = spy
    try:
        batches = list(loader)
    finally:
        td._unslot = original
    assert len(batches) == 10
    assert seen.count("_SlotBatch") == 10  # no batch went the ordinary way
    slots = loader.collate_fn.slots
    assert slots.busy.shape == (1, 3)  # prefetch + 1 slots a worker
    assert int(slots.busy.sum()) == 0  # every slot freed after its copy
    assert int(slots.stamp.sum()) == 10  # ten claims over three slots: reused


def test_a_reused_slot_is_an_error_not_a_wrong_batch():
    from lasskit.mixing import torch_dataset as td

    slots = td._Slots(1, 2, 2, 8)
    slots.busy[0, 1] = 1
    slots.stamp[0, 1] = 5
    stale = td._SlotBatch(0, 1, 4, 2, ["a", "b"])  # the worker has since claimed the slot again
    with pytest.raises(RuntimeError, match="reused before it was read"):
        list(td._unslot(iter([stale]), slots, False))


def test_items_of_another_length_take_the_ordinary_way(dataset):
    from lasskit.mixing.torch_dataset import MixtureLoader

    class Short:
        def __len__(self):
            return 6

        def __getitem__(self, i):
            x = torch.full((100,), float(i))
            return x, -x, f"q{i}"

    loader = MixtureLoader(Short(), length=8000, batch_size=3, workers=1, prefetch=2)
    batches = list(loader)
    assert [b[2] for b in batches] == [["q0", "q1", "q2"], ["q3", "q4", "q5"]]
    assert np.array_equal(batches[1][0][:, 0].numpy(), [3, 4, 5]) and batches[1][1].shape == (3, 100)
