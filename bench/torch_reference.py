#!/usr/bin/env python3
"""PyTorch CPU reference for rmt's benchmarks (bench/compare.ts runs it; prints one JSON document).

It loads the very model folders rmt wrote (config.json names Qwen2ForCausalLM; the weights are
float32 safetensors) with transformers, in float32, on all CPU cores, and times what the rmt
side times, with the same shapes:

  train_step   forward + mean cross-entropy + backward + global-norm clip (1.0) + AdamW
               (lr 1e-4, betas 0.9/0.999, eps 1e-8, weight decay 0.01) on B x T random tokens
  generation   greedy, a Python loop with a KV cache: one forward over the [B, P] prompts,
               then one forward per new token on [B, 1] with past_key_values; the prompts are
               the formula of bench/generation.ts (promptIds), so row 0 can be compared
  entropy      the scoring pass: one no-grad forward over S sequences of L tokens, log-prob of
               each next token and the top-16 entropy (as lib/model/score.ts)
  matmul       numpy float32 (the machine's BLAS: the ceiling) and torch, square products

With --device cuda everything runs on the GPU instead, in float32 with TF32 off (PyTorch eager
f32, the GPU targets of issue #6), each timing closed by torch.cuda.synchronize(); the report
then gives the card's FP32 peak (SMs x FP32 lanes per SM x 2 x the highest SM clock) and numpy
is not timed.

Usage: python3 bench/torch_reference.py --model tiny=DIR [--model small=DIR] [--quick]
       [--train-shape B,T] [--gen-shape B,P,N] [--entropy-shape S,L] [--matmul-sizes N,..]
       [--device cpu|cuda]
       python3 bench/torch_reference.py --model tiny=DIR --smallest   (seconds: for tests)
The default shapes are those of bench/train_step.ts, generation.ts and entropy.ts.
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

import numpy as np
import torch
from transformers import AutoModelForCausalLM
import transformers
from transformers.utils import logging as hf_logging

TOP_K = 16
DEVICE = torch.device("cpu")  # set by --device
hf_logging.set_verbosity_error()
hf_logging.disable_progress_bar()


def sync():
    """Waits for the GPU's queued work (a no-op on the CPU)."""
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()


def median_ms(fn, runs):
    """Median wall-clock milliseconds of `runs` calls of fn (after the caller's warm-up), the
    list of them, and the process CPU milliseconds per call (all threads)."""
    times = []
    cpu_start = time.process_time()
    for _ in range(runs):
        sync()
        start = time.perf_counter()
        fn()
        sync()
        times.append((time.perf_counter() - start) * 1000)
    cpu_ms = (time.process_time() - cpu_start) * 1000 / runs
    return statistics.median(times), times, cpu_ms


def load(model_dir):
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    return model.to(DEVICE)


def bench_train_step(model_dir, preset, batch, seq_len, steps):
    model = load(model_dir)
    model.train()
    vocab = model.config.vocab_size
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=1e-4, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01
    )
    generator = torch.Generator().manual_seed(7)
    losses = []

    def step():
        ids = torch.randint(0, vocab, (batch, seq_len + 1), generator=generator).to(DEVICE)
        logits = model(input_ids=ids[:, :-1]).logits
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, vocab), ids[:, 1:].reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())

    step()  # warm-up
    ms, times, cpu_ms = median_ms(step, steps)
    return {
        "preset": preset,
        "parameters": sum(p.numel() for p in model.parameters()),
        "batchSize": batch,
        "seqLen": seq_len,
        "tokensPerStep": batch * seq_len,
        "steps": steps,
        "ms": round(ms, 1),
        "tokensPerSecond": round(batch * seq_len / (ms / 1000), 1),
        "minMs": round(min(times), 1),
        "maxMs": round(max(times), 1),
        "cpuMs": round(cpu_ms, 1),
        "lossFirst": round(losses[1], 4),
        "lossLast": round(losses[-1], 4),
    }


def prompt_ids(batch, prompt_len, vocab):
    """bench/generation.ts promptIds: prompt r, token j = (131 r + 17 j + 5) mod V."""
    return torch.tensor(
        [[(r * 131 + j * 17 + 5) % vocab for j in range(prompt_len)] for r in range(batch)],
        device=DEVICE,
    )


def greedy_generate(model, prompts, new_tokens):
    """The Python loop: prefill, then one [B, 1] forward per token with the KV cache."""
    with torch.inference_mode():
        out = model(input_ids=prompts, use_cache=True)
        past = out.past_key_values
        token = out.logits[:, -1].argmax(-1)
        generated = [token]
        for _ in range(1, new_tokens):
            out = model(input_ids=token[:, None], past_key_values=past, use_cache=True)
            past = out.past_key_values
            token = out.logits[:, -1].argmax(-1)
            generated.append(token)
    return torch.stack(generated, dim=1)


def bench_generation(model_dir, preset, batch, prompt_len, new_tokens, runs):
    model = load(model_dir)
    model.eval()
    prompts = prompt_ids(batch, prompt_len, model.config.vocab_size)
    greedy_generate(model, prompts, 2)  # warm-up
    prefill_ms = median_ms(lambda: greedy_generate(model, prompts, 1), 1)[0]
    result = {}

    def run():
        result["tokens"] = greedy_generate(model, prompts, new_tokens)

    ms, _, cpu_ms = median_ms(run, runs)
    return {
        "preset": preset,
        "batch": batch,
        "promptLen": prompt_len,
        "newTokens": new_tokens,
        "runs": runs,
        "ms": round(ms, 1),
        "tokensPerSecond": round(batch * new_tokens / (ms / 1000), 1),
        "prefillMs": round(prefill_ms, 1),
        "decodeStepMs": round((ms - prefill_ms) / max(1, new_tokens - 1), 2),
        "cpuMs": round(cpu_ms, 1),
        "firstRow": result["tokens"][0].tolist(),
    }


def bench_entropy(model_dir, preset, sequences, seq_len, runs):
    model = load(model_dir)
    model.eval()
    vocab = model.config.vocab_size
    generator = torch.Generator().manual_seed(3)
    ids = torch.randint(0, vocab, (sequences, seq_len), generator=generator).to(DEVICE)

    def score():
        with torch.inference_mode():
            logits = model(input_ids=ids).logits[:, :-1]  # row p predicts token p + 1
            logprobs = torch.log_softmax(logits, -1).gather(-1, ids[:, 1:, None])[..., 0]
            top = torch.log_softmax(logits.topk(TOP_K, -1).values, -1)
            entropy = -(top.exp() * top).sum(-1)
            return logprobs, entropy

    score()  # warm-up
    ms, _, cpu_ms = median_ms(score, runs)
    scored = sequences * (seq_len - 1)
    return {
        "preset": preset,
        "sequences": sequences,
        "seqLen": seq_len,
        "k": TOP_K,
        "runs": runs,
        "ms": round(ms, 1),
        "tokensPerSecond": round(scored / (ms / 1000), 1),
        "cpuMs": round(cpu_ms, 1),
    }


def bench_matmul(sizes):
    """Square float32 products: numpy (its BLAS; CPU only) and torch on the device; GFLOP/s of
    the median of 3."""
    results = []
    for n in sizes:
        rng = np.random.default_rng(1)
        a = rng.standard_normal((n, n), dtype=np.float32)
        b = rng.standard_normal((n, n), dtype=np.float32)
        ta, tb = torch.from_numpy(a).to(DEVICE), torch.from_numpy(b).to(DEVICE)
        row = {"n": n, "numpyGflops": None}
        products = [("torch", lambda: ta @ tb)]
        if DEVICE.type == "cpu":
            products.insert(0, ("numpy", lambda: a @ b))
        for name, fn in products:
            fn()
            once = median_ms(fn, 1)[0]
            reps = max(1, min(100, round(300 / max(once, 1e-3))))
            if DEVICE.type == "cuda":
                # A sync per product would add its latency to each one: time `reps` products
                # between two syncs, as rmt's matmul benchmark records them into one submit.
                batch = lambda: [fn() for _ in range(reps)]
                trials = [median_ms(batch, 1)[0] / reps for _ in range(3)]
            else:
                trials = [median_ms(fn, reps)[0] for _ in range(3)]
            ms = statistics.median(trials)
            row[f"{name}Ms"] = round(ms, 3)
            row[f"{name}Gflops"] = round(2 * n**3 / (ms * 1e6), 2)
        results.append(row)
    return results


def blas_info():
    """numpy's BLAS library as its build config reports it."""
    try:
        config = np.show_config(mode="dicts")
        blas = config["Build Dependencies"]["blas"]
        return {"name": blas.get("name"), "version": blas.get("version")}
    except Exception as error:  # older numpy: no dict mode
        return {"name": "unknown", "error": str(error)}


# FP32 lanes per SM by compute capability (NVIDIA's CUDA programming guide, "arithmetic
# instructions" throughput table: 32-bit floating-point add, multiply, multiply-add).
FP32_LANES_PER_SM = {(7, 0): 64, (7, 5): 64, (8, 0): 64, (8, 6): 128, (8, 7): 128, (8, 9): 128,
                     (9, 0): 128, (10, 0): 128, (12, 0): 128}


def gpu_info():
    """The card, and its FP32 peak: SMs x FP32 lanes per SM x 2 (an FMA) x the highest SM
    clock that nvidia-smi reports (None where a part is unknown)."""
    props = torch.cuda.get_device_properties(DEVICE)
    capability = (props.major, props.minor)
    lanes = FP32_LANES_PER_SM.get(capability)
    clock_mhz = None
    try:
        query = ["nvidia-smi", "--query-gpu=clocks.max.sm", "--format=csv,noheader,nounits",
                 f"--id={DEVICE.index or 0}"]
        clock_mhz = float(subprocess.run(query, capture_output=True, text=True, check=True)
                          .stdout.strip().splitlines()[0])
    except Exception:  # no nvidia-smi, or an answer that is not a number
        pass
    peak = None
    if lanes and clock_mhz:
        peak = round(props.multi_processor_count * lanes * 2 * clock_mhz * 1e6 / 1e12, 2)
    return {
        "name": props.name,
        "computeCapability": f"{props.major}.{props.minor}",
        "multiprocessors": props.multi_processor_count,
        "fp32LanesPerSm": lanes,
        "maxSmClockMhz": clock_mhz,
        "fp32PeakTflops": peak,
        "tf32": torch.backends.cuda.matmul.allow_tf32,
    }


def parse_models(specs):
    models = {}
    for spec in specs:
        preset, _, path = spec.partition("=")
        if not path:
            sys.exit(f"--model expects PRESET=DIR, got {spec!r}")
        models[preset] = path
    return models


def int_list(text):
    return [int(x) for x in text.split(",") if x]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add = parser.add_argument
    add("--model", action="append", default=[], help="PRESET=DIR (repeatable)")
    add("--quick", action="store_true", help="fewer repetitions")
    add("--smallest", action="store_true", help="tiny shapes and one repetition (tests)")
    add("--train-shape", type=int_list, default=[8, 128], help="B,T (default 8,128)")
    add("--gen-shape", type=int_list, default=[64, 16, 64], help="B,P,N (default 64,16,64)")
    add("--entropy-shape", type=int_list, default=[16, 128], help="S,L (default 16,128)")
    add("--matmul-sizes", type=int_list, default=None, help="default 1024 quick, else 256..2048")
    add("--steps", type=int, default=None, help="timed training steps (default 5, quick 2)")
    add("--runs", type=int, default=None, help="timed generation/entropy runs (default 2, quick 1)")
    add("--device", choices=["cpu", "cuda"], default="cpu", help="where PyTorch runs (default cpu)")
    args = parser.parse_args()
    global DEVICE
    DEVICE = torch.device(args.device)
    if DEVICE.type == "cuda":
        if not torch.cuda.is_available():
            sys.exit("--device cuda: torch sees no CUDA device")
        # PyTorch eager in f32: no TF32 in products or convolutions.
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    models = parse_models(args.model)
    if not models:
        sys.exit("give at least one --model PRESET=DIR")

    threads = os.cpu_count() or 1
    torch.set_num_threads(threads)
    if args.smallest:
        args.train_shape, args.gen_shape, args.entropy_shape = [2, 16], [2, 4, 3], [2, 16]
        args.matmul_sizes, args.steps, args.runs = args.matmul_sizes or [64], 1, 1
    steps = args.steps or (2 if args.quick else 5)
    runs = args.runs or (1 if args.quick else 2)
    sizes = args.matmul_sizes or ([1024] if args.quick else [256, 512, 1024, 2048])
    (batch, seq_len), (gen_batch, prompt_len, new_tokens) = args.train_shape, args.gen_shape
    sequences, entropy_len = args.entropy_shape

    started = time.time()
    report = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "numpy": np.__version__,
        "blas": blas_info(),
        "threads": torch.get_num_threads(),
        "cpuCount": threads,
        "device": args.device,
        "gpu": gpu_info() if DEVICE.type == "cuda" else None,
        "quick": args.quick,
        "matmul": bench_matmul(sizes),
        "train_step": [
            bench_train_step(d, p, batch, seq_len, steps) for p, d in models.items()
        ],
        "generation": [
            bench_generation(d, p, gen_batch, prompt_len, new_tokens, runs)
            for p, d in models.items()
        ],
        "entropy": [
            bench_entropy(d, p, sequences, entropy_len, runs) for p, d in models.items()
        ],
    }
    report["seconds"] = round(time.time() - started, 1)
    report["cpuSeconds"] = round(time.process_time(), 1)  # this process, all threads
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
