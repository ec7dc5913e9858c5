"""The linear probes of CAST's frozen tiny experts (experiments.cast.probe): the probe reads what is linearly there
and nothing else, and the per-time-step feature is the pooled one before the mean over time."""

from __future__ import annotations

import argparse

import pytest
import torch
from einops import rearrange

from experiments.cast.probe import PROBEABLE, add_command, clip_features, probe_top1
from experiments.cast.shipped import SHIPPED
from models.cast import build_expert


def test_the_probe_reads_a_linearly_coded_label_and_not_a_label_the_features_do_not_hold():
    generator = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 4, (400,), generator=generator)
    coded = torch.nn.functional.one_hot(labels, 4).double() + 0.1 * torch.randn(400, 4, generator=generator,
                                                                                   dtype=torch.float64)
    assert probe_top1(coded[:300], labels[:300], coded[300:], labels[300:]) == 100.0
    noise = torch.randn(400, 4, generator=generator, dtype=torch.float64)
    assert probe_top1(noise[:300], labels[:300], noise[300:], labels[300:]) < 45.0  # chance 25%, 100 clips


def test_the_per_step_feature_averages_to_the_pooled_feature():
    torch.manual_seed(0)
    expert = build_expert("videomae", "tiny").double()
    batch = {"video": torch.randn(3, 3, 8, 32, 32, dtype=torch.float64), "label": torch.tensor([[0, 1]] * 3)}
    pooled, steps, labels = clip_features(expert, [batch, batch])
    assert pooled.shape == (6, expert.embed_dim) and steps.shape == (6, expert.num_steps * expert.embed_dim)
    assert labels.tolist() == [[0, 1]] * 6
    mean_over_time = rearrange(steps, "b (t d) -> b t d", t=expert.num_steps).mean(dim=1)
    assert torch.allclose(expert.norm(mean_over_time), pooled, rtol=0, atol=1e-12)


def test_every_shipped_temporal_expert_can_be_probed_and_an_unknown_name_is_refused():

    assert set(PROBEABLE) == {"clip", "videomae_init", *SHIPPED}
    sub = argparse.ArgumentParser().add_subparsers()
    add_command(sub)
    args = sub.choices["probe-experts"].parse_args(["videomae_k400", "videomae_k401"])
    with pytest.raises(SystemExit, match=r"unknown expert\(s\) \['videomae_k401'\]; choose from .*mvd_ek100"):
        args.fn(args)
