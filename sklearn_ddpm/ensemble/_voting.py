"""Combining ensemble members: majority vote, mean probability, Jensen-Shannon uncertainty."""

import torch


def majority_vote(member_labels, n_classes, tie_break=None):
    """Most frequent label per row of ``member_labels`` ``(n, M)``.

    Ties go to the class with the higher ``tie_break`` score ``(n, K)`` (e.g. the mean
    probability; scores must lie in [0, 1]), else to the lowest label.
    """
    votes = torch.zeros(member_labels.shape[0], n_classes, dtype=torch.float32, device=member_labels.device)
    votes.scatter_add_(1, member_labels.long(), torch.ones_like(member_labels, dtype=torch.float32))
    if tie_break is not None:
        votes += 0.5 * tie_break.to(votes.dtype)  # < 1, so it never outweighs a vote
    return votes.argmax(1)


def class_probabilities(logits):
    """Softmax over the last (class) axis.

    As ``exp(logits - logsumexp(logits))``: ``torch.softmax`` over a short last axis (a few
    classes) is several times slower on a CPU, and prediction computes it for every pixel and member.
    The logits are first shifted by their maximum: ``logsumexp`` of logits in the thousands (an
    overfitted member on new pixels) is rounded to their float32 spacing, and the probabilities
    summed to 1 - 3e-4 (issue 26); shifted, the largest is 0 and the sum is 1 to float rounding.
    """
    shifted = logits - logits.amax(-1, keepdim=True)
    return shifted.sub_(shifted.logsumexp(-1, keepdim=True)).exp_()


def entropy(probabilities, dim=-1):
    """Shannon entropy (nats) along ``dim``, with 0 log 0 = 0."""
    return -(probabilities * torch.log(probabilities.clamp_min(1e-30))).sum(dim)


def js_uncertainty(member_probabilities):
    """Jensen-Shannon divergence of the members' distributions ``(n, M, K)`` → ``(n,)``.

    The entropy of the mean distribution minus the mean of the members' entropies, as the
    reference computes its uncertainty: zero when members agree, large where they disagree.
    """
    mean = member_probabilities.mean(1)
    return entropy(mean) - entropy(member_probabilities).mean(1)


def uncertainty_score(js_map, top_fraction=0.1):
    """One number per image: the mean of its top ``top_fraction`` most uncertain pixels (reference)."""
    flat = js_map.reshape(-1)
    k = max(1, int(flat.numel() * top_fraction))
    return flat.topk(k).values.mean()
