"""Loss functions of data-free distillation, one concept per module (pure functions of tensors).

=================  =====================================================================================
``kd``             :func:`kd_loss`, the KD loss (Hinton et al. 2015; DFKD-FGVC Eq. 2)
``priors``         :func:`total_variation`, :func:`l2_prior` (DeepInversion's image priors)
``js``             :func:`js_divergence`, :func:`competition_loss` (ADI's 1 - JS)
``mhad``           :func:`mhad_loss` (DFKD-FGVC Eq. 7)
``sfcl``           :func:`sfcl_loss`, :func:`sfcl_logits`, :class:`Projector` (DFKD-FGVC Eq. 8-9)
``at``             :func:`attention_transfer_loss` (Zagoruyko & Komodakis 2017; ZSKT Eq. 2)
``contrastive``    :func:`instance_contrastive_loss` (CMI's global/local-view InfoNCE with a memory bank)
``msarc``          :func:`msarc_loss`, :func:`fc_cam`, :func:`grad_weighted_cam` (SpaceshipNet's CAM consistency)
=================  =====================================================================================

The BN-statistics loss (DFKD-FGVC Eq. 3) needs forward hooks and lives in :mod:`dfkd_lib.hooks`.
"""
from .at import attention_transfer_loss
from .contrastive import instance_contrastive_loss
from .js import competition_loss, js_divergence
from .kd import kd_loss
from .mhad import mhad_loss
from .msarc import fc_cam, grad_weighted_cam, msarc_loss
from .priors import l2_prior, total_variation
from .sfcl import Projector, sfcl_logits, sfcl_loss

__all__ = ["kd_loss", "total_variation", "l2_prior", "js_divergence", "competition_loss", "mhad_loss",
           "sfcl_loss", "sfcl_logits", "Projector", "attention_transfer_loss", "instance_contrastive_loss",
           "msarc_loss", "fc_cam", "grad_weighted_cam"]
