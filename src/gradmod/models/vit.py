"""A small Vision Transformer for 28x28 images.

Dosovitskiy et al., "An Image is Worth 16x16 Words: Transformers for Image
Recognition at Scale" (2021), scaled down:

1. patch embedding: a convolution with kernel = stride = ``patch_size`` turns
   the image into (28 / patch_size)^2 tokens of size ``dim``;
2. with ``pool="cls"`` a learned class token is prepended; a learned position
   embedding is added to every token;
3. ``depth`` pre-norm blocks: x = x + attn(LN(x)), x = x + mlp(LN(x)), where
   attn is multi-head self-attention computed with
   ``torch.nn.functional.scaled_dot_product_attention`` and mlp is
   linear(mlp_ratio * dim)-GELU-linear(dim);
4. a final LayerNorm, then the class token (``pool="cls"``) or the mean of all
   tokens (``pool="mean"``) goes through the linear ``head``.

Position embeddings and the class token start from a normal distribution with
std 0.02. Module paths read
``patch_embed``, ``cls_token``, ``pos_embed``, ``blocks.3.attn.qkv``,
``blocks.3.mlp.fc1``, ``norm``, ``head``. The class token and the position
embedding are modules of their own, so each is one layer for gradmod's
per-layer grouping.

The defaults (patch 4, so 49 tokens, dim 64, depth 4, 4 heads, MLP ratio 2,
mean pooling, 139k parameters) are sized for CPU training. A training step
(forward, backward and SGD with momentum, batch 128) runs at about 1400
images/s with ``torch.set_num_threads(2)``, and dim 96 or depth 6 give about 900.
NOTE: measured on a 2-core x86 machine shared with other jobs, with torch
2.13.0 (CPU build); other machines differ.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from gradmod.models._checks import check_choice, check_positive_int, check_probability
from gradmod.models.base import ImageClassifier

__all__ = ["Attention", "Block", "ClassToken", "MLP", "PositionEmbedding", "VisionTransformer"]

POOLING = ("cls", "mean")


class ClassToken(nn.Module):
    """A learned token prepended to every sequence: [B, T, D] -> [B, T + 1, D]."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(1, 1, dim).normal_(std=0.02))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.weight.expand(len(tokens), -1, -1), tokens], dim=1)


class PositionEmbedding(nn.Module):
    """A learned embedding per token position, added to the tokens [B, T, D]."""

    def __init__(self, num_tokens: int, dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(1, num_tokens, dim).normal_(std=0.02))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return tokens + self.weight


class Attention(nn.Module):
    """Multi-head self-attention with one fused ``qkv`` projection and an output ``proj``."""

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.dropout = dropout
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, tokens, dim = x.shape
        # [B, T, 3 * D] -> 3 x [B, heads, T, D / heads]
        qkv = self.qkv(x).reshape(batch, tokens, 3, self.heads, dim // self.heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        dropout_p = self.dropout if self.training else 0.0
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p)
        out = out.transpose(1, 2).reshape(batch, tokens, dim)
        return self.proj_drop(self.proj(out))


class MLP(nn.Module):
    """Two linear layers with GELU between them: fc2(dropout(gelu(fc1(x))))."""

    def __init__(self, dim: int, hidden: int, dropout: float) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(norm1(x)), then + mlp(norm2(x))."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float, dropout: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads, dropout)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = MLP(dim, int(round(dim * mlp_ratio)), dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class VisionTransformer(ImageClassifier):
    """Patch embedding, position embedding, pre-norm transformer blocks, pooled linear head.

    Args:
        patch_size: side of the square patches; must divide 28.
        dim: token width.
        depth: number of transformer blocks.
        heads: attention heads; must divide ``dim``.
        mlp_ratio: hidden width of each MLP as a multiple of ``dim``.
        pool: "cls" for a class token, "mean" for the mean of all tokens.
        dropout: dropout probability after the embeddings, inside attention and in the MLPs.
        num_classes: number of output logits.
    """

    def __init__(
        self,
        *,
        patch_size: int = 4,
        dim: int = 64,
        depth: int = 4,
        heads: int = 4,
        mlp_ratio: float = 2.0,
        pool: str = "mean",
        dropout: float = 0.0,
        num_classes: int = 10,
    ) -> None:
        image_size = self.input_shape[-1]
        check_positive_int("patch_size", patch_size)
        if image_size % patch_size:
            divisors = ", ".join(str(d) for d in range(1, image_size + 1) if image_size % d == 0)
            raise ValueError(f"patch_size must divide the image size {image_size} (one of {divisors}), got {patch_size}")
        check_positive_int("dim", dim)
        check_positive_int("depth", depth)
        check_positive_int("heads", heads)
        if dim % heads:
            divisors = ", ".join(str(d) for d in range(1, dim + 1) if dim % d == 0)
            raise ValueError(f"heads must divide dim={dim} (one of {divisors}), got {heads}")
        if isinstance(mlp_ratio, bool) or not isinstance(mlp_ratio, (int, float)) or mlp_ratio <= 0:
            raise ValueError(f"mlp_ratio must be a positive number, got {mlp_ratio!r}")
        check_choice("pool", pool, POOLING)
        check_probability("dropout", dropout)
        check_positive_int("num_classes", num_classes)
        super().__init__(
            {
                "patch_size": patch_size,
                "dim": dim,
                "depth": depth,
                "heads": heads,
                "mlp_ratio": mlp_ratio,
                "pool": pool,
                "dropout": dropout,
                "num_classes": num_classes,
            }
        )
        self.pool = pool
        num_patches = (image_size // patch_size) ** 2
        num_tokens = num_patches + (1 if pool == "cls" else 0)

        self.patch_embed = nn.Conv2d(self.input_shape[0], dim, kernel_size=patch_size, stride=patch_size)
        self.cls_token = ClassToken(dim) if pool == "cls" else None
        self.pos_embed = PositionEmbedding(num_tokens, dim)
        self.embed_drop = nn.Dropout(dropout)
        self.blocks = nn.Sequential(*(Block(dim, heads, mlp_ratio, dropout) for _ in range(depth)))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    def forward_normalized(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.patch_embed(x).flatten(2).transpose(1, 2)  # [B, patches, dim]
        if self.cls_token is not None:
            tokens = self.cls_token(tokens)
        tokens = self.norm(self.blocks(self.embed_drop(self.pos_embed(tokens))))
        pooled = tokens[:, 0] if self.pool == "cls" else tokens.mean(dim=1)
        return self.head(pooled)
