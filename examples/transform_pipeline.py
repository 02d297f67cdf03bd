"""The defense as a torchvision transform: between ToDtype and Normalize, on (C, H, W) images."""

import torch
from torchvision.transforms import v2

from recondefense import ReconstructiveDefense

defense = ReconstructiveDefense.from_pretrained("fashionmnist-smallcnn-pgd")
transform = v2.Compose(
    [
        v2.ToImage(),
        v2.ToDtype(torch.float32, scale=True),
        defense,  # (1, H, W) in [0, 1] -> (1, H, W) in [0, 1]; any H, W
        v2.Normalize((0.2860,), (0.3530,)),
    ]
)
image = torch.randint(0, 256, (1, 28, 28), dtype=torch.uint8)
print(transform(image).shape)
