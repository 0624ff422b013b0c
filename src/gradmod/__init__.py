"""gradmod: layerwise gradient modulation (LGM) for PyTorch.

The modulator plugs into any ``torch.optim`` optimizer::

    from gradmod import LayerwiseGradientModulator
    mod = LayerwiseGradientModulator(model)
    mod.attach(optimizer)
"""

from gradmod.modulation import LayerwiseGradientModulator

__version__ = "0.1.0"
__all__ = ["LayerwiseGradientModulator", "__version__"]
