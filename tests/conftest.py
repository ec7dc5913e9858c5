"""Test-wide setup: nothing may reach a model hub, and torchvision is repaired before anything imports it."""

import os

os.environ["HF_HUB_OFFLINE"] = "1"  # a test that tries to download weights fails fast instead of hanging
os.environ.setdefault("TQDM_DISABLE", "1")
# Triton kernels (models/attention/trajectory_triton.py) run on CPU tensors through Triton's interpreter, which must
# be chosen before anything imports triton (timm does, through torch._dynamo).
os.environ.setdefault("TRITON_INTERPRET", "1")

import data.torchvision_compat  # noqa: E402,F401
