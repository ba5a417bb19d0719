"""The denoising loss of a batch: MSE to the scheduler's target, Min-SNR weighting, prior loss."""

from __future__ import annotations

import torch


def diffusion_loss(
    model_pred: torch.Tensor,
    target: torch.Tensor,
    timesteps: torch.Tensor,
    noise_scheduler,
    *,
    snr_gamma: float | None = None,
    num_prior: int = 0,
    prior_loss_weight: float = 1.0,
) -> torch.Tensor:
    """MSE between prediction and target, (B, C, H, W) each, with optional Min-SNR weighting.

    The last ``num_prior`` items are prior-preservation (class) items: their mean loss is added
    with weight ``prior_loss_weight``.
    """
    from diffusers.training_utils import compute_snr

    per_item = (model_pred.float() - target.float()).pow(2).mean(dim=(1, 2, 3))
    if snr_gamma is not None:
        # Min-SNR-gamma (Hang et al. 2023): clamp the SNR weight so easy, low-noise timesteps do
        # not dominate; divided by SNR (epsilon) or SNR + 1 (v) to weight the model's own target.
        snr = compute_snr(noise_scheduler, timesteps)
        weight = torch.clamp(snr, max=snr_gamma)
        if noise_scheduler.config.prediction_type == "v_prediction":
            weight = weight / (snr + 1)
        else:
            weight = weight / snr
        per_item = per_item * weight
    if num_prior:
        instance, prior = per_item[:-num_prior], per_item[-num_prior:]
        return instance.mean() + prior_loss_weight * prior.mean()
    return per_item.mean()
