#!/usr/bin/python3
"""make_bert_fixture.py: an independent PyTorch reference of the BERT encoder
(src/text/bert.c, include/shelf/text.h), built from torch's own layers, and
the fixture tests/unit/test_text_bert.c compares our C encoder against.

Run (needs Debian's python3-torch, `apt-get install python3-torch`, which
installs for /usr/bin/python3 only):

    /usr/bin/python3 tests/ref/make_bert_fixture.py

It writes, in tests/ref/bert/ next to itself (committed, so the C test needs
no torch; rerun only when the model or the fixture's contents change; the
output is deterministic: fixed seed, CPU, float64 arithmetic):
  model.safetensors     a tiny random BERT under Hugging Face BertModel key
                        names (embeddings.*, encoder.layer.N.*, pooler.*),
                        all F32, torch Linear layout [out, in]
  config.json           the HF config the loader reads its head count from
  expected.safetensors  the inputs and the mean-pooled outputs:
                        cls, sep U32[1]; lens I64[N]; ids U32[N, maxlen]
                        (0xFFFFFFFF after each row's length); pooled F32[N, H]

The model, as Hugging Face's BertModel in eval mode (no dropout):
  x = LN(word[ids] + pos[0..T) + type[0])             LayerNorm eps 1e-12
  each layer: q, k, v = x Wq^T + bq, ...  (separate nn.Linear, HF layout)
              a = softmax(q_h k_h^T / sqrt(H/NH)) v_h per head, unmasked
              x = LN(x + a Wo^T + bo)
              x = LN(x + GELU_erf(x Wi^T + bi) Wo2^T + bo2)
  out = mean over the T tokens of x                   (all-ones mask)
with tokens [CLS] ids [SEP], ids truncated so that T <= P (max positions).
The attention is written with plain tensor ops and checked against
nn.MultiheadAttention loaded with the same weights (in_proj = [Wq; Wk; Wv]),
so a slip in the head split would show here first.

Arithmetic: the parameters are drawn as float32 (what the model file stores,
so the C side starts from the same values), then everything is computed in
float64 and rounded to float32 only when written.
"""
import json
import math
import os
import struct
import sys

import torch
import torch.nn as nn
import torch.nn.functional as Fn

# ---- configuration -----------------------------------------------------------------
V, H, L, NH, FF, P = 50, 16, 2, 4, 32, 24
STD = 0.2
SEED = 20261129
CLS, SEP = 2, 3
DT = torch.float64
EPS = 1e-12
PAD = 0xFFFFFFFF

# inputs: empty, one token, a short one, one that fills P exactly (22 + 2),
# one that must be truncated (30 ids -> the first 22)
g_in = torch.Generator().manual_seed(SEED + 1)
INPUTS = [[],
          [7],
          [11, 4, 4, 49, 0],
          torch.randint(0, V, (P - 2,), generator=g_in).tolist(),
          torch.randint(0, V, (30,), generator=g_in).tolist()]


class Layer(nn.Module):
    def __init__(self):
        super().__init__()
        self.query = nn.Linear(H, H)
        self.key = nn.Linear(H, H)
        self.value = nn.Linear(H, H)
        self.attn_out = nn.Linear(H, H)
        self.attn_ln = nn.LayerNorm(H, eps=EPS)
        self.inter = nn.Linear(H, FF)
        self.out = nn.Linear(FF, H)
        self.out_ln = nn.LayerNorm(H, eps=EPS)

    def attention(self, x):
        T = x.shape[0]
        hd = H // NH
        q = self.query(x).view(T, NH, hd).transpose(0, 1)  # [NH, T, hd]
        k = self.key(x).view(T, NH, hd).transpose(0, 1)
        v = self.value(x).view(T, NH, hd).transpose(0, 1)
        s = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(hd), dim=-1)
        return (s @ v).transpose(0, 1).reshape(T, H)

    def attention_mha(self, x):
        """The same attention through nn.MultiheadAttention (a cross-check)."""
        mha = nn.MultiheadAttention(H, NH, dropout=0.0, bias=True, batch_first=True).to(DT)
        with torch.no_grad():
            mha.in_proj_weight.copy_(torch.cat([self.query.weight, self.key.weight, self.value.weight]))
            mha.in_proj_bias.copy_(torch.cat([self.query.bias, self.key.bias, self.value.bias]))
            mha.out_proj.weight.copy_(torch.eye(H, dtype=DT))
            mha.out_proj.bias.zero_()
        y, _ = mha(x[None], x[None], x[None], need_weights=False)
        return y[0]

    def forward(self, x):
        x = self.attn_ln(x + self.attn_out(self.attention(x)))
        return self.out_ln(x + self.out(Fn.gelu(self.inter(x))))  # exact (erf) GELU


class Bert(nn.Module):
    def __init__(self):
        super().__init__()
        self.word = nn.Embedding(V, H)
        self.pos = nn.Embedding(P, H)
        self.ttype = nn.Embedding(2, H)
        self.ln = nn.LayerNorm(H, eps=EPS)
        self.layers = nn.ModuleList([Layer() for _ in range(L)])
        self.pooler = nn.Linear(H, H)  # in the file, unused by the encoder (as HF's pooler)

    def forward(self, ids):
        ids = [CLS] + ids[:P - 2] + [SEP]
        T = len(ids)
        x = self.word(torch.tensor(ids)) + self.pos(torch.arange(T)) + self.ttype(torch.zeros(T, dtype=torch.long))
        x = self.ln(x)
        for layer in self.layers:
            x = layer(x)
        return x.mean(dim=0)


def hf_names(m):
    """[(HF BertModel key, parameter)]."""
    out = [("embeddings.word_embeddings.weight", m.word.weight),
           ("embeddings.position_embeddings.weight", m.pos.weight),
           ("embeddings.token_type_embeddings.weight", m.ttype.weight),
           ("embeddings.LayerNorm.weight", m.ln.weight),
           ("embeddings.LayerNorm.bias", m.ln.bias)]
    for n, ly in enumerate(m.layers):
        p = "encoder.layer.%d." % n
        for key, mod in [("attention.self.query", ly.query), ("attention.self.key", ly.key),
                         ("attention.self.value", ly.value), ("attention.output.dense", ly.attn_out),
                         ("attention.output.LayerNorm", ly.attn_ln), ("intermediate.dense", ly.inter),
                         ("output.dense", ly.out), ("output.LayerNorm", ly.out_ln)]:
            out += [(p + key + ".weight", mod.weight), (p + key + ".bias", mod.bias)]
    out += [("pooler.dense.weight", m.pooler.weight), ("pooler.dense.bias", m.pooler.bias)]
    return out


def write_safetensors(path, tensors, meta):
    """tensors: [(name, dtype, shape, bytes)]. 8-byte LE header length, JSON
    header (space-padded to a multiple of 8), data with the 8-byte dtypes
    first (every tensor aligned to its element size)."""
    size = {"F32": 4, "U32": 4, "I64": 8}
    order = sorted(range(len(tensors)), key=lambda i: -size[tensors[i][1]])  # stable
    header, data, off = {}, bytearray(), 0
    for i in order:
        name, dt, shape, raw = tensors[i]
        header[name] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + len(raw)]}
        data += raw
        off += len(raw)
    header["__metadata__"] = meta
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((-len(text)) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        f.write(data)
    return 8 + len(text) + len(data)


def pack(name, dt, shape, values):
    fmt = {"F32": "f", "U32": "I", "I64": "q"}[dt]
    n = 1
    for s in shape:
        n *= s
    assert len(values) == n, name
    return (name, dt, list(shape), struct.pack("<%d%s" % (n, fmt), *values))


def main():
    torch.set_num_threads(1)  # small; deterministic
    torch.manual_seed(SEED)
    gen = torch.Generator().manual_seed(SEED)
    model = Bert().to(DT).eval()
    with torch.no_grad():
        for name, p in hf_names(model):
            v = torch.randn(tuple(p.shape), generator=gen, dtype=torch.float32) * STD
            if "LayerNorm.weight" in name:
                v = v + 1.0
            p.copy_(v.to(DT))  # float32 values, held in float64

    meta = {"generator": "tests/ref/make_bert_fixture.py", "torch": torch.__version__}
    with torch.no_grad():
        # the attention written by hand agrees with nn.MultiheadAttention
        x = torch.randn(7, H, generator=gen, dtype=torch.float32).to(DT)
        for ly in model.layers:
            d = (ly.attention(x) - ly.attention_mha(x)).abs().max().item()
            assert d < 1e-12, d
        pooled = [model(ids) for ids in INPUTS]
    for p in pooled:
        assert torch.isfinite(p).all()

    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bert")
    os.makedirs(here, exist_ok=True)

    weights = []
    for name, p in hf_names(model):
        t = p.detach().to(torch.float32).contiguous()
        weights.append(pack(name, "F32", list(t.shape), t.reshape(-1).tolist()))
    n1 = write_safetensors(os.path.join(here, "model.safetensors"), weights, meta)

    config = {"architectures": ["BertModel"], "model_type": "bert", "vocab_size": V, "hidden_size": H,
              "num_hidden_layers": L, "num_attention_heads": NH, "intermediate_size": FF,
              "max_position_embeddings": P, "type_vocab_size": 2, "hidden_act": "gelu",
              "layer_norm_eps": EPS, "position_embedding_type": "absolute"}
    with open(os.path.join(here, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")

    N = len(INPUTS)
    maxlen = max(len(ids) for ids in INPUTS)
    rows = [ids + [PAD] * (maxlen - len(ids)) for ids in INPUTS]
    exp = [pack("cls", "U32", [1], [CLS]), pack("sep", "U32", [1], [SEP]),
           pack("lens", "I64", [N], [len(ids) for ids in INPUTS]),
           pack("ids", "U32", [N, maxlen], [v for r in rows for v in r]),
           pack("pooled", "F32", [N, H], torch.stack(pooled).to(torch.float32).reshape(-1).tolist())]
    n2 = write_safetensors(os.path.join(here, "expected.safetensors"), exp, meta)

    print("torch", torch.__version__)
    print("input lengths", [len(ids) for ids in INPUTS], "P", P)
    print("pooled[0][:4]", " ".join("%.7f" % v for v in pooled[0][:4].tolist()))
    print("wrote %s/model.safetensors (%d bytes), config.json, expected.safetensors (%d bytes)" % (here, n1, n2))


if __name__ == "__main__":
    sys.exit(main())
