#!/usr/bin/python3
"""torch_sasrec.py: the PyTorch reference for the transformer's training
speed, run in the same bench run as shelf (bench/train_transformer.sh), so
the ratio of seconds per epoch comes from one machine at one time.

The configuration of BENCHMARKS.md's "PyTorch SASRec with full
cross-entropy": item embeddings of width 64 tied with the output layer,
learned positions, 2 pre-LayerNorm blocks with 1 attention head and a GELU
feed-forward of 256, dropout 0.5, maxlen 50, Adam 1e-3, batch 128, softmax
cross-entropy over the whole catalogue at every position. Training data as
shelf's LOO-FULL: each user's sequence without its last two items (those are
validation and test), the last maxlen+1 of them, one sequence per user per
epoch. Speed only: no evaluation.

usage: /usr/bin/python3 bench/torch_sasrec.py DATA.txt [--epochs 2] [--threads 2]
prints one JSON line: seconds per epoch (median), steps, loss per epoch."""
import argparse
import json
import statistics
import sys
import time

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError:
    sys.exit("torch_sasrec.py: PyTorch missing (apt-get install python3-torch)")


def load(path, maxlen):
    """s3rec lines 'user item item ...' (ids from 1) -> [U, maxlen+1] left-padded
    training sequences (the last two items held out) and the item count"""
    seqs, n_items = [], 0
    with open(path) as f:
        for line in f:
            ids = [int(x) for x in line.split()[1:]]
            if not ids:
                continue
            n_items = max(n_items, max(ids))
            train = ids[:-2]
            if len(train) < 2:
                continue
            train = train[-(maxlen + 1):]
            seqs.append([0] * (maxlen + 1 - len(train)) + train)
    return torch.tensor(seqs, dtype=torch.long), n_items


class Block(nn.Module):
    def __init__(self, d, ff, p):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.att = nn.MultiheadAttention(d, 1, dropout=p, batch_first=True)
        self.ff = nn.Sequential(nn.Linear(d, ff), nn.GELU(), nn.Dropout(p), nn.Linear(ff, d))
        self.drop = nn.Dropout(p)

    def forward(self, x, mask):
        h = self.ln1(x)
        a, _ = self.att(h, h, h, attn_mask=mask, need_weights=False)
        x = x + self.drop(a)
        return x + self.drop(self.ff(self.ln2(x)))


class SASRec(nn.Module):
    def __init__(self, n_items, d=64, ff=256, blocks=2, maxlen=50, p=0.5):
        super().__init__()
        self.item = nn.Embedding(n_items + 1, d, padding_idx=0)
        self.pos = nn.Embedding(maxlen, d)
        self.drop = nn.Dropout(p)
        self.blocks = nn.ModuleList(Block(d, ff, p) for _ in range(blocks))
        self.ln = nn.LayerNorm(d)
        nn.init.normal_(self.item.weight, std=d ** -0.5)

    def forward(self, seq):
        T = seq.shape[1]
        x = self.item(seq) * self.item.embedding_dim ** 0.5 + self.pos(torch.arange(T))
        x = self.drop(x)
        # [B, T, T] (one head): no future keys, no padded keys except the
        # query itself (a padded query would otherwise see no key: NaN)
        eye = torch.eye(T, dtype=torch.bool)
        mask = torch.triu(torch.ones(T, T, dtype=torch.bool), 1) | ((seq == 0)[:, None, :] & ~eye)
        for b in self.blocks:
            x = b(x, mask)
        return self.ln(x)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("data")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--maxlen", type=int, default=50)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    seqs, n_items = load(a.data, a.maxlen)
    model = SASRec(n_items, maxlen=a.maxlen)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    U = seqs.shape[0]
    times, losses, steps = [], [], 0
    for ep in range(a.epochs):
        model.train()
        t0 = time.perf_counter()
        perm, total, n = torch.randperm(U), 0.0, 0
        for i in range(0, U, a.batch):
            b = seqs[perm[i:i + a.batch]]
            inp, tgt = b[:, :-1], b[:, 1:]
            h = model(inp)
            mask = tgt != 0
            logits = h[mask] @ model.item.weight.T  # [rows, V]: the full catalogue
            loss = F.cross_entropy(logits, tgt[mask])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total, n, steps = total + loss.item(), n + 1, steps + 1
        times.append(time.perf_counter() - t0)
        losses.append(round(total / n, 5))
        print(f"torch epoch {ep + 1}: {times[-1]:.2f} s, loss {losses[-1]}", file=sys.stderr)
    print(json.dumps({"bench": "torch_sasrec_ce", "torch": torch.__version__, "threads": a.threads,
                      "users": U, "items": n_items, "epochs": a.epochs, "steps": steps,
                      "s_per_epoch": [round(t, 2) for t in times],
                      "s_per_epoch_median": round(statistics.median(times), 2), "loss": losses}))


if __name__ == "__main__":
    main()
