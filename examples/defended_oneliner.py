"""Put a reconstructive defense in front of a classifier in one line.

`Defended(model, defense)` takes exactly what `model` takes (here: Fashion-MNIST pixels in [0, 1],
so mean/std are None) and returns what it returns.
"""

import torch

from recondefense import Defended, ReconstructiveDefense
from recondefense.classifiers import load_classifier
from recondefense.data import fashion_mnist

classifier = load_classifier("fashionmnist-smallcnn")  # takes [0, 1] pixels
defense = ReconstructiveDefense.from_pretrained("fashionmnist-smallcnn-pgd")
model = Defended(classifier, defense, mean=None, std=None)

test = fashion_mnist("test")
images = torch.stack([test[i][0] for i in range(8)])
print("predictions:", model(images).argmax(1).tolist())
print("labels:     ", [test[i][1] for i in range(8)])
# For an ImageNet-normalized torchvision model: Defended(resnet50(weights=...), defense) with the
# default mean/std, once ImageNet-tier weights are shipped.
