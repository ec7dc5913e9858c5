"""The tiny scale's stand-ins for the pretrained checkpoints the papers start from: each tiny video model's image ViT
trained on ``synth_images`` in ImageNet-21K's role (``images``, ``python -m experiments pretrain-images``), CAST's tiny
experts pretrained before the runs that load them (``experts``), and the shipped weights both write (``weights/``:
safetensors files, each beside the record of how it was made). Every paper's tiny presets load from here, so it sits
beside the presets rather than in one paper's folder."""
