"""The smoke's options that change what a record says, and its records written table by table (fast: no run)."""

import pytest

from experiments import smoke
from experiments.__main__ import main
from experiments.smoke import SmokeOptions, read_records, reductions, smoke_config, smoke_configs


@pytest.fixture
def cfg():
    return smoke_configs("mformer_table4", ["joint"])[0]


def test_a_strategy_reaches_the_trainer_and_the_record_says_it(cfg):
    options = SmokeOptions(device="cuda", strategy="fsdp")
    run = smoke_config(cfg, None, options)
    assert run.trainer.strategy == "fsdp" and run.trainer.devices == 1
    assert "strategy fsdp on one device" in reductions(cfg, run, options)
    plain = SmokeOptions(device="cuda")
    assert not any("strategy" in r for r in reductions(cfg, smoke_config(cfg, None, plain), plain))


def test_a_shared_device_makes_the_times_upper_bounds(cfg):
    options = SmokeOptions(device="cuda", sharing=3)
    said = reductions(cfg, smoke_config(cfg, None, options), options)
    assert "device shared with 2 other process(es): times are upper bounds" in said
    with pytest.raises(ValueError, match="sharing"):
        SmokeOptions(sharing=0)


def test_records_are_written_as_each_table_ends(tmp_path, monkeypatch):
    """A sweep stopped in its second table keeps the first table's records in the file."""
    def fake_table(table_id, options, rows=None, echo=print, done=None):
        if table_id == "mformer_table9":
            raise KeyboardInterrupt  # the sweep is stopped here
        return [{"table": table_id, "row": "r", "column": "c", "status": "pass", "error": None}]

    monkeypatch.setattr(smoke, "smoke_table", fake_table)
    path = tmp_path / "smoke.json"
    with pytest.raises(KeyboardInterrupt):
        main(["smoke", "mformer_table4", "mformer_table9", "--record", str(path)])
    (record,) = read_records(path)
    assert record["table"] == "mformer_table4" and record["command"].startswith("python -m experiments smoke")
