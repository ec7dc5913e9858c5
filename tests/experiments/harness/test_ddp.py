"""Two DDP processes on the CPU (gloo) through the same ``python -m experiments run`` command as one process.

15 test videos on 2 ranks: Lightning's ``DistributedSampler`` pads rank 1 with a repeat of video 0, which must not
count twice. Checked: the test top-1 is a count out of 15 and equals a single-process test of the same weights;
it equals each video's softmax averaged over all its views, computed here by hand; ``metrics.json``, the
checkpoint and the TensorBoard files come from rank 0 alone (the process the test started). Validation counts each
video once as well."""

import json
import subprocess

import pytest
import torch

from tests.experiments.micro_run import RUN, cli_command, cli_env

pytestmark = pytest.mark.slow  # two processes plus a single-process check: ~40 s on 2 idle cores

NUM_VAL = 15  # odd: the distributed sampler pads
SYNTHETIC = f'data.synthetic_params={{"num_train": 32, "num_val": {NUM_VAL}, "seed": 0}}'
DDP_ARGS = ("--epochs", "1", "--accelerator", "cpu", "--devices", "2", "--strategy", "ddp", "--set", SYNTHETIC,
            "--set", "trainer.check_val_every_n_epoch=1")  # validate the final weights: they are last.ckpt's


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory):
    runs = tmp_path_factory.mktemp("ddp") / "runs"
    child = subprocess.Popen(cli_command(runs, *DDP_ARGS), env=cli_env(), stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    output, _ = child.communicate(timeout=600)
    assert child.returncode == 0, output[-4000:]
    return runs, child.pid, output


def _single_process_test(runs, tmp_path, stage: str = "test"):
    """The run's final weights tested (or validated) by one process, through the same task, data module and
    system."""
    import lightning as L

    from experiments.harness.plan import resolve_runs
    from experiments.harness.tasks import build_model, get_task

    overrides = {"data": {"synthetic_params": {"num_train": 32, "num_val": NUM_VAL, "seed": 0}, "num_workers": 0,
                          "batch_size": 8}}
    cfg = resolve_runs("mformer_table6b", rows=["mformer"], overrides=overrides)[0]
    task = get_task(cfg.task)
    dm = task.datamodule(cfg, tmp_path)
    dm.prepare_data()
    dm.setup("fit")
    model = build_model(cfg, dm.num_classes, weights=str(runs / RUN / "checkpoints" / "last.ckpt"))
    module = task.system(cfg, model, dm)
    trainer = L.Trainer(accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False)
    metrics = getattr(trainer, stage)(module, datamodule=dm, verbose=False)[0]
    return metrics, module, dm


def test_each_video_counts_once_and_matches_one_process(ddp_run, tmp_path):
    runs, _, _ = ddp_run
    record = json.loads((runs / RUN / "metrics.json").read_text())
    assert record["provenance"]["world_size"] == 2 and record["provenance"]["strategy"] == "DDPStrategy"
    assert record["provenance"]["batch"]["global_batch"] == 16  # 8 per process x 2
    assert record["test_videos"] == NUM_VAL
    top1 = record["metrics"]["top1"]
    correct = top1 * NUM_VAL / 100
    assert correct == pytest.approx(round(correct), abs=1e-4)  # out of 15, not 16

    single, module, dm = _single_process_test(runs, tmp_path)
    assert module.test_videos == NUM_VAL
    assert single["test/top1"] * 100 == pytest.approx(top1, abs=1e-9)
    # The mean loss tells 15 videos from 16 whatever the accuracy (a micro run on 40 classes may get none right):
    # the padded repeat of video 0 counted again would move it.
    assert single["test/loss"] == pytest.approx(record["metrics"]["loss"], rel=1e-5)

    # By hand: every view of every test video, softmax, mean over the video's views, then top-1.
    module.eval()
    hits = 0
    with torch.no_grad():
        for batch in dm.test_dataloader():
            views = batch["video"]  # (B, V, C, T, H, W): all of a video's views in one item
            assert views.shape[1] == 2
            probs = torch.stack([module(views[:, v]).softmax(-1) for v in range(views.shape[1])], 1).mean(1)
            hits += int((probs.argmax(-1) == batch["label"]).sum())
    assert 100 * hits / NUM_VAL == pytest.approx(top1, abs=1e-4)


def test_only_rank_zero_writes(ddp_run):
    runs, rank0_pid, output = ddp_run
    run = runs / RUN
    record = json.loads((run / "metrics.json").read_text())
    assert record["provenance"]["written_by"] == {"global_rank": 0, "pid": rank0_pid}
    events = sorted(run.glob("events.out.tfevents.*"))
    assert events and all(e.name.split(".")[-2] == str(rank0_pid) for e in events)  # the writer's pid is in the name
    assert sorted(p.name for p in run.iterdir() if not p.name.startswith("events.")) == [
        "checkpoints", "hparams.yaml", "metrics.json"]
    assert [p.name for p in (run / "checkpoints").iterdir()] == ["last.ckpt"]
    assert (runs / "mformer_table6b" / "static.json").exists()
    assert output.count("report: ") == 1  # rank 1 ran the same command but built no report
    assert "GLOBAL_RANK: 1" in output


def test_validation_counts_each_video_once_too(ddp_run, tmp_path):
    """The last validation (after the only epoch: the weights of last.ckpt) as TensorBoard logged it on rank 0
    equals one process validating the same weights: a count out of 15, the padded repeat not counted."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    runs, _, _ = ddp_run
    values = []
    for events in sorted((runs / RUN).glob("events.out.tfevents.*")):
        logged = EventAccumulator(str(events))
        logged.Reload()
        if "val/top1" in logged.Tags()["scalars"]:
            values += [(e.step, e.value) for e in logged.Scalars("val/top1")]
    top1 = max(values)[1]  # the last step's, in percent
    single, _, _ = _single_process_test(runs, tmp_path, stage="validate")
    assert single["val/top1"] * 100 == pytest.approx(top1, abs=1e-4)
    correct = top1 * NUM_VAL / 100
    assert correct == pytest.approx(round(correct), abs=1e-3)
