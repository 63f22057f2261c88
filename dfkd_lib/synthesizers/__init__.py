"""Where the student's images come from: one module per way of making them, all behind :class:`Synthesizer`.

=========================================  ===============================================================
:class:`Synthesizer` (``base``)            the interface the training loop (:func:`dfkd_lib.engine.distill`) calls
:class:`ImagePool` (``pool``)              the memory bank of past batches (CMI, Fast-DFKD) that synthesisers keep
:class:`GeneratorSynthesizer`              a generator trained adversarially (DFAD, DAFL, DFKD-FGVC, ...);
                                           :func:`train_generator_bn`: one fitted to BN statistics alone
:class:`MomentumGeneratorSynthesizer`      the same with an EMA copy mixed into student batches (MAD)
:class:`CMISynthesizer` (``cmi``)          contrastive model inversion: a re-initialised generator per pooled batch
:class:`FeatureExchangeSynthesizer`        a pool of generator features, exchanged channel-wise (SpaceshipNet)
:class:`InversionSynthesizer`              DeepInversion / ADI pixel optimisation (``deepinversion``)
:class:`ZSKDSynthesizer`                   ZSKD pixel optimisation towards Dirichlet soft targets (``zskd``)
:class:`RealImages` (``real``)             real training images, for the reference runs (not data-free);
                                           :class:`FixedImages`: a fixed tensor of images
=========================================  ===============================================================
"""
from .base import Synthesizer
from .cmi import CMISynthesizer
from .deepinversion import InversionSynthesizer, deep_inversion
from .feature_exchange import FeatureExchangeSynthesizer, channel_exchange
from .generator import GeneratorSynthesizer, train_generator_bn
from .momentum import MomentumGeneratorSynthesizer
from .pixels import InversionResult, PixelPoolSynthesizer, frozen
from .pool import ImagePool
from .real import FixedImages, RealImages
from .zskd import ZSKDSynthesizer, class_similarity, final_linear_weight, sample_dirichlet_targets, zskd_synthesize

__all__ = ["Synthesizer", "ImagePool", "GeneratorSynthesizer", "MomentumGeneratorSynthesizer", "CMISynthesizer",
           "FeatureExchangeSynthesizer", "channel_exchange", "InversionSynthesizer", "ZSKDSynthesizer",
           "RealImages", "FixedImages", "PixelPoolSynthesizer", "InversionResult", "deep_inversion", "zskd_synthesize",
           "class_similarity", "final_linear_weight", "sample_dirichlet_targets", "frozen",
           "train_generator_bn"]
