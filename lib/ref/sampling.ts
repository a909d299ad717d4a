// Reference sampler: the Philox4x32-10 uniforms bit-exactly as the GPU draws them, and the
// sampling distribution (temperature, top-k, top-p in Hugging Face's order) in f64.
// See kernels/sampling.wgsl for the definitions this mirrors.

// ---- Philox4x32-10 (u32 arithmetic with Math.imul and >>> 0) -----------------------------

const PHILOX_M0 = 0xd2511f53;
const PHILOX_M1 = 0xcd9e8d57;
const PHILOX_W0 = 0x9e3779b9;
const PHILOX_W1 = 0xbb67ae85;

/** The 64-bit product a·b of two u32 as [high word, low word]. */
function mulhilo(a: number, b: number): [number, number] {
  const aLo = a & 0xffff;
  const aHi = a >>> 16;
  const bLo = b & 0xffff;
  const bHi = b >>> 16;
  const loLo = aLo * bLo;
  const loHi = aLo * bHi;
  const hiLo = aHi * bLo;
  const carry = (loLo >>> 16) + (loHi & 0xffff) + (hiLo & 0xffff);
  const hi = aHi * bHi + (loHi >>> 16) + (hiLo >>> 16) + (carry >>> 16); // < 2^32, exact
  return [hi, Math.imul(a, b) >>> 0];
}

/** Philox4x32 with 10 rounds (Random123's philox4x32): counter [4] u32, key [2] u32 → [4] u32. */
export function philox4x32_10(
  counter: readonly number[],
  key: readonly number[],
): [number, number, number, number] {
  let [c0, c1, c2, c3] = counter.map((x) => x >>> 0);
  let [k0, k1] = key.map((x) => x >>> 0);
  for (let round = 0; round < 10; round++) {
    if (round > 0) {
      k0 = (k0 + PHILOX_W0) >>> 0;
      k1 = (k1 + PHILOX_W1) >>> 0;
    }
    const [hi0, lo0] = mulhilo(PHILOX_M0, c0);
    const [hi1, lo1] = mulhilo(PHILOX_M1, c2);
    [c0, c1, c2, c3] = [(hi1 ^ c1 ^ k0) >>> 0, lo1, (hi0 ^ c3 ^ k1) >>> 0, lo0];
  }
  return [c0, c1, c2, c3];
}

/** Row `row`'s uniform in [0, 1) for (seed, step): 24 bits of Philox word 0, exact in f32. */
export function philoxUniform(seed: number, step: number, row: number): number {
  const key = [seed % 2 ** 32, Math.floor(seed / 2 ** 32)];
  const [word] = philox4x32_10([row, step, 0, 0], key);
  return (word >>> 8) / 2 ** 24;
}

// ---- the sampling distribution ------------------------------------------------------------

export interface SamplingOptions {
  temperature: number;
  topK?: number;
  topP?: number;
}

/** Index of the largest logit, the smallest index among ties. */
export function argmax(logits: ArrayLike<number>): number {
  let best = 0;
  for (let j = 1; j < logits.length; j++) if (logits[j] > logits[best]) best = j;
  return best;
}

/**
 * The distribution a row is drawn from, over all V ids (0 outside the kept set), f64:
 * T = 0: one-hot at the argmax. Otherwise w_j = exp(x_j/T − max); top-k keeps x_j ≥ the k-th
 * largest logit; top-p then keeps j iff the mass of kept tokens with a strictly larger logit is
 * < p · (kept mass); the kept weights are renormalised.
 */
export function samplingDistribution(
  logits: ArrayLike<number>,
  { temperature, topK = 0, topP = 1 }: SamplingOptions,
): Float64Array {
  const vocab = logits.length;
  const probs = new Float64Array(vocab);
  if (temperature === 0) {
    probs[argmax(logits)] = 1;
    return probs;
  }
  const maxScaled = logits[argmax(logits)] / temperature;
  const kept = new Array<boolean>(vocab).fill(true);
  for (let j = 0; j < vocab; j++) probs[j] = Math.exp(logits[j] / temperature - maxScaled);

  if (topK > 0 && topK < vocab) {
    const kth = Array.from(logits).sort((a, b) => b - a)[topK - 1];
    for (let j = 0; j < vocab; j++) if (logits[j] < kth) kept[j] = false;
  }
  if (topP < 1) {
    let keptMass = 0;
    for (let j = 0; j < vocab; j++) if (kept[j]) keptMass += probs[j];
    // Walk the kept ids from the largest logit down, a group of equal logits at a time.
    const order = [...Array(vocab).keys()].filter((j) => kept[j]);
    order.sort((a, b) => logits[b] - logits[a]);
    let massAbove = 0;
    for (let start = 0; start < order.length;) {
      let end = start;
      let groupMass = 0;
      while (end < order.length && logits[order[end]] === logits[order[start]]) {
        groupMass += probs[order[end]];
        end++;
      }
      const keepGroup = massAbove < topP * keptMass;
      for (let i = start; i < end; i++) kept[order[i]] = keepGroup;
      massAbove += groupMass;
      start = end;
    }
  }
  let total = 0;
  for (let j = 0; j < vocab; j++) {
    if (!kept[j]) probs[j] = 0;
    total += probs[j];
  }
  for (let j = 0; j < vocab; j++) probs[j] /= total;
  return probs;
}

/** log softmax(logits / T)[id] over the full vocabulary (0 for T = 0). */
export function logProbability(logits: ArrayLike<number>, id: number, temperature: number): number {
  if (temperature === 0) return 0;
  const maxScaled = logits[argmax(logits)] / temperature;
  let sum = 0;
  for (let j = 0; j < logits.length; j++) sum += Math.exp(logits[j] / temperature - maxScaled);
  return logits[id] / temperature - maxScaled - Math.log(sum);
}

/** Inverse CDF in index order: the first id whose cumulative probability exceeds u. */
export function drawFrom(probs: Float64Array, u: number): number {
  let cumulative = 0;
  let lastPositive = 0;
  for (let j = 0; j < probs.length; j++) {
    if (probs[j] <= 0) continue;
    lastPositive = j;
    cumulative += probs[j];
    if (cumulative > u) return j;
  }
  return lastPositive; // u within rounding of 1
}

/** One id per row with given uniforms. logits: [rows·V] row-major, uniforms: [rows]. */
export function sampleWithUniforms(
  logits: Float32Array,
  rows: number,
  uniforms: ArrayLike<number>,
  options: SamplingOptions,
): { ids: Uint32Array; logprobs: Float32Array } {
  const vocab = logits.length / rows;
  const ids = new Uint32Array(rows);
  const logprobs = new Float32Array(rows);
  for (let r = 0; r < rows; r++) {
    const row = logits.subarray(r * vocab, (r + 1) * vocab);
    ids[r] = drawFrom(samplingDistribution(row, options), uniforms[r]);
    logprobs[r] = logProbability(row, ids[r], options.temperature);
  }
  return { ids, logprobs };
}

/** One id per row, drawn with the Philox uniforms of (seed, step, firstRow + r). */
export function sample(
  logits: Float32Array,
  rows: number,
  options: SamplingOptions & { seed: number; step: number; firstRow?: number },
): { ids: Uint32Array; logprobs: Float32Array } {
  const firstRow = options.firstRow ?? 0;
  const uniforms = Array.from(
    { length: rows },
    (_, r) => philoxUniform(options.seed, options.step, firstRow + r),
  );
  return sampleWithUniforms(logits, rows, uniforms, options);
}
