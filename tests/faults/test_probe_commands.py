"""Property-based probes (hypothesis) of the commands, as a careless or hostile user would call them: every door of
``python -m experiments``, ``reports``, ``data`` and ``tools`` that takes a number or reads a user's file, given
huge and negative numbers, NaN and infinity, fractions, numbers of 5,001 digits, nulls, values of the wrong type,
control characters, damaged documents and special files (a FIFO, a folder, a link loop, a missing file).

The property, for each door: the command ends (within ``SECONDS``: a FIFO read would hang, a trillion frames
would allocate) with exit status 0 or 1, or with 2 and one line on stderr; never a traceback; and it writes nothing
outside its place (its working folder stays empty, a dry run writes no runs folder, ``reports build`` writes its
``--out-dir`` only). The doors walked (command x input):

- ``experiments run --dry-run`` x each numeric flag (``--seeds --epochs --batch-size --num-workers --threads
  --num-nodes --accumulate-grad-batches --jobs --devices``) x numbers as text
- ``experiments run --dry-run`` x ``--set FIELD=VALUE`` for the numeric fields of data, optim and trainer, the
  model's arguments, the generated sets' sizes and data options x JSON values
- ``experiments run --dry-run`` x ``--pretrained FILE`` and the table's ``static.json`` x special and damaged files
- ``experiments evaluate --dry-run`` x ``--batch-size --num-workers --threads --num-nodes``;
  ``experiments status`` x ``--seeds``; ``data synth`` x ``--videos --seed``; ``data check`` x ``--workers``
- ``data check --root`` x special files and an annotation list that is one
- ``reports build --out-dir`` and ``experiments show`` x a run's record, a released-weights record and
  ``static.json`` (damaged JSON, fields replaced by any value, long numbers, special files)
- ``reports compare --records`` x a damaged record; ``reports loader-workers FILE`` x damaged and special files;
  ``reports claims --check`` x a damaged ``claims.yaml``; ``experiments weights`` x a damaged catalogue
- ``tools <each>`` x each numeric option (parsed only: a value the parser takes is not run, a measurement may take
  minutes)

Bounded and derandomized: a few examples a door every time (``FEW``); many more under ``@pytest.mark.slow``.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from experiments.harness import claims as claims_module
from experiments.harness import released_weights
from reports.records import RESULTS_DIR
from tests.faults.doors import deadline, numeric_doors, required_options, run_command, tool_parser
from tests.faults.test_fuzz_records import CLAIMS, GOOD, damaged_documents
from tests.reports.test_released_reports import K400

FEW = settings(max_examples=5, deadline=None, derandomize=True, database=None, report_multiple_bugs=False,
               suppress_health_check=list(HealthCheck))
MANY = settings(FEW, max_examples=60)
SECONDS = 90  # a dry run resolves and builds its models on the meta device in 1-3 s on 2 busy cores
TABLE, ROW = "mformer_table4", "joint"
LONG = "9" * 5001

NUMBER_TEXTS = st.one_of(
    st.sampled_from(["nan", "inf", "-inf", "-1", "0", "1", "2", "1.5", "-0.5", "1e999", "1e-320", "9" * 25, LONG,
                     "٣", "", " ", "abc", "0x10", "1_000", "+3", "null", "true", "\n", "\x1b[31m", "auto"]),
    st.integers(-2**64, 2**64).map(str), st.floats().map(repr))
JSON_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(), st.text(max_size=4),
    st.sampled_from([0, -1, 1, 2, 3, 2**31, 2**63, 0.5, 1e300, [], {}, [1, 2], [2**40, 1], "1"]),
    st.lists(st.integers(-3, 2**33) | st.floats(), max_size=3),
    st.dictionaries(st.sampled_from(["a", "num_train", "size"]), st.integers(-5, 2**40), max_size=2))
SET_FIELDS = [f"data.{name}" for name in ("batch_size", "num_frames", "frame_stride", "crop_size", "train_scale",
                                          "num_workers", "test_clips", "test_crops")] + \
             [f"optim.{name}" for name in ("epochs", "lr", "momentum", "weight_decay", "label_smoothing",
                                           "warmup_epochs", "warmup_steps", "warmup_start", "min_lr_ratio",
                                           "milestones", "gamma", "mixup_alpha", "mixup_prob", "layer_decay")] + \
             [f"trainer.{name}" for name in ("num_nodes", "accumulate_grad_batches", "gradient_clip_val",
                                             "check_val_every_n_epoch", "log_every_n_steps", "max_steps",
                                             "num_threads", "reference_batch", "checkpoint_every_n_steps",
                                             "devices")] + \
             [f"model.overrides.{name}" for name in ("embed_dim", "depth", "num_heads", "mlp_ratio", "patch_size",
                                                     "tubelet_size", "drop_path_rate", "num_classes")] + \
             [f"data.synthetic_params.{name}" for name in ("num_train", "num_val", "seed", "num_video_frames",
                                                           "size", "fps")] + \
             ["data.options.test_short_side", "data.options.segment_span", "data.synthetic_params"]
SPECIAL = ["fifo", "folder", "missing", "empty", "binary", "link loop", "dangling link"]


# --- the contract ------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def place() -> Iterator[Path]:
    """A fresh folder for one example, the working folder an empty ``cwd`` inside it, which must stay empty."""
    before = os.getcwd()
    with tempfile.TemporaryDirectory() as base:
        (Path(base) / "cwd").mkdir()
        os.chdir(Path(base) / "cwd")
        try:
            yield Path(base)
        finally:
            os.chdir(before)
        assert not any((Path(base) / "cwd").iterdir()), list((Path(base) / "cwd").iterdir())


def ends_well(module: str, argv: list[str]) -> tuple[int, str, str]:
    """Run the command; it ends in time with 0 or 1, or with 2 and one line on stderr (an exception escaping the
    command fails the test with its traceback)."""
    code, out, err = run_command(module, argv, seconds=SECONDS)
    assert code in (0, 1, 2), (code, err)
    if code == 2:
        assert err.count("\n") == 1 and err.endswith("\n"), err
    assert "Traceback" not in err and "\x1b" not in err, err
    return code, out, err


def special(path: Path, kind: str) -> Path:
    """Make ``path`` a special file of ``kind`` (its folder created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "folder":
        path.mkdir()
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "binary":
        path.write_bytes(bytes(range(256)) * 4)
    elif kind == "link loop":
        os.symlink(path.name, path)
    elif kind == "dangling link":
        os.symlink(path.parent / "nothing", path)
    return path


def with_long_number(document: Any) -> bytes:
    """``document`` as JSON, with a number of 5,001 digits as the value of a new first key."""
    return json.dumps(document).replace("{", '{"long": ' + LONG + ", ", 1).encode()


def document_bytes(document: Any) -> st.SearchStrategy[bytes]:
    """A document damaged (a value replaced by any JSON value, removed, nested deep), or cut, or given a long
    number, or random bytes."""
    return (damaged_documents(document).map(lambda d: json.dumps(d).encode())
            | st.just(with_long_number(document)) | st.binary(max_size=64)
            | st.integers(1, 400).map(lambda cut: json.dumps(document).encode()[:cut]))


def dry_run(base: Path, *options: str) -> list[str]:
    return ["run", TABLE, "--rows", ROW, "--seeds", "1", "--jobs", "1", "--dry-run", "--runs-dir",
            str(base / "runs"), *options]


# --- experiments run --dry-run -----------------------------------------------------------------------------------

RUN_FLAGS = ["--seeds", "--epochs", "--batch-size", "--num-workers", "--threads", "--num-nodes",
             "--accumulate-grad-batches", "--jobs", "--devices"]


def probe_run_flag(flag: str, value: str) -> None:
    with place() as base:
        argv = dry_run(base, f"{flag}={value}")
        if flag == "--seeds":  # dry_run's own --seeds 1 is replaced
            argv = [arg for i, arg in enumerate(argv) if arg != "--seeds" and argv[i - 1] != "--seeds"]
        ends_well("experiments", argv)
        assert not (base / "runs").exists()


def probe_run_setting(field: str, value: Any) -> None:
    text = value if isinstance(value, str) and value == LONG else json.dumps(value)
    with place() as base:
        ends_well("experiments", dry_run(base, "--set", f"{field}={text}"))
        assert not (base / "runs").exists()


def probe_run_files(pretrained: str, static: str, content: bytes) -> None:
    with place() as base:
        source = special(base / "weights" / "model.pt", pretrained) if pretrained != "bytes" else base / "w.pt"
        if pretrained == "bytes":
            source.write_bytes(content)
        static_path = base / "runs" / TABLE / "static.json"
        if static == "bytes":
            static_path.parent.mkdir(parents=True)
            static_path.write_bytes(content)
        else:
            special(static_path, static)
        ends_well("experiments", dry_run(base, "--pretrained", str(source)))
        assert sorted(p.name for p in (base / "runs" / TABLE).iterdir()) in ([], ["static.json"])


# --- the other numbers of experiments and data ---------------------------------------------------------------------


def probe_other_numbers(door: str, value: str) -> None:
    with place() as base:
        if door.startswith("evaluate"):
            argv = ["evaluate", "mformer_table6b", "--rows", "mformer", "--checkpoint",
                    "mformer:k400_motionformer_224_16x4", "--weights-dir", str(base / "w"), "--dry-run",
                    "--runs-dir", str(base / "runs"), f"{door.split()[1]}={value}"]
            ends_well("experiments", argv)
            assert not (base / "runs").exists()
        elif door == "status --seeds":
            ends_well("experiments", ["status", TABLE, "--runs-dir", str(base / "runs"), f"--seeds={value}"])
            assert not (base / "runs").exists()
        elif door == "check --workers":
            (base / "data").mkdir()
            ends_well("data", ["check", "kinetics400", "--root", str(base / "data"), "--quick",
                               f"--workers={value}"])
        else:  # data synth: a valid count of more than a few videos would generate them (minutes): 2 or 3 only
            option, fixed = door.split()[1], "--seed=0" if door.endswith("videos") else "--videos=2"
            if option == "--videos" and value.strip() not in ("2", "3") and value.strip().isdigit() \
                    and 3 < int(value) <= 150_000:
                value = "3"
            code, _, _ = ends_well("data", ["synth", "synth_motion", "--out", str(base / "set"), f"{option}={value}",
                                            fixed])
            assert code != 0 or (base / "set" / "synthetic.json").exists()
            assert code == 0 or not (base / "set").exists()


OTHER_DOORS = ["evaluate --batch-size", "evaluate --num-workers", "evaluate --threads", "evaluate --num-nodes",
               "status --seeds", "check --workers", "synth --videos", "synth --seed"]


def probe_data_root(root_kind: str, list_kind: str) -> None:
    with place() as base:
        root = base / "kinetics"
        if root_kind == "folder":
            root.mkdir()
            special(root / "train.csv", list_kind)
        else:
            special(root, root_kind)
        ends_well("data", ["check", "kinetics400", "--root", str(root), "--quick", "--manifest",
                           str(base / "manifest.json")])


# --- what the reports read ---------------------------------------------------------------------------------------

RECORD_AT = f"{TABLE}/{ROW}/seed0/tiny-k_400/metrics.json"
RELEASED_AT = "mformer_table6b/mformer/released/paper-k_400/metrics.json"
STATIC = json.loads((RESULTS_DIR / TABLE / "static.json").read_text())
RATES = json.loads((RESULTS_DIR.parent / "benchmarks" / "loader_cpu.json").read_text())


def probe_reports(where: str, kind: str, content: bytes) -> None:
    """A record (trained, released) or static record under a runs folder, read by `reports build`, `experiments
    show` and `reports compare`."""
    at = {"trained": RECORD_AT, "released": RELEASED_AT, "static": f"{TABLE}/static.json"}[where]
    table = at.split("/")[0]
    with place() as base:
        path = base / "runs" / at
        if kind == "bytes":
            path.parent.mkdir(parents=True)
            path.write_bytes(content)
        else:
            special(path, kind)
        ends_well("reports", ["build", table, "--out-dir", str(base / "out"), "--runs-dir", str(base / "runs")])
        assert {p.name for p in base.iterdir()} <= {"cwd", "runs", "out"}
        ends_well("experiments", ["show", table, "--runs-dir", str(base / "runs"), "--results-dir", ""])
        if where == "trained":
            records = base / "records" / TABLE / ROW / "seed0" / "tiny-k_400.json"
            records.parent.mkdir(parents=True)
            if kind == "bytes":
                records.write_bytes(content)
            ends_well("reports", ["compare", TABLE, "--records", str(base / "records")])


def probe_rates_file(kind: str, content: bytes) -> None:
    with place() as base:
        path = base / "rates.json"
        if kind == "bytes":
            path.write_bytes(content)
        else:
            special(path, kind)
        ends_well("reports", ["loader-workers", str(path)])


def probe_yaml(which: str, document: Any) -> None:
    """A paper's ``claims.yaml`` read by `reports claims --check`, or its catalogue by `experiments weights`."""
    with place() as base, pytest.MonkeyPatch.context() as patch:
        path = base / "mformer" / ("claims.yaml" if which == "claims" else "released_weights.yaml")
        path.parent.mkdir()
        text = yaml.safe_dump(document) if document != "long" else f"paper: mformer\nclaims: [{LONG}]\n"
        path.write_text(text)
        if which == "claims":
            patch.setattr(claims_module, "claims_path", lambda paper: base / paper / "claims.yaml")
            ends_well("reports", ["claims", "--check"])
            return
        patch.setattr(released_weights, "catalogue_path", lambda paper: base / paper / "released_weights.yaml")
        released_weights.paper_catalogue.cache_clear()
        released_weights.catalogue_papers.cache_clear()
        try:
            ends_well("experiments", ["weights", "--paper", "mformer"])
        finally:
            released_weights.paper_catalogue.cache_clear()
            released_weights.catalogue_papers.cache_clear()


CATALOGUE = yaml.safe_load(released_weights.catalogue_path("mformer").read_text())

# --- the tools' numbers, parsed only ---------------------------------------------------------------------------------

TOOL_DOORS = [door for door in numeric_doors() if door.module == "tools"]


def probe_tool_number(door_index: int, value: str) -> None:
    """The tool's parser takes the value or refuses it in one line; a value it takes is not run."""
    door = TOOL_DOORS[door_index]
    err = io.StringIO()
    with contextlib.redirect_stderr(err), deadline(SECONDS, str(door)):
        try:
            parser = tool_parser(door.prefix[0])
            parser.parse_args([*door.prefix[1:], *required_options(parser), f"{door.option}={value}"])
        except SystemExit as stop:
            assert stop.code == 2, (stop.code, err.getvalue())
            assert err.getvalue().count("\n") == 1 and f"argument {door.option}" in err.getvalue(), err.getvalue()


# --- the tests ----------------------------------------------------------------------------------------------------

PROBES = {
    "run_flag": (probe_run_flag, (st.sampled_from(RUN_FLAGS), NUMBER_TEXTS)),
    "run_setting": (probe_run_setting, (st.sampled_from(SET_FIELDS), JSON_VALUES | st.just(LONG))),
    "run_files": (probe_run_files, (st.sampled_from([*SPECIAL, "bytes"]), st.sampled_from([*SPECIAL, "bytes"]),
                                    document_bytes(STATIC))),
    "other_numbers": (probe_other_numbers, (st.sampled_from(OTHER_DOORS), NUMBER_TEXTS)),
    "data_root": (probe_data_root, (st.sampled_from(["folder", *SPECIAL]), st.sampled_from(SPECIAL))),
    "reports": (probe_reports, (st.sampled_from(["trained", "released", "static"]),
                                st.sampled_from([*SPECIAL, "bytes", "bytes", "bytes"]),
                                st.one_of(document_bytes(GOOD), document_bytes(K400)))),
    "rates_file": (probe_rates_file, (st.sampled_from([*SPECIAL, "bytes", "bytes"]), document_bytes(RATES))),
    "yaml": (probe_yaml, (st.sampled_from(["claims", "catalogue"]),
                          st.one_of(damaged_documents(CLAIMS), damaged_documents(CATALOGUE), st.just("long")))),
    "tool_number": (probe_tool_number, (st.integers(0, len(TOOL_DOORS) - 1), NUMBER_TEXTS)),
}


@pytest.mark.parametrize("door", sorted(PROBES))
def test_each_door_ends_in_exit_0_or_one_line(door):
    probe, strategies = PROBES[door]
    FEW(given(*strategies)(probe))()


@pytest.mark.slow
@pytest.mark.parametrize("door", sorted(PROBES))
def test_each_door_ends_in_exit_0_or_one_line_many_examples(door):
    probe, strategies = PROBES[door]
    MANY(given(*strategies)(probe))()


def test_the_tools_doors_are_every_tools_numbers():
    assert {door.prefix[0] for door in TOOL_DOORS} >= {"smoke", "bench", "loader-rate", "decoding", "d3da-step",
                                                       "trajectory-attention", "memory-breakdown"}


def test_a_weakened_bound_is_found_by_the_run_probe(monkeypatch):
    """The probe finds what the bounds prevent: with the model's argument bound lifted, a depth of a billion keeps
    the meta build busy past the deadline."""
    from experiments.harness import sizes

    monkeypatch.setattr(sizes, "model_argument_bound", lambda name: 10**12)
    monkeypatch.setattr("tests.faults.test_probe_commands.SECONDS", 5)
    with pytest.raises(TimeoutError):
        probe_run_setting("model.overrides.depth", 10**9)


def test_a_weakened_schema_is_found_by_the_reports_probe(monkeypatch):
    monkeypatch.setattr("experiments.harness.records.check_record_sections", lambda record: None)
    record = copy.deepcopy(GOOD)
    record["provenance"]["cpu_kernels"] = {"capability": None}
    with pytest.raises(TypeError):
        probe_reports("trained", "bytes", json.dumps(record).encode())
