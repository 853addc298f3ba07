"""The members' softmax must sum to 1 even at the extreme logits of an overfitted member (issue 26)."""

import torch

from sklearn_ddpm.ensemble._voting import class_probabilities


def test_probabilities_sum_to_one_at_logits_in_the_thousands():
    # exp(logits - logsumexp(logits)) rounded logsumexp (about 5000.74) to float32's spacing at 5000
    # (5e-4): these summed to 0.9998; the CCP fit of tests/ensemble/test_nan_real_data.py gave 0.9997
    logits = torch.tensor([[5000.0, 4999.9, -3000.0], [-2.0, 0.5, 1.0]])
    probabilities = class_probabilities(logits.clone())
    torch.testing.assert_close(probabilities.sum(-1), torch.ones(2), rtol=0, atol=2e-7)
    torch.testing.assert_close(probabilities, torch.softmax(logits, -1), rtol=1e-6, atol=1e-7)


def test_untrained_classes_removed_with_minus_infinity_stay_zero():
    logits = torch.tensor([[1e4, -torch.inf, 3.0], [-1e4, -torch.inf, -1e4 + 1]])
    probabilities = class_probabilities(logits)
    assert torch.isfinite(probabilities).all() and (probabilities[:, 1] == 0).all()
    torch.testing.assert_close(probabilities.sum(-1), torch.ones(2), rtol=0, atol=2e-7)
