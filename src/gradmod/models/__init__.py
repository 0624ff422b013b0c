"""Reference models for 28x28 grey-scale images: a CNN, a small ResNet and a ViT.

Every model takes float32 images [B, 1, 28, 28] with values in [0, 1] and
returns logits [B, num_classes]. Fashion-MNIST normalisation is the model's
first layer (``model.normalize``), so attacks can work in pixel space. Build
a model by name::

    from gradmod.models import MODELS, build_model

    model = build_model("vit", depth=6)
    print({name: spec.summary for name, spec in MODELS.items()})
"""

from gradmod.models.base import ImageClassifier
from gradmod.models.cnn import ConvNet
from gradmod.models.normalize import FASHION_MNIST_MEAN, FASHION_MNIST_STD, Normalize
from gradmod.models.registry import MODELS, ModelSpec, build_model
from gradmod.models.resnet import BasicBlock, ResNet
from gradmod.models.vit import VisionTransformer

__all__ = [
    "FASHION_MNIST_MEAN",
    "FASHION_MNIST_STD",
    "MODELS",
    "BasicBlock",
    "ConvNet",
    "ImageClassifier",
    "ModelSpec",
    "Normalize",
    "ResNet",
    "VisionTransformer",
    "build_model",
]
