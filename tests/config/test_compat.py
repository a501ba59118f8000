"""The Hydra internals behind ``lightning_app.config.compat`` still exist and behave."""

from __future__ import annotations

from dataclasses import dataclass

from hydra.core.config_store import ConfigStore
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.utils import JobReturn, JobStatus

from lightning_app.config import compat


@dataclass
class _Node:
    value: int = 1


def test_stored_group_is_the_live_repo_entry() -> None:
    cs = ConfigStore.instance()
    cs.store(group="lapp_compat_test/inner", name="opt", node=_Node)
    stored = compat.stored_group(cs, "lapp_compat_test", "inner")
    assert "opt.yaml" in stored
    assert stored["opt.yaml"].node.value == 1  # a ConfigNode with the stored node
    del stored["opt.yaml"]
    assert "opt.yaml" not in cs.repo["lapp_compat_test"]["inner"]
    assert compat.stored_group(cs, "lapp_compat_test", "missing") == {}
    del cs.repo["lapp_compat_test"]


def test_override_value_text_parses_back_to_the_value() -> None:
    parser = OverridesParser.create()
    values = [
        1,
        0.5,
        True,
        None,
        "plain",
        "needs quoting: [a, b]",
        [1, "x y", [2.5]],
        {"a": 1, "b": "c d", "url": "sqlite:///x/y.db"},
    ]
    for value in values:
        text = compat.override_value_text(value)
        parsed = parser.parse_override(f"key={text}").value()
        assert parsed == value, (value, text, parsed)


def test_job_return_value_gives_the_exception_without_raising() -> None:
    failed = JobReturn()
    err = ValueError("boom")
    failed.return_value = err
    failed.status = JobStatus.FAILED
    assert compat.job_return_value(failed) is err
    ok = JobReturn()
    ok.return_value = 0.75
    ok.status = JobStatus.COMPLETED
    assert compat.job_return_value(ok) == 0.75 == ok.return_value
