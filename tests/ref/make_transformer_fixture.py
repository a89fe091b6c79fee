#!/usr/bin/python3
"""make_transformer_fixture.py: an independent PyTorch reference of the
transformer profile model (src/models/transformer.c), built from torch's own
layers, and the fixture tests/unit/test_transformer_ref.c compares our C model
against.

Run (needs Debian's python3-torch, `apt-get install python3-torch`, which
installs for /usr/bin/python3 only):

    /usr/bin/python3 tests/ref/make_transformer_fixture.py

It writes tests/ref/transformer_fixture.safetensors next to itself. The
fixture is committed, so the C test needs no torch; rerun this only when the
model or the fixture's contents change (the output is deterministic for a
given torch build: fixed seed, CPU, float64 arithmetic).

The model (confirmed against transformer.c and transformer_int.h):
  E[i]  = wte[i] + mean_f wfe[f] over item i's features (nn.Embedding +
          nn.EmbeddingBag(mode='mean'); an item without features: wte alone)
  x     = E[item] + wpe[pos] + wtyp[type] + wgap[gap], zero at padding;
          pos counts from the row's first real item, gap bucket of event j =
          1 + min(30, floor(log2(1 + max(0, ts[j]-ts[j-1])))), 0 for the
          row's first real item
  L pre-LN causal blocks: x += proj(MHA(LN1(x))); x += fc2(GELU_tanh(fc1(LN2(x))))
  h = LNf(x); logits = h @ E^T; loss = mean cross-entropy over the positions
  with a target (every real position j < len-1 predicts item j+1).
Padded query rows have no allowed key in our model (its attention writes
zeros there); here they attend to themselves only (no NaN). They carry no
loss and no real query sees them, so the gradients do not depend on what
they compute: the script checks that by recomputing the gradients with a
different rule for padded queries (plain causal over the padding) and
asserting they are bit-identical.

Arithmetic: the parameters are drawn as float32 (what the fixture stores, so
the C side starts from exactly the same values), then everything is computed
in float64 and rounded to float32 only when written: the fixture is the
"exact" answer and the C model's float32 rounding is all the test measures.

AdamW: torch.optim.AdamW (betas 0.9/0.999, eps 1e-8) with weight decay on
the 2-D tensors only, torch.nn.utils.clip_grad_norm_ before each step, 5
steps at a constant lr; the loss of each step is the one computed before its
update. (clip_grad_norm_ scales by max/(norm + 1e-6), ours by max/norm: a
relative difference of ~1e-6/norm in the step, negligible.)

Fixture contents (safetensors, written by hand; dtypes our reader takes):
  config.<key> I64[1]  n_items n_types n_feats layers heads dim ffn maxlen B len
  items U32[B,len] (0xFFFFFFFF: padding), types I32[B,len], ts I64[B,len]
  feat_off U64[I+1], feat_col U32[nnz]
  <name>         every parameter, under OUR name and layout ([in,out] weights)
  logits F32[B*(len-1), I] (zeros at padding positions), loss F32[1]
  grad.<name>    the gradient of the mean loss
  adamw.lr adamw.wd adamw.clip F32[1]; adamw_gnorm F32[5] (the gradient norm
  before clipping at each step); adamw_losses F32[5]; after.<name> the
  parameters after the 5 steps.
"""
import json
import os
import struct
import sys

import torch
import torch.nn as nn
import torch.nn.functional as Fn

PAD = 0xFFFFFFFF
NGAP = 32

# ---- configuration -----------------------------------------------------------------
I, NTYPES, NF = 12, 3, 7
L, NH, C, FF, T = 2, 2, 8, 16, 5
B, LEN = 3, 6
STD = 0.3
SEED = 20261128
LR, WD, CLIP, STEPS = 0.01, 0.1, 1.3, 5
DT = torch.float64

# item features: 0..3 per item (i % 4), distinct within an item, all 7 used
feat_off, feat_col = [0], []
for i in range(I):
    for j in range(i % 4):
        feat_col.append((i * 3 + j * 2) % NF)
    feat_off.append(len(feat_col))
assert sorted(set(feat_col)) == list(range(NF))

# inputs: row 0 starts with 2 padding events; one out-of-order timestamp
# (gap clamps to 0: bucket 1) and one huge gap (bucket 31) for coverage
items = [[PAD, PAD, 3, 7, 3, 11],
         [0, 5, 9, 2, 5, 1],
         [10, 4, 4, 8, 6, 0]]
types = [[0, 0, 1, 2, 0, 1],
         [2, 0, 0, 1, 1, 2],
         [1, 1, 2, 0, 2, 0]]
ts = [[0, 0, 1000, 1000, 1060, 5000],
      [50, 49, 300, 300 + (1 << 40), 300 + (1 << 40) + 7, 300 + (1 << 40) + 100000],
      [7, 8, 10, 100, 100000, 100003]]


def gap_bucket(d):
    d = max(0, d)
    return 1 + min(NGAP - 2, (d + 1).bit_length() - 1)


# per input position (B rows of LEN-1 columns): item, type, pos, gap, target
N = B * (LEN - 1)
idx, typ, pos, gap, tgt, valid, pad_len = [], [], [], [], [], [], []
for r in range(B):
    j0 = 0
    while j0 < LEN and items[r][j0] == PAD:
        j0 += 1
    pad_len.append(j0)
    for k in range(LEN - 1):
        real = k >= j0
        valid.append(real)
        idx.append(items[r][k] if real else 0)
        typ.append(types[r][k] if real else 0)
        pos.append(k - j0 if real else 0)
        gap.append((0 if k == j0 else gap_bucket(ts[r][k] - ts[r][k - 1])) if real else 0)
        tgt.append(items[r][k + 1] if real else 0)
idx_t, typ_t, pos_t, gap_t = (torch.tensor(v) for v in (idx, typ, pos, gap))
valid_t = torch.tensor(valid)
tgt_t = torch.tensor(tgt)


def attn_mask(pad_rule):
    """Float mask [B*NH, T', T'] (-inf: not allowed): causal, padded keys
    masked. Padded queries: 'self' attend to themselves only, 'causal' to
    every key s <= t (padding included)."""
    Tn = LEN - 1
    m = torch.full((B, Tn, Tn), float("-inf"), dtype=DT)
    for r in range(B):
        p = pad_len[r]
        for t in range(Tn):
            for s in range(t + 1):
                if t < p:
                    if pad_rule == "causal" or s == t:
                        m[r, t, s] = 0.0
                elif s >= p:
                    m[r, t, s] = 0.0
    return m.repeat_interleave(NH, dim=0)  # batch-major, heads inner (torch's layout)


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln1 = nn.LayerNorm(C, eps=1e-5)
        self.attn = nn.MultiheadAttention(C, NH, dropout=0.0, bias=True, batch_first=True)
        self.ln2 = nn.LayerNorm(C, eps=1e-5)
        self.fc1 = nn.Linear(C, FF)
        self.fc2 = nn.Linear(FF, C)
        self.act = nn.GELU(approximate="tanh")

    def forward(self, x, mask):
        a = self.ln1(x)
        y, _ = self.attn(a, a, a, attn_mask=mask, need_weights=False)
        x = x + y
        return x + self.fc2(self.act(self.fc1(self.ln2(x))))


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.wte = nn.Embedding(I, C)
        self.wfe = nn.EmbeddingBag(NF, C, mode="mean")
        self.wpe = nn.Embedding(T, C)
        self.wtyp = nn.Embedding(NTYPES, C)
        self.wgap = nn.Embedding(NGAP, C)
        self.h = nn.ModuleList([Block() for _ in range(L)])
        self.lnf = nn.LayerNorm(C, eps=1e-5)
        self.register_buffer("f_col", torch.tensor(feat_col, dtype=torch.long))
        self.register_buffer("f_off", torch.tensor(feat_off[:-1], dtype=torch.long))

    def item_table(self):
        return self.wte.weight + self.wfe(self.f_col, self.f_off)  # empty bags: zeros

    def forward(self, mask):
        E = self.item_table()
        x = E[idx_t] + self.wpe(pos_t) + self.wtyp(typ_t) + self.wgap(gap_t)
        x = x * valid_t.unsqueeze(1).to(DT)  # zero at padding
        x = x.view(B, LEN - 1, C)
        for blk in self.h:
            x = blk(x, mask)
        h = self.lnf(x).reshape(N, C)
        logits = h @ E.t()
        loss = Fn.cross_entropy(logits[valid_t], tgt_t[valid_t])
        return loss, logits * valid_t.unsqueeze(1).to(DT)


# ---- our names and layouts ----------------------------------------------------------
def ours(model):
    """[(name, getter)] in the C model's declaration order; getter(tensor_of)
    maps a per-parameter function (.data or .grad) to OUR layout."""
    out = [("wte", lambda f: f(model.wte.weight)),
           ("wfe", lambda f: f(model.wfe.weight)),
           ("wpe", lambda f: f(model.wpe.weight)),
           ("wtyp", lambda f: f(model.wtyp.weight)),
           ("wgap", lambda f: f(model.wgap.weight))]
    for l, b in enumerate(model.h):
        p = "h%d." % l
        out += [(p + "ln1.w", lambda f, b=b: f(b.ln1.weight)),
                (p + "ln1.b", lambda f, b=b: f(b.ln1.bias)),
                (p + "qkv.w", lambda f, b=b: f(b.attn.in_proj_weight).t()),
                (p + "qkv.b", lambda f, b=b: f(b.attn.in_proj_bias)),
                (p + "proj.w", lambda f, b=b: f(b.attn.out_proj.weight).t()),
                (p + "proj.b", lambda f, b=b: f(b.attn.out_proj.bias)),
                (p + "ln2.w", lambda f, b=b: f(b.ln2.weight)),
                (p + "ln2.b", lambda f, b=b: f(b.ln2.bias)),
                (p + "fc1.w", lambda f, b=b: f(b.fc1.weight).t()),
                (p + "fc1.b", lambda f, b=b: f(b.fc1.bias)),
                (p + "fc2.w", lambda f, b=b: f(b.fc2.weight).t()),
                (p + "fc2.b", lambda f, b=b: f(b.fc2.bias))]
    out += [("lnf.w", lambda f: f(model.lnf.weight)), ("lnf.b", lambda f: f(model.lnf.bias))]
    return out


def snapshot(model, what):
    f = (lambda p: p.detach()) if what == "data" else (lambda p: p.grad.detach())
    return {n: g(f).contiguous().to(torch.float32).clone() for n, g in ours(model)}


def init(model, gen):
    """Parameters ~ N(0, STD^2) drawn in float32 (LayerNorm gains 1 + N(0,
    STD^2)), written through our layout."""
    with torch.no_grad():
        for name, g in ours(model):
            view = g(lambda p: p)  # a view of the parameter, in our layout
            v = torch.randn(tuple(view.shape), generator=gen, dtype=torch.float32) * STD
            if name.endswith("ln1.w") or name.endswith("ln2.w") or name == "lnf.w":
                v = v + 1.0
            view.copy_(v.to(DT))


def main():
    torch.manual_seed(SEED)
    gen = torch.Generator().manual_seed(SEED)
    model = Model().to(DT)
    init(model, gen)
    params0 = snapshot(model, "data")
    mask = attn_mask("self")

    # forward + backward at the initial parameters
    model.zero_grad()
    loss, logits = model(mask)
    loss.backward()
    grads = snapshot(model, "grad")
    for n, g in grads.items():
        assert torch.isfinite(g).all(), n

    # padded queries do not matter: same gradients with another rule for them
    model.zero_grad()
    loss2, logits2 = model(attn_mask("causal"))
    loss2.backward()
    grads2 = snapshot(model, "grad")
    assert loss2.item() == loss.item()
    assert torch.equal(logits2, logits)
    for n in grads:
        assert torch.equal(grads[n], grads2[n]), "padded queries leak into the gradient of " + n

    # AdamW: decay on the 2-D tensors only, global clipping, constant lr
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": WD}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=LR, betas=(0.9, 0.999), eps=1e-8)
    losses, norms = [], []
    for _ in range(STEPS):
        opt.zero_grad()
        l, _ = model(mask)
        l.backward()
        norms.append(float(torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP)))
        losses.append(float(l))
        opt.step()
    after = snapshot(model, "data")

    tensors = []  # (name, dtype, shape, bytes)

    def put(name, dt, shape, values):
        fmt = {"F32": "f", "I32": "i", "U32": "I", "I64": "q", "U64": "Q"}[dt]
        flat = list(values)
        n = 1
        for s in shape:
            n *= s
        assert len(flat) == n, name
        tensors.append((name, dt, list(shape), struct.pack("<%d%s" % (n, fmt), *flat)))

    def put_f32(name, t):
        t = t.detach().to(torch.float32).contiguous()
        put(name, "F32", list(t.shape), t.reshape(-1).tolist())

    cfg = {"n_items": I, "n_types": NTYPES, "n_feats": NF, "layers": L, "heads": NH, "dim": C, "ffn": FF,
           "maxlen": T, "B": B, "len": LEN}
    for k, v in cfg.items():
        put("config." + k, "I64", [1], [v])
    put("items", "U32", [B, LEN], [v for row in items for v in row])
    put("types", "I32", [B, LEN], [v for row in types for v in row])
    put("ts", "I64", [B, LEN], [v for row in ts for v in row])
    put("feat_off", "U64", [I + 1], feat_off)
    put("feat_col", "U32", [len(feat_col)], feat_col)
    for n, t in params0.items():
        put_f32(n, t)
    put_f32("logits", logits)
    put("loss", "F32", [1], [loss.item()])
    for n, t in grads.items():
        put_f32("grad." + n, t)
    put("adamw.lr", "F32", [1], [LR])
    put("adamw.wd", "F32", [1], [WD])
    put("adamw.clip", "F32", [1], [CLIP])
    put("adamw_gnorm", "F32", [STEPS], norms)
    put("adamw_losses", "F32", [STEPS], losses)
    for n, t in after.items():
        put_f32("after." + n, t)

    # safetensors: 8-byte LE header length, JSON header (space-padded to a
    # multiple of 8), data with the 8-byte dtypes first (every tensor aligned)
    size = {"F32": 4, "I32": 4, "U32": 4, "I64": 8, "U64": 8}
    order = sorted(range(len(tensors)), key=lambda i: -size[tensors[i][1]])  # stable
    header, data, off = {}, bytearray(), 0
    for i in order:
        name, dt, shape, raw = tensors[i]
        header[name] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + len(raw)]}
        data += raw
        off += len(raw)
    header["__metadata__"] = {"generator": "tests/ref/make_transformer_fixture.py", "torch": torch.__version__}
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((-len(text)) % 8)
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "transformer_fixture.safetensors")
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        f.write(data)

    print("torch", torch.__version__)
    print("loss %.7f" % loss.item())
    print("adamw losses", " ".join("%.7f" % v for v in losses))
    print("grad norms before clipping", " ".join("%.4f" % v for v in norms), "(clip %g)" % CLIP)
    print("max |grad| per tensor:", " ".join("%s=%.2e" % (n, g.abs().max().item()) for n, g in grads.items()))
    print("wrote %s (%d tensors, %d bytes)" % (path, len(tensors), 8 + len(text) + len(data)))


if __name__ == "__main__":
    sys.exit(main())
