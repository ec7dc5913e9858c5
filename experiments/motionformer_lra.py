"""Motionformer Table 5: the attention approximations on the Long Range Arena.

The paper trains with the Nyströmformer repository's LRA code (a 2-layer, 64-d transformer; Orthoformer with 64
prototypes, Performer with 256 features, Nyströmformer with 128 landmarks). ListOps is generated locally with the
LRA generator's grammar (``data.lra``), so its column runs everywhere; the other four tasks read their public
files from ``--data-root`` (``lra_text/``, ``lra_retrieval/``, ...) and show ``needs data`` otherwise.

- ``paper``: the Nyströmformer LRA configuration per task (``models.lra_transformer``), the benchmark-size ListOps
  set (96k sequences of 500-2000 tokens) or the released files.
- ``tiny``: the same network on a CPU-sized ListOps set (4k sequences of 32-128 tokens), budgets scaled by the
  sequence length (2000 -> 128 tokens), at least 4.
"""

from __future__ import annotations

from typing import Any

from .spec import (
    Computed,
    DataConfig,
    DerivedColumn,
    MetricColumn,
    ModelConfig,
    OptimConfig,
    RowSpec,
    ScalePreset,
    StaticColumn,
    TableSpec,
    TrainerConfig,
    register_table,
)
from .static import MEASURED, NEEDS_GPU, measured_device

TASKS = {"ListOps": "listops", "Text": "text", "Retrieval": "retrieval", "Image": "image", "Pathfinder": "pathfinder"}
PAPER_LENGTH, TINY_LENGTH = 2000, 128


# A ListOps set a 2-layer transformer learns something from in a minute or two of CPU training.
TINY_LISTOPS: dict[str, Any] = dict(num_train=4000, num_val=500, num_test=500, min_length=32, max_length=128,
                                    max_depth=4, max_args=5, seed=0)


PAPER_LRA = ScalePreset(
    description="paper: the Nyströmformer repository's LRA configuration per task (2 layers, 64-d, 2 heads), "
                "benchmark-size data",
    model=ModelConfig(name="lra_listops"),
    data={column: DataConfig(dataset=f"lra_{task}", task="sequence_classification", batch_size=32, num_workers=4)
          for column, task in TASKS.items()},
    # Nyströmformer repo (LRA/code/lra_config.py): lr 1e-4, no weight decay, 1000 warm-up steps then linear decay,
    # 5000 steps of 32 (on the 96k ListOps set: 1000 steps = 1/3 epoch; the schedule is sized by max_steps)
    optim=OptimConfig(lr=1e-4, weight_decay=0.0, label_smoothing=0.0, epochs=2, warmup_epochs=1 / 3,
                      schedule="linear"),
    trainer=TrainerConfig(accelerator="gpu", devices=1, precision="32-true", max_steps=5000),
)
TINY_LRA = ScalePreset(
    description="tiny: the Nyströmformer LRA transformer (2 layers, 64-d, 2 heads) on generated ListOps of "
                "32-128 tokens (4000 train / 500 test), CPU",
    model=ModelConfig(name="lra_listops_tiny"),
    # only ListOps has a tiny stand-in; the other tasks read their public files, as at paper scale
    data={**PAPER_LRA.data,
          "ListOps": DataConfig(dataset="lra_listops", task="sequence_classification", batch_size=32, num_workers=0,
                                synthetic_params=TINY_LISTOPS, options={"max_length": TINY_LENGTH})},
    optim=OptimConfig(lr=1e-3, weight_decay=0.01, label_smoothing=0.0, epochs=8, warmup_epochs=1,
                      schedule="cosine"),
    trainer=TrainerConfig(accelerator="cpu", devices=1, log_every_n_steps=20, check_val_every_n_epoch=2),
)


def _row(key: str, index: int, label: str, attention: str, budget: int | None) -> RowSpec:
    tiny_budget = None if budget is None else max(4, round(budget * TINY_LENGTH / PAPER_LENGTH))
    return RowSpec(key, index, label, scales={
        "paper": {"model": {"attention": attention, "budget": budget}},
        "tiny": {"model": {"attention": attention, "budget": tiny_budget}},
    })


def _listops_gflops(spec: TableSpec, row: RowSpec) -> Computed:
    from models.lra_transformer import lra_gflops

    model = dict(row.scales["paper"]["model"])
    value = lra_gflops(model["attention"], model["budget"])
    return Computed(value, f"{value:.2f} (computed)")


def _listops_memory(spec: TableSpec, row: RowSpec) -> Computed:
    """Max CUDA memory (MB) of a ListOps training step: measured on a GPU, else activation bytes on CPU."""
    from models.memory import lra_training_memory_mb

    value, how = lra_training_memory_mb(**row.scales["paper"]["model"])
    if how.startswith("measured"):
        return Computed(value, f"{value:.0f} ({how})", f"{MEASURED}{measured_device()}")
    return Computed(value, f"{how.replace('; ', ': ', 1)}: {value:.0f} MB", NEEDS_GPU)


@register_table
def mformer_table5() -> TableSpec:
    # ListOps uses the preset's model; the other tasks have their own LRA configuration (vocabulary, length)
    columns = tuple(MetricColumn(c, "top1") if t == "listops" else
                    MetricColumn(c, "top1", scales={s: {"name": f"lra_{t}"} for s in ("tiny", "paper")})
                    for c, t in TASKS.items())
    return TableSpec(
        table_id="mformer_table5",
        rows=(_row("exact", 0, "Exact softmax attention", "exact", None),
              _row("performer", 1, "Performer, 256 random features", "performer", 256),
              _row("nystrom", 2, "Nyströmformer, 128 landmarks", "nystrom", 128),
              _row("orthoformer", 3, "Orthoformer, 64 prototypes", "orthoformer", 64)),
        metric_columns=columns,
        derived_columns=(DerivedColumn("Avg ↑", tuple(TASKS), lambda *accs: sum(accs) / len(accs),
                                       note="mean over the five tasks, only when all five ran"),),
        static_columns=(StaticColumn("GFLOPS ↓", _listops_gflops, digits=2,
                                     note="ListOps GFLOPs of one 2048-token sequence (2000 + the pipeline's "
                                          "padding) at the paper's configuration, one multiply-add = one FLOP"),
                        StaticColumn("Mem. ↓", _listops_memory, digits=0,
                                     note="ListOps max memory (MB) of a training step, batch 32, 2048 tokens")),
        scales={"tiny": TINY_LRA, "paper": PAPER_LRA},
        notes="Tiny budgets scale with the sequence length (2000 -> 128 tokens): Performer 16 features, "
              "Nyströmformer 8 landmarks, Orthoformer 4 prototypes, at least 4.",
    )
