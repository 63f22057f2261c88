"""dfkd_lib: data-free knowledge distillation in PyTorch, the library of the dfkd-book.

The public API (every name is documented where it is defined, with shapes, units, errors and its source)::

    import dfkd_lib as dl
    teacher, manifest = dl.load_or_train_teacher("fashion-mnist")
    result = dl.run_distillation("fashion-mnist", method="dfkd-fgvc", generator="attention",
                                 config=dl.DistillConfig(epochs=2, iterations_per_epoch=5))

============================  =======================================================================
runs                          :func:`run_distillation` (a run from names), :func:`load_run_models`,
                              :func:`distill` (the one loop, Algorithm 1 of DFKD-FGVC), :class:`DistillConfig`
methods                       :func:`build_method`, :data:`METHODS`, :class:`Method`, :class:`Step`,
                              :func:`describe_methods`
synthesisers                  :class:`GeneratorSynthesizer`, :class:`InversionSynthesizer` (DeepInversion, ADI),
                              :class:`ZSKDSynthesizer`, :class:`MomentumGeneratorSynthesizer` (MAD),
                              :class:`CMISynthesizer`, :class:`FeatureExchangeSynthesizer` (SpaceshipNet),
                              :class:`RealImages`, :class:`ImagePool`, :func:`deep_inversion`, :func:`train_generator_bn`
losses                        :func:`kd_loss`, :func:`mhad_loss`, :func:`sfcl_loss`, :func:`sfcl_logits`, :class:`Projector`,
                              :func:`total_variation`, :func:`l2_prior`, :func:`js_divergence`, :func:`competition_loss`,
                              :func:`attention_transfer_loss`, :func:`instance_contrastive_loss`, :func:`msarc_loss`,
                              :class:`BNStatistics`
models                        :func:`build_classifier`, :func:`build_generator`, :class:`Features`
data and teachers             :func:`get_dataset`, :func:`resolve_spec`, :class:`DatasetSpec`, :func:`load_teacher`,
                              :func:`train_teacher`, :func:`load_or_train_teacher`, :func:`evaluate`
choosing runs                 :func:`leave_one_out_agreement` (no real data, no labels)
helpers                       :func:`eval_mode`, :func:`seed_everything`
============================  =======================================================================

Plots and widgets (:mod:`dfkd_lib.viz`) and results tables (:mod:`dfkd_lib.sweep`) need the book's packages
(matplotlib, ipywidgets, pandas, seaborn) and are imported from their modules.
"""
from .config import DistillConfig
from .data import DatasetSpec, dataset_spec, get_dataset, resolve_spec
from .engine import distill
from .experiment import build_generator, load_run_models, run_distillation
from .hooks import BNStatistics
from .losses import (Projector, attention_transfer_loss, competition_loss, instance_contrastive_loss, js_divergence,
                     kd_loss, l2_prior, mhad_loss, msarc_loss, sfcl_logits, sfcl_loss, total_variation)
from .methods import METHODS, Method, Step, build_method, describe_methods
from .models import Features, build_classifier
from .selection import leave_one_out_agreement
from .synthesizers import (CMISynthesizer, FeatureExchangeSynthesizer, GeneratorSynthesizer, ImagePool,
                           InversionSynthesizer, MomentumGeneratorSynthesizer, RealImages, ZSKDSynthesizer,
                           deep_inversion, train_generator_bn)
from .teachers import evaluate, load_or_train_teacher, load_teacher, train_teacher
from .utils import eval_mode, seed_everything

from .version import __version__
__all__ = ["DistillConfig", "DatasetSpec", "dataset_spec", "get_dataset", "resolve_spec", "distill",
           "build_generator", "load_run_models", "run_distillation", "BNStatistics", "competition_loss",
           "js_divergence", "kd_loss", "l2_prior", "mhad_loss", "sfcl_loss", "total_variation", "METHODS", "Method",
           "Step", "build_method", "Features", "build_classifier", "GeneratorSynthesizer", "ImagePool",
           "InversionSynthesizer", "RealImages", "ZSKDSynthesizer", "deep_inversion", "evaluate",
           "load_or_train_teacher", "load_teacher", "train_teacher", "Projector", "sfcl_logits",
           "train_generator_bn", "eval_mode", "seed_everything", "describe_methods", "attention_transfer_loss",
           "instance_contrastive_loss", "msarc_loss", "leave_one_out_agreement", "CMISynthesizer",
           "FeatureExchangeSynthesizer", "MomentumGeneratorSynthesizer"]
