"""A small GPT in nanoGPT's layout whose attention is any .attn program (through `import attn`).

The architecture is `attn train`'s model (runtime/model/Gpt2.cpp), so that the two can be
compared on the same batches (train.py --compare): pre-LayerNorm blocks, RoPE on q and k
(GPT-NeoX halves, base 10000) instead of learned positions, GELU (tanh) MLPs, no dropout,
tied embeddings (the head is wte's weight), GPT-2's initialisation. Where it differs from
nanoGPT, and why:
- no `wpe` (RoPE) and no `lm_head` module: the head multiplies by wte.weight. Building an
  nn.Linear head would draw random numbers that attn's model does not, and with the same
  seed the two would no longer start from the same weights.
- the initialisation draws in attn's order (wte, then per block c_attn, c_fc, attn.c_proj,
  mlp.c_proj): with torch.manual_seed(s) this model starts where `attn train --seed s` does.
- the attention is `attn.Attention(program)` on [B, H, T, head_dim] after RoPE: the program
  carries its own causal mask and scaling (every stdlib program is causal).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn as nn
from torch.nn import functional as F

import attn


@dataclass
class GPTConfig:
    block_size: int = 256        # training length (RoPE needs no table of it; kept for the data)
    vocab_size: int = 50304      # GPT-2's 50,257 padded to a multiple of 64
    n_layer: int = 4             # attn's "tiny": 4 layers, 4 heads, 128 wide
    n_head: int = 4
    n_embd: int = 128
    rope_base: float = 10000.0
    attention: str = "softmax"   # a stdlib name, a path to an .attn file, or program text
    attention_params: dict = field(default_factory=dict)  # e.g. {"p": 15} for lssar
    backend: str = "auto"        # attn's: auto (cuda on a GPU, the cpu JIT otherwise), reference, cpu, cuda


def rope_tables(length: int, head_dim: int, base: float):
    """cos and sin [T, head_dim / 2] (float64 math, float32 result), as attn's ropeTables."""
    p = torch.arange(head_dim // 2, dtype=torch.float64)
    inverse = torch.pow(torch.tensor(base, dtype=torch.float64), -2.0 * p / head_dim)
    angles = torch.outer(torch.arange(length, dtype=torch.float64), inverse)
    return torch.cos(angles).float(), torch.sin(angles).float()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotates the pairs (x_p, x_{p + d/2}) of x [B, H, T, d] (GPT-NeoX layout)."""
    half = x.size(-1) // 2
    x1, x2 = x[..., :half], x[..., half:]
    c, s = cos.to(x.dtype), sin.to(x.dtype)
    return torch.cat([x1 * c - x2 * s, x2 * c + x1 * s], dim=-1)


class CausalSelfAttention(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        assert config.n_embd % config.n_head == 0
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd)
        self.n_head = config.n_head
        self.n_embd = config.n_embd
        # Where nanoGPT calls F.scaled_dot_product_attention(q, k, v, is_causal=True):
        self.attention = attn.Attention(config.attention, backend=config.backend, **config.attention_params)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        B, T, C = x.size()
        qkv = self.c_attn(x).view(B, T, 3, self.n_head, C // self.n_head).permute(2, 0, 3, 1, 4)
        q, k, v = apply_rope(qkv[0], cos, sin), apply_rope(qkv[1], cos, sin), qkv[2]
        y = self.attention(q.contiguous(), k.contiguous(), v.contiguous())
        return self.c_proj(y.transpose(1, 2).reshape(B, T, C))


class MLP(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd)
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c_proj(F.gelu(self.c_fc(x), approximate="tanh"))


class Block(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd)
        self.mlp = MLP(config)

    def forward(self, x, cos, sin):
        x = x + self.attn(self.ln_1(x), cos, sin)
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.config = config
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(config.vocab_size, config.n_embd),
            h=nn.ModuleList([Block(config) for _ in range(config.n_layer)]),
            ln_f=nn.LayerNorm(config.n_embd),
        ))
        self._init_weights()
        self._rope = {}

    @torch.no_grad()
    def _init_weights(self):
        """GPT-2's: N(0, 0.02), zero biases, residual projections N(0, 0.02 / sqrt(2 n_layer))."""
        residual = 0.02 / math.sqrt(2 * self.config.n_layer)
        nn.init.normal_(self.transformer.wte.weight, 0.0, 0.02)
        for block in self.transformer.h:
            for layer, std in ((block.attn.c_attn, 0.02), (block.mlp.c_fc, 0.02),
                               (block.attn.c_proj, residual), (block.mlp.c_proj, residual)):
                nn.init.normal_(layer.weight, 0.0, std)
                nn.init.zeros_(layer.bias)

    def rope(self, length: int, device):
        key = (length, str(device))
        if key not in self._rope:
            cos, sin = rope_tables(length, self.config.n_embd // self.config.n_head, self.config.rope_base)
            self._rope[key] = (cos.to(device), sin.to(device))
        return self._rope[key]

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        cos, sin = self.rope(idx.size(1), idx.device)
        x = self.transformer.wte(idx)
        for block in self.transformer.h:
            x = block(x, cos, sin)
        x = self.transformer.ln_f(x)
        logits = x @ self.transformer.wte.weight.t()  # tied embeddings
        loss = None
        if targets is not None:
            flat = logits.view(-1, logits.size(-1))
            loss = F.cross_entropy(flat if flat.dtype == torch.float64 else flat.float(), targets.reshape(-1))
        return logits, loss

    def configure_optimizers(self, weight_decay: float, learning_rate: float, betas=(0.9, 0.95), eps=1e-8):
        """AdamW, weight decay on the matrices (dim >= 2) only, as attn train."""
        params = list(self.parameters())
        groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
                  {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
        return torch.optim.AdamW(groups, lr=learning_rate, betas=betas, eps=eps)
