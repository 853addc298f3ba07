"""The ensemble of DatasetGAN pixel MLPs as one batched module."""

import torch
import torch.nn.functional as F
from torch import nn


def reference_hidden_sizes(n_classes):
    """DatasetGAN / ddpm-segmentation: 128-32 hidden units below 30 classes, 256-128 from 30 on."""
    return (128, 32) if n_classes < 30 else (256, 128)


class BatchedMLPEnsemble(nn.Module):
    """``n_members`` MLPs Linear-ReLU-BatchNorm (×len(hidden)) + Linear, evaluated together.

    Member ``m``'s weights are slices ``[m]`` of stacked parameters, so one batched matmul runs
    all members; each member is initialised from its own generator (``seeds[m]``) exactly as a
    stand-alone member would be: weights ~ N(0, 0.02), biases 0, BatchNorm weight 1 and bias 0
    (the reference's ``init_weights``). Since Adam, BatchNorm and the summed loss act per
    member, training them together gives the same members as training them one by one.

    Input is ``(B, n_members, d)`` — every member its own samples, as each member of the
    reference ensemble walks its own shuffled order — or ``(B, d)``, shared by all members.
    Output: logits ``(B, n_members, n_classes)``.

    ``ghost_batch``: in training, BatchNorm takes its statistics over consecutive slices of this
    many samples instead of the whole batch ("ghost batch normalization", Hoffer et al., 2017),
    so a large batch keeps the normalization noise of the reference's batch of 64. None: the
    whole batch.
    """

    def __init__(self, n_members, in_features, n_classes, hidden=(128, 32), seeds=None, init_std=0.02,
                 ghost_batch=None):
        super().__init__()
        self.n_members = int(n_members)
        self.ghost_batch = ghost_batch
        dims = [int(in_features), *[int(h) for h in hidden], int(n_classes)]
        self.weights = nn.ParameterList(
            [nn.Parameter(torch.empty(self.n_members, d_in, d_out)) for d_in, d_out in zip(dims[:-1], dims[1:])]
        )
        self.biases = nn.ParameterList([nn.Parameter(torch.zeros(self.n_members, d)) for d in dims[1:]])
        self.norms = nn.ModuleList([nn.BatchNorm1d(self.n_members * h) for h in dims[1:-1]])
        seeds = list(range(self.n_members)) if seeds is None else list(seeds)
        with torch.no_grad():
            for m, seed in enumerate(seeds):
                generator = torch.Generator().manual_seed(int(seed))
                for weight in self.weights:
                    # drawn as nn.Linear stores it, (out, in), so a member matches a plain MLP
                    weight[m].copy_(torch.randn(weight.shape[2], weight.shape[1], generator=generator).T * init_std)

    def forward(self, x):
        shared = x.dim() == 2
        h = x.unsqueeze(0) if shared else x.transpose(0, 1)  # (1 or M, B, d)
        h = torch.matmul(h, self.weights[0]) + self.biases[0][:, None, :]  # (M, B, d_1)
        return self.forward_hidden(h.permute(1, 0, 2))

    def forward_hidden(self, h):
        """The network after the first linear layer: ``(B, M, d_1)`` pre-activations → logits.

        Split out because the first layer commutes with bilinear upsampling: prediction can
        project native-resolution activations first and upsample the narrower result. In eval
        mode ``h`` is overwritten (its ReLU is taken in place: prediction is memory-bound).
        """
        h = h.permute(1, 0, 2)  # (M, B, d_1)
        for k in range(1, len(self.weights)):
            h = F.relu(h, inplace=not self.training)
            n_members, batch, width = h.shape
            norm = self.norms[k - 1]
            if not self.training:
                # Eval-mode BatchNorm is affine: folded into the next layer's small weights it
                # saves a full pass over the (B, M, width) activations (prediction is memory-bound).
                weight, bias = _fold_batch_norm(norm, self.weights[k], self.biases[k])
                h = torch.baddbmm(bias[:, None, :], h, weight)
                continue
            flat = h.permute(1, 0, 2).reshape(batch, n_members * width)
            if self.ghost_batch and batch > self.ghost_batch:
                flat = ghost_batch_norm(flat, norm, self.ghost_batch)
            else:
                # A last batch of one sample cannot give batch statistics; it is normalised with
                # the running ones instead of aborting training.
                flat = F.batch_norm(flat, norm.running_mean, norm.running_var, norm.weight, norm.bias,
                                    training=batch > 1, momentum=norm.momentum, eps=norm.eps)
            h = flat.reshape(batch, n_members, width).permute(1, 0, 2)
            h = torch.matmul(h, self.weights[k]) + self.biases[k][:, None, :]
        return h.permute(1, 0, 2)  # (B, M, K)

    @torch.no_grad()
    def fold_input_standardization(self, mean, scale):
        """Make the module take raw features after training on ``(x - mean) / scale``.

        ``((x - mean) / scale) @ W + b == x @ (W / scale) + (b - (mean / scale) @ W)``.
        """
        weight = self.weights[0]
        mean, scale = (torch.as_tensor(v, dtype=weight.dtype, device=weight.device) for v in (mean, scale))
        self.biases[0].sub_(torch.einsum("d,mdk->mk", mean / scale, weight))
        weight.div_(scale[None, :, None])

    def member_state(self, m):
        """Copies of member ``m``'s parameters and BatchNorm statistics."""
        state = {}
        for name, tensor in self.state_dict().items():
            if name.startswith("norms."):
                if tensor.dim() == 0:
                    continue
                width = tensor.shape[0] // self.n_members
                state[name] = tensor[m * width : (m + 1) * width].clone()
            else:
                state[name] = tensor[m].clone()
        return state

    def load_member_state(self, m, state):
        """Write back what :meth:`member_state` returned."""
        own = self.state_dict()
        with torch.no_grad():
            for name, value in state.items():
                if name.startswith("norms."):
                    width = own[name].shape[0] // self.n_members
                    own[name][m * width : (m + 1) * width].copy_(value)
                else:
                    own[name][m].copy_(value)


def ghost_batch_norm(x, norm, ghost_batch):
    """Training-mode ``norm`` (a ``BatchNorm1d``) of ``x`` ``(N, C)``, slice by slice of ``ghost_batch`` rows.

    The same as ``F.batch_norm`` on each consecutive slice in turn (running statistics included),
    computed for all full slices at once: a loop over slices costs a kernel launch per slice on a
    GPU, where large batches are meant to run. A shorter last slice is normalised on its own (with
    the running statistics when it is a single row).
    """
    full = len(x) // ghost_batch * ghost_batch
    slices = x[:full].reshape(-1, ghost_batch, x.shape[1])
    mean, var = slices.mean(1, keepdim=True), slices.var(1, unbiased=False, keepdim=True)
    out = (slices - mean) * torch.rsqrt(var + norm.eps) * norm.weight + norm.bias
    with torch.no_grad():
        # running <- (1 - m) * running + m * statistic, once per slice in order: slice j of k is
        # weighted m * (1 - m) ** (k - 1 - j), the running value (1 - m) ** k
        k, m = len(slices), norm.momentum
        decay = m * (1 - m) ** torch.arange(k - 1, -1, -1, dtype=x.dtype, device=x.device)
        unbiased = var * (ghost_batch / (ghost_batch - 1))
        for running, stat in ((norm.running_mean, mean), (norm.running_var, unbiased)):
            running.mul_((1 - m) ** k).add_((decay[:, None] * stat[:, 0].detach()).sum(0))
    out = out.reshape(full, -1)
    if full == len(x):
        return out
    tail = F.batch_norm(x[full:], norm.running_mean, norm.running_var, norm.weight, norm.bias,
                        training=len(x) - full > 1, momentum=m, eps=norm.eps)
    return torch.cat([out, tail])


def _fold_batch_norm(norm, weight, bias):
    """``(W', b')`` with ``BN_eval(h) @ W + b == h @ W' + b'``; W ``(M, width, out)``, b ``(M, out)``."""
    n_members, width, _ = weight.shape
    gain = (norm.weight * torch.rsqrt(norm.running_var + norm.eps)).reshape(n_members, width)
    shift = norm.bias.reshape(n_members, width) - norm.running_mean.reshape(n_members, width) * gain
    return gain[:, :, None] * weight, bias + torch.einsum("mw,mwo->mo", shift, weight)
