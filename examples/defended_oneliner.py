"""Put a reconstructive defense in front of a classifier in one line.

`Defended(model)` takes exactly what `model` takes and returns what it returns. Without a defense it
loads the shipped default ImageNet weights (`imagenet-efficientnet_lite0_lite2-routed23-objects3-mix`) and assumes
torchvision's ImageNet normalization; pass `mean=`/`std=` for other models, or None for models that
take [0, 1] pixels.
"""

import torch
from torchvision.models import resnet50

from recondefense import IMAGENET_MEAN, IMAGENET_STD, Defended, ReconstructiveDefense
from recondefense.classifiers import load_classifier
from recondefense.data import fashion_mnist

# An ImageNet-normalized torchvision model (use resnet50(weights="DEFAULT") where downloads work).
model = Defended(resnet50().eval())
pixels = torch.rand(2, 3, 224, 224)  # [0, 1]
normalized = (pixels - torch.tensor(IMAGENET_MEAN).view(3, 1, 1)) / torch.tensor(IMAGENET_STD).view(3, 1, 1)
print("resnet50 logits:", tuple(model(normalized).shape))

# A model that takes [0, 1] pixels (mean/std None) with other shipped weights: Fashion-MNIST.
classifier = load_classifier("fashionmnist-smallcnn")
model = Defended(classifier, ReconstructiveDefense.from_pretrained("fashionmnist-smallcnn-pgd"), mean=None, std=None)
test = fashion_mnist("test")
images = torch.stack([test[i][0] for i in range(8)])
print("predictions:", model(images).argmax(1).tolist())
print("labels:     ", [test[i][1] for i in range(8)])
