"""Runs tiny Hugging Face checkpoints for tests/model/transformer_ref_test.ts.

usage: python3 hf_forward.py DIR BATCH_JSON OUT [DIR BATCH_JSON OUT ...]

Each triple is one model (all in one process, so torch starts once):
  DIR         a model folder in the HF layout (config.json, model.safetensors)
  BATCH_JSON  {"ids": [[...], ...], "targets": [[...], ...], "loss_weights": [[...], ...]}
              ragged: one list per sequence, all three with the same lengths
  OUT         a safetensors file written with, for each dtype in (f32, f64):
                <dtype>.logits              [B, T, V] right-padded, attention_mask on the padding
                <dtype>.loss                [1] sum(w * -log softmax(logits)[target]) / sum(w)
                <dtype>.grad.<param name>   d loss / d parameter (tied: embed_tokens only)
The model is loaded with AutoModelForCausalLM.from_pretrained (attn_implementation="eager"),
once in float32 and once in float64. Loading fails if any checkpoint tensor is missing or
unexpected, so a naming mistake cannot hide behind HF's random init.

The float32 run is transformers exactly as shipped. In a float64 model transformers still
computes three things in float32: RMSNorm, the attention softmax and RoPE's cos/sin. The
float64 run replaces those three (see `all_f64`) with the same formulas in float64, so that
its result is the architecture's math to ~1e-13 and a tight comparison can catch mistakes far
below float32 rounding (an eps in the wrong place, a slightly wrong scale). RoPE's angle stays
float32, as transformers computes it (and as lib/ref/rope.ts reproduces).
"""

import json
import sys
import types

import torch
import transformers
from safetensors.torch import save_file


def load(folder: str, dtype: torch.dtype):
    # transformers 5 calls the argument dtype; 4.x torch_dtype.
    major = int(transformers.__version__.split(".")[0])
    dtype_arg = {"dtype": dtype} if major >= 5 else {"torch_dtype": dtype}
    model, info = transformers.AutoModelForCausalLM.from_pretrained(
        folder, attn_implementation="eager", output_loading_info=True, **dtype_arg
    )
    problems = {key: value for key, value in info.items() if value}
    if problems:
        raise SystemExit(f"hf_forward.py: {folder}: loading problems: {problems}")
    model.eval()
    return model


def rms_norm_f64(self, x):
    """HF's RMSNorm without the cast to float32."""
    variance = x.pow(2).mean(-1, keepdim=True)
    return self.weight * (x * torch.rsqrt(variance + self.variance_epsilon))


def rotary_f64(self, x, position_ids):
    """HF's default RoPE: the angle in float32 as HF computes it, its cos/sin in float64."""
    inv_freq = self.inv_freq.float()  # [D/2]
    angles = position_ids.float()[:, :, None] * inv_freq[None, None, :]  # [B, T, D/2] f32
    emb = torch.cat((angles, angles), dim=-1).double()
    scaling = self.attention_scaling
    return (emb.cos() * scaling).to(x.dtype), (emb.sin() * scaling).to(x.dtype)


def eager_attention_f64(module, query, key, value, attention_mask, scaling, dropout=0.0, **kwargs):
    """HF's eager attention with the softmax in the input dtype instead of float32."""
    groups = module.num_key_value_groups
    key = key.repeat_interleave(groups, dim=1)  # [B, Hq, T, D]
    value = value.repeat_interleave(groups, dim=1)
    weights = torch.matmul(query, key.transpose(2, 3)) * scaling  # [B, Hq, T, T]
    if attention_mask is not None:
        weights = weights + attention_mask[:, :, :, : key.shape[-2]]
    weights = torch.softmax(weights, dim=-1)
    return torch.matmul(weights, value).transpose(1, 2).contiguous(), weights


def all_f64(model):
    """
    Swaps in the float64 versions above; fails if the model's modules are not found. Returns
    a function that puts the modeling files' eager attention back (the norms and rotary are
    patched on this model's instances only).
    """
    found = {"RMSNorm": 0, "RotaryEmbedding": 0, "Attention": 0}
    originals = {}
    for module in model.modules():
        name = type(module).__name__
        if name.endswith("RMSNorm"):
            module.forward = types.MethodType(rms_norm_f64, module)
            found["RMSNorm"] += 1
        elif name.endswith("RotaryEmbedding"):
            module.forward = types.MethodType(rotary_f64, module)
            found["RotaryEmbedding"] += 1
        elif name.endswith("Attention"):
            # The attention forward looks eager_attention_forward up in its module's globals.
            modeling = sys.modules[type(module).__module__]
            if not hasattr(modeling, "eager_attention_forward"):
                raise SystemExit(f"hf_forward.py: {modeling.__name__}: no eager_attention_forward")
            originals.setdefault(modeling, modeling.eager_attention_forward)
            modeling.eager_attention_forward = eager_attention_f64
            found["Attention"] += 1
    if not all(found.values()):
        raise SystemExit(f"hf_forward.py: cannot make the model float64 throughout: found {found}")

    def restore() -> None:
        for modeling, original in originals.items():
            modeling.eager_attention_forward = original

    return restore


def pad(rows, value, length):
    return [list(r) + [value] * (length - len(r)) for r in rows]


def run(folder: str, batch_path: str, out_path: str) -> None:
    with open(batch_path) as f:
        batch = json.load(f)
    ids = batch["ids"]
    time = max(len(s) for s in ids)
    input_ids = torch.tensor(pad(ids, 0, time), dtype=torch.long)
    mask = torch.tensor(pad([[1] * len(s) for s in ids], 0, time), dtype=torch.long)
    targets = torch.tensor(pad(batch["targets"], 0, time), dtype=torch.long)
    result = {}
    for tag, dtype in (("f32", torch.float32), ("f64", torch.float64)):
        model = load(folder, dtype)
        restore = all_f64(model) if dtype == torch.float64 else lambda: None
        try:
            weights = torch.tensor(pad(batch["loss_weights"], 0, time), dtype=dtype)
            logits = model(input_ids=input_ids, attention_mask=mask).logits  # [B, T, V]
            logprob = torch.log_softmax(logits, dim=-1).gather(-1, targets[..., None])[..., 0]
            loss = -(weights * logprob).sum() / weights.sum()
            loss.backward()
        finally:
            restore()
        result[f"{tag}.logits"] = logits.detach().contiguous()
        result[f"{tag}.loss"] = loss.detach().reshape(1)
        for name, parameter in model.named_parameters():
            result[f"{tag}.grad.{name}"] = parameter.grad.detach().contiguous()
    save_file(result, out_path, metadata={"format": "pt", "transformers": transformers.__version__})


def main() -> None:
    args = sys.argv[1:]
    if len(args) == 0 or len(args) % 3 != 0:
        raise SystemExit(__doc__)
    torch.set_num_threads(1)
    for i in range(0, len(args), 3):
        run(*args[i : i + 3])


if __name__ == "__main__":
    main()
