"""The images of ``synth_images`` as a LightningDataModule: (image, label) batches, normalised as the tiny video
clips are (``DataConfig``'s default mean and std of 0.5), so that what a backbone learns here is what it sees later.
Every epoch trains on fresh images (the trainer must reload its loaders every epoch); the validation images are
fixed. No augmentation: every image already draws its own position, size, rotation and background."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from data.synthetic.images import CLASSES, ensure_synth_images, load_synth_images, training_epoch

# The tiny video pipeline's normalisation (data.transforms' defaults): the same pixels map to the same inputs.
MEAN = STD = 0.5


class ImageArrayDataset(Dataset):
    """(N, H, W, 3) uint8 images and (N,) labels -> ((3, H, W) float normalised, label)."""

    def __init__(self, images: np.ndarray, labels: np.ndarray) -> None:
        self.images, self.labels = torch.from_numpy(images), torch.from_numpy(labels)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image = self.images[index].permute(2, 0, 1).float().div_(255.0)
        return (image - MEAN) / STD, self.labels[index]


class SynthImagesDataModule(L.LightningDataModule):
    """``synth_images``: a shuffled loader of the current epoch's fresh training images (rendered when the trainer
    asks for it: ``Trainer(reload_dataloaders_every_n_epochs=1)``), and a loader of the validation images from
    ``cache_dir`` (written on first use), in order.

    Args:
        cache_dir: where the validation images are kept (``data.synthetic.images.ensure_synth_images``).
        num_train: training images per epoch; num_val, seed: the validation set's size, and the seed of both.
        batch_size: images per batch.
    """

    num_classes = len(CLASSES)

    def __init__(self, cache_dir: str | Path = ".cache/synthetic", num_train: int = 20_000, num_val: int = 2_000,
                 seed: int = 0, batch_size: int = 128) -> None:
        super().__init__()
        self.cache_dir, self.batch_size = Path(cache_dir), batch_size
        self.params = {"num_train": num_train, "num_val": num_val, "seed": seed}
        self.root: Path | None = None
        self.splits: dict[str, ImageArrayDataset] = {}

    def prepare_data(self) -> None:
        self.root = ensure_synth_images(self.cache_dir, num_train=0, num_val=self.params["num_val"],
                                        seed=self.params["seed"])

    def setup(self, stage: str | None = None) -> None:
        if self.root is None:
            self.prepare_data()
        if "val" not in self.splits:
            self.splits["val"] = ImageArrayDataset(*load_synth_images(self.root, "val"))

    def train_dataloader(self) -> DataLoader:
        epoch = self.trainer.current_epoch if self.trainer is not None else 0
        images = ImageArrayDataset(*training_epoch(self.params["seed"], epoch, self.params["num_train"]))
        return DataLoader(images, batch_size=self.batch_size, shuffle=True, drop_last=True)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.splits["val"], batch_size=self.batch_size, shuffle=False)
