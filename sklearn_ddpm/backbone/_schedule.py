"""The noise schedule ``q(x_t | x_0)``: the one place that builds a diffusers scheduler for it."""

from diffusers import DDPMScheduler

# guided-diffusion's linear schedule for 1000 steps; other lengths scale it to the same endpoints.
_LINEAR_BETA_START = 1e-4
_LINEAR_BETA_END = 0.02


def noise_scheduler(noise_schedule="linear", num_train_timesteps=1000):
    """A ``DDPMScheduler`` for the paper's (and guided-diffusion's) noise schedules.

    Parameters
    ----------
    noise_schedule : {"linear", "cosine"}, default="linear"
        "linear": betas from 1e-4 to 0.02 over 1000 steps (the paper's), scaled by
        ``1000 / num_train_timesteps`` for other lengths as guided-diffusion does; "cosine":
        Nichol & Dhariwal's ``squaredcos_cap_v2``.
    num_train_timesteps : int, default=1000
        Length of the schedule.

    Returns
    -------
    diffusers.DDPMScheduler
        ε-prediction, fixed small variance, clipped samples (diffusers' defaults, stated so the
        saved config says what the model was trained with).

    Examples
    --------
    >>> from sklearn_ddpm.backbone import noise_scheduler
    >>> round(float(noise_scheduler().betas[-1]), 6)
    0.02
    """
    common = dict(num_train_timesteps=int(num_train_timesteps), prediction_type="epsilon",
                  variance_type="fixed_small", clip_sample=True)
    if noise_schedule == "linear":
        scale = 1000 / int(num_train_timesteps)
        return DDPMScheduler(beta_schedule="linear", beta_start=scale * _LINEAR_BETA_START,
                             beta_end=scale * _LINEAR_BETA_END, **common)
    if noise_schedule == "cosine":
        return DDPMScheduler(beta_schedule="squaredcos_cap_v2", **common)
    raise ValueError(f"unknown noise_schedule {noise_schedule!r}; expected 'linear' or 'cosine'.")
