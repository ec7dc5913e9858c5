"""VideoClassifier's evaluation and loss path against plain-loop references written out here: several videos of
several views each (the views of one video averaged, never mixed with another's), top-1/top-5 as counts over videos,
EPIC verb/noun/action accuracies with actions ranked by p(verb) x p(noun), the test loss, the mixup targets and loss
of verb-noun labels, each video counted once by a Trainer's test and by a two-process test, and the logged names.
Also DAVIS J and F where the official ``davis2017-evaluation`` differs from the obvious (void pixels, the objects of
the first frame, the boundary's corner)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import lightning as L
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

import lightning_modules  # noqa: F401  (repairs torchvision before anything imports it)
from lightning_modules import VideoClassifier
from lightning_modules.davis_metrics import f_measure, seg2bmap, sequence_scores
from tests.lightning_modules.test_video_classifier import VN, Passthrough  # a clip that holds its own logits

# --- plain references ----------------------------------------------------------------------------------------------


def _softmax(z: list[float]) -> list[float]:
    top = max(z)
    e = [math.exp(v - top) for v in z]
    return [v / sum(e) for v in e]


def _video_probs(views: list[list[float]], average: str) -> list[float]:
    """One video's scores: the mean of its views' softmaxes, or the softmax of its views' mean logits."""
    k = len(views[0])
    if average == "probabilities":
        per_view = [_softmax(v) for v in views]
        return [sum(p[c] for p in per_view) / len(views) for c in range(k)]
    return _softmax([sum(v[c] for v in views) / len(views) for c in range(k)])


def _rank(scores: list[float], target: int) -> int:
    """How many classes score above the target (0: the target is the argmax)."""
    return sum(s > scores[target] for s in scores)


def _with_rank(scores: list[float], rank: int) -> int:
    """The class that ``rank`` classes score above."""
    return sorted(range(len(scores)), key=lambda c: -scores[c])[rank]


def _logits(seed: int, *shape: int) -> torch.Tensor:
    return 2.0 * torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def _single_label_case(videos: int = 5, views: int = 3, k: int = 7, average: str = "probabilities"):
    """Per-video logits (videos, views, k) and labels whose reference ranks are 0, 0, 1, 4, 5, ...: top-1 2/5,
    top-5 4/5 (rank 4 is the fifth class, rank 5 the sixth)."""
    logits = _logits(0, videos, views, k)
    ranks = [0, 0, 1, 4, 5, 2, 0][:videos]
    labels = [_with_rank(_video_probs(logits[i].tolist(), average), r) for i, r in enumerate(ranks)]
    return logits, torch.tensor(labels)


def _single_label_reference(logits: torch.Tensor, labels: torch.Tensor, average: str) -> dict[str, float]:
    hits1 = hits5 = 0
    nll = 0.0
    for views, y in zip(logits.tolist(), labels.tolist()):
        p = _video_probs(views, average)
        hits1 += _rank(p, y) < 1
        hits5 += _rank(p, y) < 5
        nll -= math.log(p[y])
    n = len(labels)
    return {"test/top1": hits1 / n, "test/top5": hits5 / n, "test/loss": nll / n}


# (verb rank, noun rank) of each video's label under the reference: right/right, right/wrong, ...
EPIC_RANKS = [(0, 0), (0, 1), (1, 0), (1, 1), (0, 4), (4, 0), (2, 2), (0, 5), (5, 0), (3, 3), (0, 0), (1, 2)]


def _epic_case(verbs: int, nouns: int, videos: int, views: int = 2, average: str = "probabilities"):
    logits = _logits(1, videos, views, verbs + nouns)
    labels = []
    for i in range(videos):
        rv, rn = EPIC_RANKS[i % len(EPIC_RANKS)]
        pv = _video_probs([v[:verbs] for v in logits[i].tolist()], average)
        pn = _video_probs([v[verbs:] for v in logits[i].tolist()], average)
        labels.append([_with_rank(pv, min(rv, verbs - 1)), _with_rank(pn, min(rn, nouns - 1))])
    return logits, torch.tensor(labels)


def _epic_reference(logits: torch.Tensor, labels: torch.Tensor, verbs: int, nouns: int,
                    average: str = "probabilities") -> dict[str, float]:
    """Verb, noun and action (every pair scored p(verb) * p(noun), the EPIC-KITCHENS action score) accuracies; the
    loss is the verb's NLL plus the noun's."""
    hits = {f"{h}_top{k}": 0 for h in ("verb", "noun", "action") for k in (1, 5)}
    nll = 0.0
    for views, (v, n) in zip(logits.tolist(), labels.tolist()):
        pv = _video_probs([z[:verbs] for z in views], average)
        pn = _video_probs([z[verbs:] for z in views], average)
        pairs = [pv[i] * pn[j] for i in range(verbs) for j in range(nouns)]  # pair (i, j) at i * nouns + j
        for head, scores, target in (("verb", pv, v), ("noun", pn, n), ("action", pairs, v * nouns + n)):
            for k in (1, 5):
                hits[f"{head}_top{k}"] += _rank(scores, target) < k
        nll -= math.log(pv[v]) + math.log(pn[n])
    out = {f"test/{name}": count / len(labels) for name, count in hits.items()}
    out["test/loss"] = nll / len(labels)
    return out


def _as_clips(logits: torch.Tensor) -> torch.Tensor:
    """(videos, views, k) logits -> (videos, views, C=k, T=1, H=1, W=1) test items."""
    return logits[..., None, None, None].clone()


def _capture_logs(module: VideoClassifier, monkeypatch) -> dict[str, object]:
    logged: dict[str, object] = {}
    monkeypatch.setattr(module, "log", lambda name, value, **_: logged.__setitem__(name, value))
    monkeypatch.setattr(module, "log_dict", lambda values, **_: logged.update(values))
    return logged


def _computed(metrics) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.compute().items()}


# --- single process, no Trainer --------------------------------------------------------------------------------------


@pytest.mark.parametrize("average", ["probabilities", "logits"])
def test_each_videos_views_are_averaged_together_top1_top5_and_loss_match_a_plain_loop(average, monkeypatch):
    """Five videos of three views in one batch: each video's views (and only those) are averaged; top-1 and top-5
    are counts over videos (the fifth-ranked class is a top-5 hit, the sixth is not); the test loss is the NLL of the
    averaged scores, without label smoothing."""
    logits, labels = _single_label_case(average=average)
    module = VideoClassifier(Passthrough(7), 7, view_average=average, label_smoothing=0.3)
    logged = _capture_logs(module, monkeypatch)
    module.test_step({"video": _as_clips(logits), "label": labels}, 0)
    expected = _single_label_reference(logits, labels, average)
    assert expected["test/top1"] == 2 / 5 and expected["test/top5"] == 4 / 5
    assert _computed(module.test_metrics) == pytest.approx({k: v for k, v in expected.items() if "top" in k})
    assert logged["test/loss"].item() == pytest.approx(expected["test/loss"], rel=1e-5)
    assert module.test_videos == 5


def test_validation_accuracy_is_a_share_of_videos_and_its_loss_the_unsmoothed_nll(monkeypatch):
    """Three clips of class 0, all right, and one of class 1, wrong: top-1 is 3/4 (a per-class mean would be 1/2);
    the loss is the plain NLL, whatever the training's label smoothing (0.2 here)."""
    module = VideoClassifier(Passthrough(3), 3, label_smoothing=0.2)
    logged = _capture_logs(module, monkeypatch)
    logits = [[2.0, 0.0, 0.0], [2.0, 0.0, 0.0], [1.0, 0.5, 0.0], [2.0, 1.0, 0.0]]
    label = [0, 0, 0, 1]
    module.validation_step({"video": torch.tensor(logits), "label": torch.tensor(label)}, 0)
    assert _computed(module.val_metrics) == {"val/top1": 0.75}
    nll = -sum(math.log(_softmax(z)[y]) for z, y in zip(logits, label)) / 4
    assert logged["val/loss"].item() == pytest.approx(nll, rel=1e-6)


def test_epic_verb_noun_action_accuracies_and_loss_match_a_plain_loop(monkeypatch):
    """6 verbs, 7 nouns, twelve videos of two views: verb and noun top-1/top-5 of the views' averaged softmaxes;
    actions ranked over all 42 pairs by p(verb) * p(noun), so action top-1 is "both right"; loss = verb NLL + noun
    NLL."""
    verbs, nouns = 6, 7
    logits, labels = _epic_case(verbs, nouns, videos=12)
    module = VideoClassifier(Passthrough(verbs + nouns), {"verb": verbs, "noun": nouns})
    logged = _capture_logs(module, monkeypatch)
    module.test_step({"video": _as_clips(logits), "label": labels}, 0)
    expected = _epic_reference(logits, labels, verbs, nouns)
    assert expected["test/action_top1"] == 2 / 12  # the two (0, 0) videos
    got = _computed(module.test_metrics)
    assert set(got) == {k for k in expected if k != "test/loss"}
    assert got == pytest.approx({k: v for k, v in expected.items() if k != "test/loss"})
    assert logged["test/loss"].item() == pytest.approx(expected["test/loss"], rel=1e-5)


def test_epic_action_top5_ranks_pairs_by_the_product_of_the_heads():
    """Verb (0.75, 0.15, 0.1), noun (0.5, 0.3, 0.15, 0.05): the pairs by p(verb) * p(noun) are (0, 0) .375, (0, 1)
    .225, (0, 2) .1125, (1, 0) .075, (2, 0) .05, (1, 1) .045, (0, 3) .0375, ... So (2, 0), fifth, is a top-5 action
    and (1, 1), sixth, is not (by p(verb) + p(noun), (2, 0) would be sixth and (0, 3) fourth)."""
    row = torch.tensor([0.75, 0.15, 0.1] + [0.5, 0.3, 0.15, 0.05]).log()  # softmax(log p) = p
    module = VideoClassifier(Passthrough(7), VN)
    label = torch.tensor([[2, 0], [1, 0], [1, 1], [0, 0]])
    module.validation_step({"video": row.repeat(4, 1), "label": label}, 0)
    got = _computed(module.val_metrics)
    assert got["val/action_top5"] == pytest.approx(3 / 4) and got["val/action_top1"] == pytest.approx(1 / 4)


# --- mixup ---------------------------------------------------------------------------------------------------------


class _Recorder(Passthrough):
    """Logits off the clip's first row; remembers the (mixed) clips it was given."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen = x.detach().clone()
        return super().forward(x)


def test_mixup_loss_is_soft_cross_entropy_against_mixed_smoothed_verb_and_noun_targets():
    """Mixup of verb-noun labels (odd batch: the last clip is dropped): clip b is lam * clip b + (1 - lam) * clip
    3 - b, its verb target lam * smooth(verb_b) + (1 - lam) * smooth(verb_{3-b}) with smooth(y) = (1 - s) one-hot(y)
    + s / V, the noun's alike; the loss is the sum of the heads' soft cross-entropies, averaged over clips."""
    verbs, nouns, s = VN["verb"], VN["noun"], 0.1
    model = _Recorder(verbs + nouns)
    module = VideoClassifier(model, VN, mixup_alpha=0.8, label_smoothing=s)
    label = [[0, 1], [1, 2], [2, 3], [1, 0], [2, 2]]
    z = _logits(2, 5, verbs + nouns)
    clips = torch.zeros(5, 1, 1, 2, verbs + nouns)  # row 0: the logits; row 1: a marker, the clip's number
    clips[:, 0, 0, 0] = z
    clips[:, 0, 0, 1, 0] = torch.arange(5.0)
    np.random.seed(3)  # timm draws lambda from numpy's global generator
    loss = module.training_step({"video": clips, "label": torch.tensor(label)}, 0)
    assert model.seen.shape[0] == 4
    lam = 1 - model.seen[0, 0, 0, 1, 0].item() / 3  # clip 0's marker: lam * 0 + (1 - lam) * 3
    assert 0.6 < lam < 0.9
    expected = 0.0
    for b in range(4):
        partner = 3 - b
        mixed = [lam * z[b, c].item() + (1 - lam) * z[partner, c].item() for c in range(verbs + nouns)]
        for head, (lo, k) in enumerate(((0, verbs), (verbs, nouns))):
            log_p = [math.log(p) for p in _softmax(mixed[lo:lo + k])]
            target = [lam * ((1 - s) * (c == label[b][head]) + s / k)
                      + (1 - lam) * ((1 - s) * (c == label[partner][head]) + s / k) for c in range(k)]
            expected -= sum(t * lp for t, lp in zip(target, log_p)) / 4
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_training_loss_is_label_smoothed_cross_entropy():
    """No mixup: (1 - s) * NLL(label) + s * mean over classes of -log p, averaged over clips."""
    s = 0.2
    z = torch.tensor([[2.0, 0.0, -1.0, 0.5], [0.0, 1.0, 0.0, 3.0]])
    label = [0, 1]
    module = VideoClassifier(Passthrough(4), 4, label_smoothing=s)
    loss = module.training_step({"video": z, "label": torch.tensor(label)}, 0)
    expected = 0.0
    for row, y in zip(z.tolist(), label):
        log_p = [math.log(p) for p in _softmax(row)]
        expected += ((1 - s) * -log_p[y] + s * sum(-lp for lp in log_p) / 4) / 2
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    assert _computed(module.train_metrics) == {"train/top1": 0.5}


# --- through a Trainer, and two processes ---------------------------------------------------------------------------


def _items(logits: torch.Tensor, labels: torch.Tensor, indices: list[int] | None = None) -> list[dict]:
    indices = list(range(len(labels))) if indices is None else indices
    return [{"video": _as_clips(logits)[i], "label": labels[i], "index": torch.tensor(i)} for i in indices]


def _five_videos(classes: int | dict[str, int]) -> tuple[torch.Tensor, torch.Tensor, dict[str, float]]:
    """Five test videos of 7 classes or of 3 verbs x 4 nouns (no verb or noun top-5 then), and what a test of them
    must log."""
    if classes == 7:
        logits, labels = _single_label_case()
        return logits, labels, _single_label_reference(logits, labels, "probabilities")
    logits, labels = _epic_case(3, 4, videos=5)
    expected = _epic_reference(logits, labels, 3, 4)
    return logits, labels, {k: v for k, v in expected.items() if k not in ("test/verb_top5", "test/noun_top5")}


@pytest.mark.parametrize("classes", [7, VN], ids=["single", "verb_noun"])
def test_a_trainer_test_logs_these_names_with_plain_loop_values_and_counts_each_video_once(classes):
    """Five videos in batches of 2, 2, 1: the epoch's values are over all five videos (the loss weighted by batch
    size), the names are exactly these, and a second test starts its count afresh."""
    logits, labels, expected = _five_videos(classes)
    module = VideoClassifier(Passthrough(7), classes)
    trainer = L.Trainer(accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False)
    loader = DataLoader(_items(logits, labels), batch_size=2)
    for _ in range(2):
        (got,) = trainer.test(module, loader, verbose=False)
        assert set(got) == set(expected)
        assert got == pytest.approx(expected, rel=1e-5)
        assert module.test_videos == 5


@pytest.mark.parametrize("classes", [7, VN], ids=["single", "verb_noun"])
def test_a_two_process_test_counts_the_samplers_padding_once(classes, monkeypatch):
    """Five videos on two ranks, as a DistributedSampler deals them: rank 0 gets 0, 2, 4 and rank 1 gets 1, 3 and
    video 0 again (padding). Both ranks log the values of the five videos, each once."""
    logits, labels, expected = _five_videos(classes)
    parts_of = {}  # rank -> what it handed to all_gather_object; rank 1 runs first, so rank 0 gathers both
    rank = 1

    def all_gather_object(parts, obj):
        parts_of[rank] = obj
        parts[:] = [parts_of.get(r) for r in range(len(parts))]

    monkeypatch.setattr(torch.distributed, "all_gather_object", all_gather_object)
    for rank, indices in ((1, [1, 3, 0]), (0, [0, 2, 4])):  # noqa: B007  (all_gather_object reads rank)
        module = VideoClassifier(Passthrough(7), classes)
        module._trainer = SimpleNamespace(world_size=2)
        logged = _capture_logs(module, monkeypatch)
        module.on_test_epoch_start()
        items = _items(logits, labels, indices)
        for start in range(0, len(items), 2):
            batch = {key: torch.stack([item[key] for item in items[start:start + 2]]) for key in items[0]}
            module.test_step(batch, start // 2)
        module.on_test_epoch_end()
    assert module.test_videos == 5
    assert set(logged) == set(expected)
    assert logged == pytest.approx(expected, rel=1e-5)


# --- DAVIS J and F (davis2017-evaluation) --------------------------------------------------------------------------


def _strip(rows: int, size: int = 100) -> np.ndarray:
    mask = np.zeros((size, size), dtype=bool)
    mask[:rows] = True
    return mask


def test_davis_f_ignores_void_pixels_in_both_boundaries():
    """``f_measure`` masks both segmentations with the void region before taking boundaries. A 10x10 blob that lies
    wholly in void leaves pred = gt (F = 1); counted, its 40 boundary pixels match nothing: precision 100 / 140 (the
    strip's boundary is its last row, 100 pixels), recall 1, F = 5/6."""
    gt = _strip(50)
    pred = gt.copy()
    pred[80:90, 10:20] = True
    void = np.zeros_like(gt)
    void[75:95, 5:25] = True
    assert f_measure(gt, pred, void) == 1.0
    assert f_measure(gt, pred) == pytest.approx(5 / 6)


def test_davis_boundary_leaves_out_the_bottom_right_corner():
    """``_seg2bmap`` of a 2x2 block in the bottom-right corner of a 5x5 mask, worked out by hand from its XORs and its
    last-row / last-column rules: (2, 2..4), (3, 2), (4, 2); the corner pixel (4, 4) is always cleared."""
    seg = np.zeros((5, 5), dtype=bool)
    seg[3:, 3:] = True
    expected = np.zeros((5, 5), dtype=bool)
    expected[2, 2:] = True
    expected[3, 2] = expected[4, 2] = True
    assert (seg2bmap(seg) == expected).all()


def test_davis_objects_are_those_of_the_first_frame_and_f_is_not_j():
    """An object that appears after the first annotated frame is not scored (davis2017 ``num_objects`` =
    max id of frame 0). Object 1 predicted 2 rows too tall on the scored frames 1..3: J = 50/52 per frame, while F
    = 1 (the shifted boundary lies within the 2-pixel tolerance of a 100x100 frame)."""
    gt = np.zeros((5, 100, 100), dtype=np.uint8)
    gt[:, :50] = 1
    gt[1:, 80:90, 10:20] = 2  # a second object from frame 1 on
    pred = np.zeros_like(gt)
    pred[:, :52] = 1
    scores = sequence_scores(gt, pred)
    assert scores["J"].shape == (1,) and scores["J_frames"].shape == (1, 3)
    assert scores["J"][0] == pytest.approx(50 / 52) and scores["F"][0] == 1.0
