"""Edge inputs of the model zoo found by an outside check: ensemble weights at the limits of a
float, member options spelled twice, checkpoints of another model (or a CLAP file) given to each
model, and files that are missing. In-process, no network built at full size."""

from __future__ import annotations

import pytest
import torch

from lasskit.errors import UsageError
from lasskit.models.ensemble import Ensemble, parse_weights


def test_ensemble_weights_at_the_limits_of_a_float():
    for bad in ("inf,1", "nan,1", "0,0", "1e309,1"):  # inf: every output NaN, blamed on the model
        with pytest.raises(UsageError, match="finite number >= 0, and one > 0"):
            parse_weights(bad, 2)
    x = torch.full((1, 8), 0.25)
    for extreme in ("1e308,1e308", "1e-320,0"):  # the sum overflowed (all zeros) / w * x underflowed
        got = Ensemble(members="passthrough,passthrough", weights=extreme).separate(x, ["q"])
        assert torch.equal(got, x), extreme


def test_ensemble_member_option_spelled_twice_is_refused():
    with pytest.raises(UsageError, match="unknown option m01_checkpoint"):  # it replaced m1_checkpoint
        Ensemble(members="passthrough,passthrough", m1_checkpoint="a", m01_checkpoint="b")
