"""The PyTorch reference for `npm run bench --only speed`: the default preset's GPT trained on CPU.

The same architecture and optimiser as models/src/model/gpt.ts and models/src/train/train.ts,
written plainly (nanoGPT's model.py, without its fused paths): token + position embeddings,
pre-LayerNorm blocks (eps 1e-5, with biases), causal self-attention scaled by 1/sqrt(head size),
a 4x MLP with tanh-approximated GELU, a final LayerNorm and an output head tied to the token
embedding; no dropout. AdamW (betas 0.9/0.95, eps 1e-8, decoupled weight decay 0.1 on the 2-D
parameters only, embeddings included), global-norm gradient clipping at 1.0. Random token
batches: the speed of a step does not depend on the values.

It measures throughput and memory only; it is not a trainer. Prints one JSON line:
tokens/s (median over the steps after warm-up), GFLOP/s by the bench's formula (6N + 12 L T d
FLOPs per token), peak RSS.

    python3 bench/torch_train.py --preset models/presets/small.json [--threads 2] [--steps 12]
"""
import argparse
import json
import math
import os
import platform
import resource
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, d, n_head, block_size):
        super().__init__()
        self.n_head = n_head
        self.ln1 = nn.LayerNorm(d, eps=1e-5)
        self.qkv = nn.Linear(d, 3 * d)  # columns q | k | v, as wqkv
        self.proj = nn.Linear(d, d)
        self.ln2 = nn.LayerNorm(d, eps=1e-5)
        self.fc = nn.Linear(d, 4 * d)
        self.fc_proj = nn.Linear(4 * d, d)
        self.register_buffer("mask", torch.tril(torch.ones(block_size, block_size, dtype=torch.bool)))

    def attn(self, x):
        B, T, C = x.shape
        hs = C // self.n_head
        q, k, v = self.qkv(x).split(C, dim=2)
        q = q.view(B, T, self.n_head, hs).transpose(1, 2)  # (B, nh, T, hs)
        k = k.view(B, T, self.n_head, hs).transpose(1, 2)
        v = v.view(B, T, self.n_head, hs).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hs))  # (B, nh, T, T)
        att = att.masked_fill(~self.mask[:T, :T], float("-inf")).softmax(dim=-1)
        y = (att @ v).transpose(1, 2).contiguous().view(B, T, C)
        return self.proj(y)

    def forward(self, x):
        x = x + self.attn(self.ln1(x))
        x = x + self.fc_proj(F.gelu(self.fc(self.ln2(x)), approximate="tanh"))
        return x


class GPT(nn.Module):
    def __init__(self, m):
        super().__init__()
        d = m["nEmbd"]
        self.wte = nn.Embedding(m["vocabSize"], d)
        self.wpe = nn.Embedding(m["blockSize"], d)
        self.blocks = nn.ModuleList(Block(d, m["nHead"], m["blockSize"]) for _ in range(m["nLayer"]))
        self.lnf = nn.LayerNorm(d, eps=1e-5)
        # Initialisation as gpt.ts: N(0, 0.02), residual projections / sqrt(2 nLayer), zero biases.
        for name, p in self.named_parameters():
            if p.dim() == 2:
                std = 0.02 / math.sqrt(2 * m["nLayer"]) if name.endswith(("proj.weight", "fc_proj.weight")) else 0.02
                nn.init.normal_(p, 0.0, std)
            elif name.endswith("bias"):
                nn.init.zeros_(p)

    def forward(self, idx, targets):
        B, T = idx.shape
        x = self.wte(idx) + self.wpe(torch.arange(T, device=idx.device))
        for block in self.blocks:
            x = block(x)
        logits = self.lnf(x) @ self.wte.weight.t()  # the tied head
        return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", required=True, help="models/presets/<name>.json")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--warmup", type=int, default=2, help="steps left out of the median")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(1337)
    preset = json.load(open(args.preset))
    m = preset["model"]
    train = {"batchSize": 16, "microBatchSize": 16, "learningRate": 1e-3, "weightDecay": 0.1, "beta1": 0.9, "beta2": 0.95, "gradClip": 1.0}
    train.update(preset.get("train", {}))
    assert m.get("dropout", 0) == 0, "the reference has no dropout, as gpt.ts"
    B, T, V = train["batchSize"], m["blockSize"], m["vocabSize"]
    micro = train["microBatchSize"]

    model = GPT(m)
    params = sum(p.numel() for p in model.parameters())  # the tied head counts once, as countParameters()
    decay = [p for p in model.parameters() if p.dim() == 2]
    no_decay = [p for p in model.parameters() if p.dim() != 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": train["weightDecay"]}, {"params": no_decay, "weight_decay": 0.0}],
        lr=train["learningRate"], betas=(train["beta1"], train["beta2"]), eps=1e-8,
    )

    per_step = []
    losses = []
    for step in range(args.steps):
        started = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        for _ in range(B // micro):  # gradient accumulation over micro-batches, as train.ts
            x = torch.randint(0, V, (micro, T))
            y = torch.randint(0, V, (micro, T))
            loss = model(x, y) * (micro / B)
            loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), train["gradClip"])
        opt.step()
        losses.append(loss.item() * B / micro)
        per_step.append(B * T / (time.perf_counter() - started))

    tokens_per_second = statistics.median(per_step[args.warmup:] or per_step)
    flops_per_token = 6 * params + 12 * m["nLayer"] * m["nEmbd"] * T
    print(json.dumps({
        "config": f"{preset.get('name', '?')}, PyTorch {args.threads} threads",
        "engine": f"torch {torch.__version__} (CPU, {torch.get_num_threads()} threads)",
        "python": platform.python_version(),
        "parameters": params,
        "batchSize": B,
        "microBatchSize": micro,
        "blockSize": T,
        "steps": args.steps,
        "tokensPerSecond": round(tokens_per_second),
        "gflopsPerSecond": round(tokens_per_second * flops_per_token / 1e9, 2),
        "peakRssMB": round(peak_rss_mb()),
        "firstLoss": round(losses[0], 3),  # ~ln(vocab) from this initialisation
        "threadsEnv": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OMP_WAIT_POLICY") if os.environ.get(k)},
    }))


if __name__ == "__main__":
    main()
