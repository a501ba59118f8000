"""model=pretrained: the backbone loads checked, the strategies train what they say."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from lightning_app.data.spec import DataSpec
from lightning_app.errors import ConfigError
from lightning_app.models.pretrained.network import Pretrained

LORA = {"r": 4, "alpha": 8.0, "dropout": 0.0, "target_modules": ["query", "value"]}


def _spec(max_len: int = 12, task: str = "classification", outputs: int = 3) -> DataSpec:
    return DataSpec(
        task=task,
        input_shape=(max_len,),
        num_outputs=outputs,
        input_kind="tokens",
        vocab_size=50,
        extra={"pad_id": 0, "tokenizer": "pretrained"},
    )


def _ids(rows: int = 4, length: int = 12) -> torch.Tensor:
    ids = torch.randint(5, 50, (rows, length))
    ids[0, 6:] = 0  # padding
    return ids


def _trainable(net) -> int:
    return sum(p.numel() for p in net.parameters() if p.requires_grad)


def test_each_strategy_trains_what_it_says(tiny_bert):
    full = Pretrained(_spec(), str(tiny_bert), finetune="full")
    frozen = Pretrained(_spec(), str(tiny_bert), finetune="frozen")
    lora = Pretrained(_spec(), str(tiny_bert), finetune="lora", lora=LORA)
    head = sum(p.numel() for p in frozen.head.parameters())
    assert _trainable(full) == sum(p.numel() for p in full.parameters())
    assert _trainable(frozen) == head
    assert head < _trainable(lora) < _trainable(full) / 4
    assert full(_ids()).shape == (4, 3)


def test_padding_does_not_change_the_answer(tiny_bert):
    net = Pretrained(_spec(16), str(tiny_bert)).eval()
    ids = _ids(2, 10)
    ids[0, 6:] = 0
    longer = torch.cat([ids, torch.zeros(2, 6, dtype=torch.long)], dim=1)
    with torch.no_grad():
        assert torch.allclose(net(ids), net(longer), atol=1e-5)


def test_merged_lora_weights_give_the_adapted_outputs(tiny_bert):
    net = Pretrained(_spec(), str(tiny_bert), finetune="lora", lora=LORA).eval()
    with torch.no_grad():
        for name, p in net.backbone.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)  # adapters start at zero: make them matter
        x = _ids()
        before = net(x)
        net.merge_adapters()
        assert not any("lora" in n for n, _ in net.named_parameters())
        assert torch.allclose(before, net(x), atol=1e-4)


def test_backbone_and_head_get_their_own_learning_rates(tiny_bert):
    net = Pretrained(_spec(), str(tiny_bert), backbone_lr=1e-5, head_lr=1e-3)
    groups = net.param_groups()
    assert [g["lr"] for g in groups] == [1e-5, 1e-3]
    assert sum(len(g["params"]) for g in groups) == len(list(net.parameters()))


def test_a_checkpoint_rebuilds_without_the_original_folder(tiny_bert):
    net = Pretrained(_spec(), str(tiny_bert), finetune="lora", lora=LORA).eval()
    again = Pretrained(
        _spec(), "gone/away", finetune="lora", lora=LORA, **net.rebuild_config()
    ).eval()
    again.load_state_dict(net.state_dict())
    x = _ids()
    with torch.no_grad():
        assert torch.equal(net(x), again(x))


def test_weights_that_do_not_match_the_config_are_refused(tiny_bert, tmp_path):
    folder = tmp_path / "other"
    shutil.copytree(tiny_bert, folder)
    config = json.loads((folder / "config.json").read_text())
    config["num_hidden_layers"] = 3  # one layer more than the weights hold
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError, match=r"do not match its config\.json"):
        Pretrained(_spec(), str(folder))
    config |= {"num_hidden_layers": 2, "hidden_size": 48, "intermediate_size": 96}
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError, match=r"cannot load the backbone|do not match"):
        Pretrained(_spec(), str(folder))


def test_a_folder_without_weights_is_refused(tiny_bert, tmp_path):
    folder = tmp_path / "config-only"
    folder.mkdir()
    shutil.copy(tiny_bert / "config.json", folder)
    with pytest.raises(ConfigError, match="cannot load the backbone in"):
        Pretrained(_spec(), str(folder))


def test_sequences_longer_than_the_position_table_are_refused(tiny_bert):
    with pytest.raises(
        ConfigError, match=r"max_len=100: above the backbone's max_position_embeddings=64"
    ):
        Pretrained(_spec(100), str(tiny_bert))


def test_lora_adapters_whose_output_never_reaches_the_head_are_left_out(tiny_bert):
    """`dense` also names BERT's pooler, which the head does not read (it takes the [CLS] or
    mean hidden state): those adapters would get no gradient, so they are frozen; the other
    `dense` adapters train. The check leaves no gradients behind."""
    net = Pretrained(
        _spec(), str(tiny_bert), finetune="lora", lora=LORA | {"target_modules": ["dense"]}
    )
    adapters = {n: p for n, p in net.named_parameters() if ".lora_" in n}
    pooler = [p for n, p in adapters.items() if ".pooler." in n]
    others = [p for n, p in adapters.items() if ".pooler." not in n]
    assert pooler and not any(p.requires_grad for p in pooler)
    assert others and all(p.requires_grad for p in others)
    assert all(p.grad is None for p in net.parameters())
    net(_ids()).sum().backward()
    assert all(p.grad is not None for p in others)


def test_unknown_lora_targets_list_the_linear_layers(tiny_bert):
    with pytest.raises(ConfigError, match=r"no module named \['qkv'\].*'query'"):
        Pretrained(
            _spec(), str(tiny_bert), finetune="lora", lora=LORA | {"target_modules": ["qkv"]}
        )


def test_gradient_checkpointing_gives_the_same_gradients(tiny_bert):
    plain = Pretrained(_spec(), str(tiny_bert))
    ckpt = Pretrained(_spec(), str(tiny_bert), gradient_checkpointing=True)
    ckpt.load_state_dict(plain.state_dict())
    x, grads = _ids(), []
    for net in (plain, ckpt):
        torch.manual_seed(3)  # the same dropout masks (recomputation restores the RNG state)
        net(x).square().sum().backward()
        grads.append(net.backbone.embeddings.word_embeddings.weight.grad)
    assert ckpt.backbone.is_gradient_checkpointing
    assert grads[0].abs().sum() > 0 and torch.allclose(grads[0], grads[1], atol=1e-5)


def test_the_padding_id_of_the_tokenizer_is_masked_whatever_it_is(tiny_bert):
    spec = _spec()
    spec = DataSpec(**{**spec.to_dict(), "extra": {"pad_id": 7, "tokenizer": "pretrained"}})
    net = Pretrained(spec, str(tiny_bert)).eval()
    x = torch.randint(8, 50, (2, 6))
    padded = torch.cat([x, torch.full((2, 4), 7)], dim=1)
    with torch.no_grad():
        assert torch.allclose(net(x), net(padded), atol=1e-5)
