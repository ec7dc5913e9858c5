"""One reader for the files a user may edit or replace (``data.root_files.read_regular_bytes``): the YAML files under
``experiments/`` (a paper's claims, its released-weights catalogue, its ``paper.yaml``) and every record are refused
in one line naming the file when they are a FIFO (reading one waited for a writer forever: ``reports claims``,
``experiments weights`` and ``experiments list`` hung, issue 77) or larger than a file of their kind may be."""

import importlib
import os
import signal

import pytest

from data.root_files import read_regular_bytes
from experiments.harness import claims, released_weights
from experiments.harness.records import DamagedRecordError, read_json

# the module: the package exports a function of the same name
paper_tables = importlib.import_module("experiments.paper_tables")


@pytest.fixture
def fifo(tmp_path):
    path = tmp_path / "file.yaml"
    os.mkfifo(path)
    return path


@pytest.fixture(autouse=True)
def no_hang():
    """A reader that waits on the FIFO fails the test after 10 s instead of hanging the suite."""
    def hung(signum, frame):
        raise AssertionError("the reader waited on a FIFO")

    before = signal.signal(signal.SIGALRM, hung)
    signal.alarm(10)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, before)


def test_a_fifo_is_refused_before_it_is_read(fifo):
    with pytest.raises(ValueError, match=f"^{fifo}: not a regular file \\(a FIFO\\)$"):
        read_regular_bytes(fifo)


def test_a_file_larger_than_its_kind_may_be_is_refused(tmp_path):
    big = tmp_path / "big.json"
    big.write_bytes(b" " * 1001)
    with pytest.raises(ValueError, match="1,001 bytes, more than the 1,000"):
        read_regular_bytes(big, max_bytes=1000)
    assert read_regular_bytes(big, max_bytes=1001) == b" " * 1001


def test_a_claims_file_that_is_a_fifo_is_one_error(fifo, monkeypatch):
    monkeypatch.setattr(claims, "claims_path", lambda paper: fifo)
    with pytest.raises(claims.ClaimsFileError, match="not a regular file \\(a FIFO\\)"):
        claims.paper_claims("mformer")


def test_a_catalogue_that_is_a_fifo_is_one_error(fifo, monkeypatch):
    monkeypatch.setattr(released_weights, "catalogue_path", lambda paper: fifo)
    released_weights.paper_catalogue.cache_clear()
    try:
        with pytest.raises(released_weights.CatalogueError, match="not a regular file \\(a FIFO\\)"):
            released_weights.paper_catalogue("mformer")
    finally:
        released_weights.paper_catalogue.cache_clear()


def test_a_paper_file_that_is_a_fifo_is_one_error(fifo, monkeypatch):
    monkeypatch.setattr(paper_tables, "paper_file", lambda code: fifo)
    with pytest.raises(ValueError, match="not a regular file \\(a FIFO\\)"):
        paper_tables._read_paper_file("mformer")


def test_a_record_that_is_a_fifo_is_a_damaged_record(fifo):
    with pytest.raises(DamagedRecordError, match=f"^{fifo}: not a regular file \\(a FIFO\\); delete it"):
        read_json(fifo, "delete it")
