"""Point torchattacks at a defended model: with mean=None it takes [0, 1] pixels, their convention."""

import torch
import torchattacks

from recondefense import Defended, ReconstructiveDefense
from recondefense.classifiers import load_classifier
from recondefense.data import fashion_mnist

classifier = load_classifier("fashionmnist-smallcnn")
model = Defended(classifier, ReconstructiveDefense.from_pretrained("fashionmnist-smallcnn-pgd"), mean=None, std=None)
test = fashion_mnist("test")
x = torch.stack([test[i][0] for i in range(64)])
y = torch.tensor([test[i][1] for i in range(64)])
x_adv = torchattacks.PGD(model, eps=0.04, alpha=0.016, steps=10)(x, y)  # end to end, exact gradients
print("defended accuracy under end-to-end PGD:", (model(x_adv).argmax(1) == y).float().mean().item())
