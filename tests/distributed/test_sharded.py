"""The fsdp_cpu strategy's own checks and its precision plugin, without starting processes."""

from __future__ import annotations

import pytest
import torch

from lightning_app.distributed.sharded import (
    CpuFSDPPrecision,
    CpuFSDPStrategy,
    held_params_metrics,
)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"cpu_offload": True}, "cpu_offload"),
        ({"state_dict_type": "sharded"}, "only 'full'"),
        ({"sharding_strategy": "HYBRID_SHARD"}, "FULL_SHARD, SHARD_GRAD_OP, NO_SHARD"),
    ],
)
def test_the_strategy_refuses_what_it_cannot_run(kwargs, message):
    with pytest.raises(ValueError, match=message):
        CpuFSDPStrategy(**kwargs)


def test_the_strategy_keeps_the_fsdp_keys_and_the_original_parameters():
    strategy = CpuFSDPStrategy(sharding_strategy="shard_grad_op", wrap_layers=["BertLayer"])
    assert strategy.sharding_strategy.name == "SHARD_GRAD_OP"
    assert strategy.process_group_backend == "gloo" and strategy.kwargs["use_orig_params"]
    assert held_params_metrics(strategy) == {}  # nothing wrapped yet
    strategy.held_params = [7, 6]
    assert held_params_metrics(strategy) == {"fit/params_on_rank0": 7, "fit/params_on_rank1": 6}
    assert held_params_metrics(object()) == {}  # any other strategy


def test_bf16_mixed_autocasts_on_the_cpu():
    layer, x = torch.nn.Linear(4, 2), torch.randn(3, 4)
    with CpuFSDPPrecision("bf16-mixed").forward_context():
        assert layer(x).dtype == torch.bfloat16
    with CpuFSDPPrecision("32-true").forward_context():
        assert layer(x).dtype == torch.float32
