"""CAST: Cross-Attention in Space and Time (Lee, Lee, Choi, NeurIPS 2023) -- models, checkpoints, complexity.

Interface for the spec writer
=============================

Entrypoints (``models.create_model``): ``cast_base`` (paper scale: 16 x 224 x 224 clips, ViT-B/16 experts, 12
blocks) and ``cast_tiny`` (CPU: 8 x 32 x 32 clips, 8 x 8 patches, 96-d experts of 4 blocks and 6 heads). Both build
``CAST`` (``models.cast.model``) and accept every constructor option as an override. Input: video
(B, C, F, H, W) with F = ``num_frames``, H = W = ``img_size``; output: logits (B, num_classes). Both build on
``meta``. ``num_classes`` is an int; for verb-noun labels pass ``num_classes={"verb": V, "noun": N}`` (as the
runner does, checking a configured ``num_verbs`` against the data's V) or ``num_verbs=V`` with an int V + N: logits
are then [V verbs | N nouns], the layout ``lightning_modules.video_classifier`` splits, the verb logits from the
temporal expert, the noun logits from the spatial one (``fusion="split"``, the default with verbs).

Rows as options (defaults = CAST: ``exchange="bcast"`` (the default None means "bcast" for two experts, "none"
for one), ``directions="both"``, every block, ``down_ratio=0.5``,
``t2s_window="time"``, ``s2t_window="space"``, ``exchange_pos=True``, CLIP spatial / VideoMAE temporal):

- 1a  indep. experts w/o adapter: ``exchange="none", adapters=False, train_experts=True`` (with
      ``train_experts`` a ``drop_path_rate`` also drops the VideoMAE expert's MHSA and FFN branches, as VideoMAE's
      fine-tuning; the official CLIP fine-tuning has no stochastic depth)
      indep. experts w/ adapter:  ``exchange="none", time_adapter=True``
      ensemble of experts w/ adapter: ``exchange="none", time_adapter=True, fusion="ensemble"`` (see below)
- 1b  Add: ``exchange="none", fusion="add"``; Concat: ``exchange="none", fusion="concat"``;
      Lateral: ``exchange="lateral"``
- 1c  Identity: ``exchange="none", time_adapter=True`` (= 1a row 2); w/o adapter: ``exchange="xattn"``;
      X-attn. -> adapter: ``exchange="xattn_adapter"``; B-CAST: default
- 1d  ``down_ratio`` 0.125 / 0.25 / 0.5 / 1.0
- 1e  (``t2s_window``, ``s2t_window``): ("space_time", "space_time"), ("space_time", "space"), ("space", "space"),
      ("time", "space")
- 1f  ``exchange_blocks``: 0-based block indices, e.g. paper "10-12" = (9, 10, 11); tiny has 4 blocks
- 1g  ``directions="s2t"`` / ``"t2s"``; indep. row as 1a
- 1h  ``spatial_expert`` / ``temporal_expert`` in ("clip", "videomae"): ("clip", "clip"), ("videomae", "clip"),
      ("videomae", "videomae"), ("clip", "videomae")
- 5/6 ``spatial_expert="vit_in21k"`` (a timm ViT-B/16 per frame); the pretraining data is the checkpoint's
- 7   ``temporal_expert="mvd"`` (VideoMAE structure); EVA raises ``ValueError`` naming why it cannot be built
      (``experts.UNBUILDABLE_EXPERTS``): its cell should say so
- 8   ``exchange_pos=False``
- 2/9/10/11 single-label CAST: ``fusion="add"`` (the default without verbs); the experts alone (Table 2's CLIP*,
      VideoMAE*): ``experts="spatial"`` or ``"temporal"`` (then ``exchange="none"``, ``fusion="single"`` implied)

The ensemble: ``fusion="ensemble"`` gives each expert a full classifier and outputs the log of the averaged class
probabilities (per verb / noun head). The paper ensembles two separately trained experts at test time; trained as
one model, the two experts are coupled through the averaged prediction's loss. For the paper's protocol train
``experts="spatial"`` and ``experts="temporal"`` runs (``fusion="single"``): their state dicts (``spatial.*``,
``head_spatial.*`` and ``temporal.*``, ``head_temporal.*``) together are exactly the ensemble model's state dict.

Freezing: ``train_experts=False`` (default) freezes the experts except adapters, their last LayerNorms (CLIP's
``ln_post``, loaded from CLIP; VideoMAE's ``fc_norm``, which starts at the identity as in the official code, whose
loader never fills it; both named ``norm``) and AIM's time embedding; the exchange modules and heads
train. ``set_trainable(model, train_experts)`` re-applies it and returns the trainable names;
``trainable_parameters(model)`` / ``count_learnable(model)`` report them (``requires_grad`` is set at
construction, so an optimizer over ``p.requires_grad`` parameters -- timm's factory -- trains the right ones).

Training cost: frozen weights save no inputs for their own gradients, and a training forward skips the last
block's work on a frame expert's patch tokens, which no head reads (``skip_unread=True``, the default; logits and
gradients unchanged, tested). Evaluation and FLOP counting run the whole network.

Experts alone (for the tiny expert pretraining): ``build_expert(arch, size="tiny"|"base", **overrides)`` gives a
``FrameExpert`` ("clip", "vit_in21k") or ``TubeletExpert`` ("videomae", "mvd") without adapters, with ``embed``,
``blocks`` (each ``block(x, num_steps)``), ``forward_features`` and ``pool``; its ``state_dict()`` saved to a
file loads into ``CAST.spatial`` / ``CAST.temporal`` (the model's adapters stay at their zero init). Note the
tubelet expert's blocks accept any token subset (joint attention), so a masked autoencoder can run them on the
visible tokens after ``embed`` (which adds the fixed sinusoidal table).

Pretrained experts: ``ModelConfig.pretrained = {"spatial": SRC, "temporal": SRC}``; ``build_model`` calls
``load_pretrained(model.get_submodule(part), SRC)``, which hands an expert's source to
``models.cast.checkpoints.load_expert``: ``clip:FILE`` (OpenAI layout, TorchScript or state dict),
``videomae:FILE`` (official fine-tuned or pretraining layout), ``vit:FILE`` / ``vit:timm:NAME`` (timm ViT), or a
plain FILE in the expert's own layout (e.g. ``run:`` of the tiny pretraining, once resolved to a path).

Complexity (``models.cast.complexity``; ``python -m models.cast.complexity`` prints all): ``learnable_millions``,
``TABLE1C`` (options + paper values), ``released_s2t_table_excess`` (why the two full-width rows are 10.9 M below
the paper), ``gflops_per_view`` (390.5, paper 391), ``tflops_views`` (2.343, paper 2.35), ``measure_training``
(tiny CPU peak memory / saved activations / step time, frozen vs all trainable, and the trained fraction).
``experiments/static.py``'s ``gflops`` works unchanged (the cross-attentions honour ``fused_attn``), but its
``paper_params`` counts all parameters: use ``count_learnable`` for the paper's "learnable" columns.

Readings of the paper (the official code, KHU-VLL/CAST ``models/bidir_modeling_crossattn.py``, where the text is
silent): the FFN adapter is scaled by 0.5 (AIM); the adapters are 768 -> 192 -> 768 with biases; the
cross-attentions use the experts' 12 heads at the bottleneck width; q and kv projections have biases; the spatial
class tokens take no part in the cross-attention but pass B-CAST's down-LN-GELU-up path; the up-projections (and
the adapters' second layers) start at zero, so CAST starts as the two pretrained experts, and every other
trainable linear layer (adapters' first layers, down-projections, cross-attention q / kv / output, heads) starts
at trunc_normal(std 0.02) with zero bias (its ``_init_weights``; ``layers.cast_linear``); the spatial expert sees
frames 1, 3, 5, ...; its feature is ``ln_post`` of the mean of the per-frame class tokens, the temporal one
``fc_norm`` of the mean of all tokens; the single-label head adds the two adapted features (Eq. 6).
"""

from .checkpoints import clip_to_expert, load_expert, videomae_to_expert, vit_to_expert
from .exchange import DIRECTIONS, EXCHANGES, BlockExchange
from .experts import EXPERT_ARCHS, UNBUILDABLE_EXPERTS, ExpertBlock, FrameExpert, TubeletExpert, create_expert
from .layers import WINDOWS, Adapter, WindowedCrossAttention
from .model import (
    CAST, FUSIONS, build_expert, cast_base, cast_tiny, count_learnable, set_trainable, trainable_parameters,
)

__all__ = [
    "CAST",
    "DIRECTIONS",
    "EXCHANGES",
    "EXPERT_ARCHS",
    "FUSIONS",
    "UNBUILDABLE_EXPERTS",
    "WINDOWS",
    "Adapter",
    "BlockExchange",
    "ExpertBlock",
    "FrameExpert",
    "TubeletExpert",
    "WindowedCrossAttention",
    "build_expert",
    "cast_base",
    "cast_tiny",
    "clip_to_expert",
    "count_learnable",
    "create_expert",
    "load_expert",
    "set_trainable",
    "trainable_parameters",
    "videomae_to_expert",
    "vit_to_expert",
]
