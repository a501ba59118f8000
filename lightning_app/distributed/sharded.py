"""Fully sharded data-parallel on CPU (``trainer=fsdp_cpu``): torch's FSDP over gloo.

Lightning's ``FSDPStrategy`` is GPU-only in two places, and torch's FSDP itself is not:

- it wraps with ``device_id=root_device.index``, which is None for the CPU; FSDP then looks
  for an accelerator and fails (``FSDP needs a non-CPU accelerator device``). Passing
  ``device_id=torch.device("cpu")`` makes FSDP shard and train on the CPU with gloo.
- it gathers full state dicts with ``offload_to_cpu=True``. On the CPU that "offload" aliases
  the unsharded parameter FSDP frees right after, and copying the state dict then reads freed
  memory (a segmentation fault in torch 2.13). Rank 0 gathers without the offload here.

The accelerator connector refuses only ``type(strategy) is FSDPStrategy`` with a CPU
accelerator; this subclass passes (see ``training/compat.py``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any

import torch
from pytorch_lightning.plugins.precision import FSDPPrecision
from pytorch_lightning.strategies import FSDPStrategy
from torch import nn

from lightning_app.config.rules.training import FSDP_CPU_SHARDING
from lightning_app.training.compat import FsdpStrategySeam

log = logging.getLogger(__name__)


class CpuFSDPPrecision(FSDPPrecision):
    """Lightning's FSDP precision whose ``bf16-mixed`` autocasts on the CPU.

    FSDP itself computes in bfloat16 (``MixedPrecision(param_dtype=bfloat16)``); Lightning's
    plugin adds ``torch.autocast("cuda")`` around the forward, which the CPU disables with a
    warning at every step. Here the autocast is the CPU's, so the ops it runs in float32 on the
    CPU (the losses: cross-entropy of bfloat16 logits comes out float32) stay there.
    """

    def forward_context(self) -> AbstractContextManager:
        if self.precision == "bf16-mixed":
            return torch.autocast("cpu", dtype=torch.bfloat16)
        return super().forward_context()


class CpuFSDPStrategy(FsdpStrategySeam):
    """Lightning's FSDP strategy on CPU processes (gloo), one full checkpoint written by rank 0.

    Args:
        sharding_strategy: ``FULL_SHARD`` (parameters, gradients and optimizer state split),
            ``SHARD_GRAD_OP`` (parameters whole between forward and backward) or ``NO_SHARD``.
        wrap_layers: class names of the layers that become FSDP units of their own (a
            transformer's blocks): each unit is gathered only while it computes. A model with
            none of them is one unit.
        state_dict_type: ``full`` only: checkpoints are ordinary files that ``lapp eval``,
            ``lapp export`` and ``resume`` read.
        use_orig_params: keep the model's own parameters visible to the optimizer (parameter
            groups with their own learning rates, frozen weights); they hold this rank's share.
        **kwargs: the other arguments of Lightning's ``FSDPStrategy``.

    Raises:
        ValueError: ``cpu_offload`` (the parameters are in CPU memory already), a
            ``state_dict_type`` other than ``full`` or an unknown ``sharding_strategy``.
    """

    strategy_name = "fsdp_cpu"

    def __init__(
        self,
        sharding_strategy: str = "FULL_SHARD",
        wrap_layers: Sequence[str] = (),
        state_dict_type: str = "full",
        process_group_backend: str = "gloo",
        use_orig_params: bool = True,
        **kwargs: Any,
    ) -> None:
        if kwargs.get("cpu_offload"):
            raise ValueError("cpu_offload: the parameters of an FSDP run on CPU are in CPU memory")
        if state_dict_type != "full":
            raise ValueError(f"state_dict_type={state_dict_type!r}: only 'full' is supported")
        if str(sharding_strategy).upper() not in FSDP_CPU_SHARDING:
            raise ValueError(
                f"sharding_strategy={sharding_strategy!r}: one of {', '.join(FSDP_CPU_SHARDING)}"
            )
        super().__init__(
            sharding_strategy=str(sharding_strategy).upper(),
            state_dict_type="full",
            process_group_backend=process_group_backend,
            use_orig_params=use_orig_params,
            **kwargs,
        )
        self.wrap_layers = tuple(wrap_layers)
        self.held_params: list[int] = []  # parameters each rank holds, gathered after wrapping
        self._wrapped: nn.Module | None = None

    @property
    def precision_plugin(self) -> FSDPPrecision:
        return FSDPStrategy.precision_plugin.fget(self)

    @precision_plugin.setter
    def precision_plugin(self, plugin: Any) -> None:
        if type(plugin) is FSDPPrecision:  # the one Lightning picks for any FSDP strategy
            plugin = CpuFSDPPrecision(plugin.precision)
        FSDPStrategy.precision_plugin.fset(self, plugin)

    def wrap_model(self, model: nn.Module) -> nn.Module:
        from torch.distributed.fsdp import FullyShardedDataParallel
        from torch.distributed.fsdp.wrap import ModuleWrapPolicy

        if self.root_device.type != "cpu":
            return super().wrap_model(model)
        if self._wrapped is not None and self._wrapped.module is model:
            # `trainer.test` after `fit` hands over the same module, whose parameters are now
            # this rank's shards: wrapping it again would shard the shards
            return self._wrapped
        if any(isinstance(m, FullyShardedDataParallel) for m in model.modules()):
            return super().wrap_model(model)  # wrapped by the model itself
        kwargs = dict(self.kwargs)
        layers = {type(m) for m in model.modules() if type(m).__name__ in self.wrap_layers}
        if layers and "auto_wrap_policy" not in kwargs:
            kwargs["auto_wrap_policy"] = ModuleWrapPolicy(layers)
        wrapped = FullyShardedDataParallel(
            module=model,
            cpu_offload=self.cpu_offload,
            mixed_precision=self.mixed_precision_config,
            sharding_strategy=self.sharding_strategy,
            device_id=torch.device("cpu"),
            **kwargs,
        )
        self.after_wrapping(wrapped)
        self._wrapped = wrapped
        self.held_params = _gather(sum(p.numel() for p in wrapped.parameters()))
        if self.is_global_zero:
            units = sum(isinstance(m, FullyShardedDataParallel) for m in wrapped.modules())
            log.info(
                "FSDP %s over %d ranks, %d unit(s): parameters held per rank %s",
                self.sharding_strategy.name,
                self.world_size,
                units,
                self.held_params,
            )
        return wrapped

    def lightning_module_state_dict(self) -> dict[str, Any]:
        if self.root_device.type != "cpu":
            return super().lightning_module_state_dict()
        with self._full_state_dict(rank0_only=True):
            return self.model.state_dict()

    def optimizer_state(self, optimizer: Any) -> dict[str, Any]:
        from pytorch_lightning.core.optimizer import LightningOptimizer
        from torch.distributed.fsdp import FullyShardedDataParallel, OptimStateKeyType

        if self.root_device.type != "cpu":
            return super().optimizer_state(optimizer)
        if isinstance(optimizer, LightningOptimizer):
            optimizer = optimizer.optimizer
        with self._full_state_dict(rank0_only=True):
            state = FullyShardedDataParallel.optim_state_dict(self.model, optimizer)
            if self.global_rank == 0:  # keyed by parameter index, as a plain optimizer's
                state = FullyShardedDataParallel.rekey_optim_state_dict(
                    state, OptimStateKeyType.PARAM_ID, self.model
                )
            return state

    def _full_state_dict(self, rank0_only: bool) -> AbstractContextManager:
        """FSDP's full-state-dict mode without the CPU offload (see the module docstring)."""
        from torch.distributed.fsdp import (
            FullOptimStateDictConfig,
            FullStateDictConfig,
            FullyShardedDataParallel,
            StateDictType,
        )

        return FullyShardedDataParallel.state_dict_type(
            self.model,
            StateDictType.FULL_STATE_DICT,
            FullStateDictConfig(offload_to_cpu=False, rank0_only=rank0_only),
            FullOptimStateDictConfig(offload_to_cpu=False, rank0_only=rank0_only),
        )


def _gather(value: int) -> list[int]:
    """``value`` of every rank, in rank order."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return [value]
    out: list[Any] = [None] * torch.distributed.get_world_size()
    torch.distributed.all_gather_object(out, value)
    return [int(v) for v in out]


def held_params_metrics(strategy: Any) -> dict[str, int]:
    """``fit/params_on_rank{R}``: the parameters each rank held while training, under FSDP."""
    held = strategy.held_params if isinstance(strategy, CpuFSDPStrategy) else []
    return {f"fit/params_on_rank{rank}": n for rank, n in enumerate(held)}
