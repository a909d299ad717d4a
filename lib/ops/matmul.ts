// Matrix multiplication: c = op(a) · op(b), op = identity or transpose, optionally batched,
// optionally accumulated into an existing output, and its backward expressed with itself.
//
//   a: [M, K], or [K, M] with transposeA       (or [batch, ., .])
//   b: [K, N], or [N, K] with transposeB       (or [batch, ., .])
//   c: [M, N]                                  ([batch, M, N] when a or b is batched)
//
// The Hugging Face nn.Linear layout stores a weight as W: [out, in], so a linear layer is
// y = x · W^T: matmul(ctx, x, W, { transposeB: true }); its backward is dX = dY · W and
// dW = dY^T · X (transposeA). A 2-D operand next to a batched one is shared by the batch.
//
// Four kernels (see kernels/matmul.wgsl and kernels/matmul_textures.wgsl): "textures" (both
// operands copied into rgba32float storage textures, then 16 × 8 of C per thread from texel
// loads: the fast one on lavapipe, any shape, unbatched products), "registers-vec4" (register
// tiling with vec4 loads and stores, 16 × 16 of C per thread, needs 4-aligned rows),
// "registers-large" (the same with 32 × 32 per thread; it only does c = a · b^T without
// accumulation) and "tiled" (workgroup-memory tiling, any shape: the one for real GPUs).
// `variant: "auto"` on a software adapter picks textures for products of 64 rows and more
// where the texture sizes allow it (one batch, M, N and K within maxTextureDimension2D),
// else registers-large for x·Wᵀ with 32 ≤ M ≤ 128 and N big enough to keep both CPU threads
// busy, else registers-vec4 for aligned rows, else tiled; tiled on real GPUs.

import type { GpuContext } from "../gpu/context.ts";
import { loopBudget, LoopLimitError } from "../gpu/loop_limit.ts";
import { Params } from "../gpu/params.ts";
import { shapeString, type Tensor } from "../gpu/tensor.ts";
import source from "../../kernels/matmul.wgsl" with { type: "text" };
import texturesSource from "../../kernels/matmul_textures.wgsl" with { type: "text" };
import storeSource from "../../kernels/matmul_textures_store.wgsl" with { type: "text" };
import store4Source from "../../kernels/matmul_textures_store4.wgsl" with { type: "text" };
import { stageTexture, STAGING_SLOTS } from "./texture_staging.ts";

export type MatmulVariant = "auto" | "registers-vec4" | "tiled" | "registers-large" | "textures";

export interface MatmulOptions {
  transposeA?: boolean;
  transposeB?: boolean;
  /** Which kernel; "auto" (default) picks per device and shape. For tests and benchmarks. */
  variant?: MatmulVariant;
}

export interface MatmulIntoOptions extends MatmulOptions {
  /** out += op(a) · op(b) instead of out = op(a) · op(b) (gradient accumulation). */
  accumulate?: boolean;
}

/** Register kernel: a thread computes 16 × 16 of C; REG_WG_X × REG_WG_Y threads. */
const REGISTER_BLOCK = 16;
const REG_WG_X = 16;
const REG_WG_Y = 1;
/** Tiled kernel: a workgroup computes (8·TILE_WG_Y) × (8·TILE_WG_X) of C. */
const TILE_WG_X = 16;
const TILE_WG_Y = 16;
const TILE_K = 8;
/** Large register kernel: a thread computes 32 × 32 of C; LARGE_WG_X threads per group. */
const LARGE_ROWS = 32;
const LARGE_COLUMNS = 32;
const LARGE_WG_X = 8;
/** The rows (M) where "auto" picks the large register kernel on a software adapter. */
const LARGE_MIN_M = 32;
const LARGE_MAX_M = 128; // (textures take over from TEXTURES_MIN_M rows where they fit)
/**
 * ... and only with at least this many 32 × 32 blocks: with fewer, lavapipe's two threads
 * get too few SIMD groups of 8 threads (measured at M = 64: N = 64 and 128 lose, 172 ties,
 * 256 and up win).
 */
const LARGE_MIN_BLOCKS = 16;
/**
 * Texture kernel: a thread computes 16 × 8 of C, a workgroup 8 × 8 threads (128 rows × 64
 * columns), or for products of up to 64 rows (decode steps) 8 × 1, one SIMD group of lavapipe
 * (16 rows × 64 columns): a taller one would leave rows idle, and a wider one too few
 * workgroups for the cores. Measured at M = 64 with the small preset's decode shapes (N × K),
 * ms per product, 16 × 4 threads (128 columns) → 8 × 1: 384 × 1536 2.49 → 2.01 (3 workgroups
 * on 2 cores became 24), 128 × 384 0.84 → 0.79, 1536 × 384 1.91 → 1.89.
 */
const TEX_ROWS = 16;
const TEX_COLUMNS = 8;
function textureWorkgroup(p: Problem): { x: number; y: number } {
  return p.M <= 64 ? { x: 8, y: 1 } : { x: 8, y: 8 };
}
/**
 * "auto" picks textures from this many rows up (measured with the small preset's shapes:
 * at M = 64 it ties registers-large on x·Wᵀ or wins by up to 1.4×, from M = 128 it wins by
 * 1.3–2×; at M = 32 the two trade places shape by shape).
 */
const TEXTURES_MIN_M = 64;
/**
 * The texture kernel with C's stores for any N, or as vec4 for N a multiple of 4 (the same
 * values; faster on lavapipe).
 */
const TEXTURES_KERNELS = {
  scalar: { name: "matmul_textures", source: texturesSource + storeSource },
  vec4: { name: "matmul_textures_store4", source: texturesSource + store4Source },
};

/** The problem one dispatch solves, in elements (see the Params struct in the kernel). */
interface Problem {
  M: number;
  N: number;
  K: number;
  /** Batches of C (grid z). */
  batches: number;
  /** Batches of A and B summed into each C (1 = plain batched product). */
  sumBatches: number;
  aBatchStride: number;
  bBatchStride: number;
  cBatchStride: number;
  transposeA: boolean;
  transposeB: boolean;
}

/** Whether vec4 loads and stores fit: every stored row of A, B and C is 4-aligned. */
function vec4Fit(p: Problem): boolean {
  const aRow = p.transposeA ? p.M : p.K;
  const bRow = p.transposeB ? p.K : p.N;
  return aRow % 4 === 0 && bRow % 4 === 0 && p.N % 4 === 0;
}

/**
 * Whether "auto" picks registers-large over registers-vec4 on a software adapter: where it
 * was measured to win (a decode step's x·Wᵀ, M = 32..128 rows; kernels/matmul.wgsl). Below,
 * most of its 32 rows would be wasted; bigger products keep the choice made before it (other
 * transposes and large M were not tuned, and each set of flags costs a ~6 s cold build).
 */
function largeFits(p: Problem, accumulate: boolean): boolean {
  const blocks = Math.ceil(p.M / LARGE_ROWS) * Math.ceil(p.N / LARGE_COLUMNS);
  return largeForm(p, accumulate) && p.M >= LARGE_MIN_M && p.M <= LARGE_MAX_M &&
    blocks >= LARGE_MIN_BLOCKS;
}

/** The one form registers-large does: c = a · b^T, overwriting c (one pipeline to build). */
function largeForm(p: Problem, accumulate: boolean): boolean {
  return !p.transposeA && p.transposeB && !accumulate;
}

function isSoftware(ctx: GpuContext): boolean {
  return ctx.adapter.kernels === "software";
}

/**
 * The texture heights a texture product needs (M and N rounded up to what it dispatches), its
 * texels per row and its workgroup.
 */
function textureRows(
  p: Problem,
): { aRows: number; bRows: number; texels: number; wg: { x: number; y: number } } {
  const wg = textureWorkgroup(p);
  return {
    wg,
    aRows: Math.ceil(p.M / (TEX_ROWS * wg.y)) * TEX_ROWS * wg.y,
    bRows: Math.ceil(p.N / (TEX_COLUMNS * wg.x)) * TEX_COLUMNS * wg.x,
    texels: Math.ceil(p.K / 4),
  };
}

/** Whether the texture kernel can do `p`: one product (no batches) within the texture size. */
function texturesFit(ctx: GpuContext, p: Problem): boolean {
  const { aRows, bRows } = textureRows(p);
  const max = ctx.limits.maxTextureDimension2D;
  // Texture sides: rows (or rows/4) one way, K/4 (or K, k-major) the other.
  return p.batches === 1 && p.sumBatches === 1 && Math.max(aRows, bRows, p.K) <= max;
}

function chooseVariant(
  ctx: GpuContext,
  p: Problem,
  accumulate: boolean,
  asked: MatmulVariant,
): MatmulVariant {
  if (asked === "registers-large" && !largeForm(p, accumulate)) {
    throw new Error(
      `matmul: the registers-large variant only does c = a · b^T (transposeB, no ` +
        `transposeA, no accumulate): M=${p.M}, N=${p.N}, K=${p.K}, ` +
        `transposeA=${p.transposeA}, transposeB=${p.transposeB}, accumulate=${accumulate}`,
    );
  }
  if (asked === "textures" && !texturesFit(ctx, p)) {
    throw new Error(
      `matmul: the textures variant does one unbatched product with M, N and K up to ` +
        `${ctx.limits.maxTextureDimension2D} (M=${p.M}, N=${p.N}, K=${p.K}, ` +
        `batches=${p.batches}, sum_batches=${p.sumBatches})`,
    );
  }
  if ((asked === "registers-vec4" || asked === "registers-large") && !vec4Fit(p)) {
    throw new Error(
      `matmul: the ${asked} variant needs 4-aligned rows of A, B and C as stored ` +
        `(M=${p.M}, N=${p.N}, K=${p.K}, transposeA=${p.transposeA}, ` +
        `transposeB=${p.transposeB})`,
    );
  }
  if (asked !== "auto") return asked;
  if (!isSoftware(ctx)) return "tiled";
  if (p.M >= TEXTURES_MIN_M && texturesFit(ctx, p)) return "textures";
  if (!vec4Fit(p)) return "tiled";
  return largeFits(p, accumulate) ? "registers-large" : "registers-vec4";
}

/** The texture variant: both operands into textures, then one product from them. */
function recordTextures(
  ctx: GpuContext,
  a: Tensor<"f32">,
  b: Tensor<"f32">,
  out: Tensor<"f32">,
  p: Problem,
  accumulate: boolean,
): void {
  const { aRows, bRows, texels, wg } = textureRows(p);
  // [M, K] or [K, M], and [K, N] or [N, K]
  const aStaged = stageTexture(ctx, a, STAGING_SLOTS.matmulA, p.M, aRows, p.K, p.transposeA);
  const bStaged = stageTexture(ctx, b, STAGING_SLOTS.matmulB, p.N, bRows, p.K, !p.transposeB);
  ctx.dispatch({
    ...TEXTURES_KERNELS[p.N % 4 === 0 ? "vec4" : "scalar"],
    entry: "matmul_textures",
    constants: {
      ACCUMULATE: Number(accumulate),
      A_K_MAJOR: Number(aStaged.kMajor),
      B_K_MAJOR: Number(bStaged.kMajor),
      TEX_WG_X: wg.x,
      TEX_WG_Y: wg.y,
    },
  }, {
    params: new Params().u32(p.M).u32(p.N).u32(texels),
    tensors: [out],
    textures: [aStaged.texture, bStaged.texture],
    workgroups: [bRows / (TEX_COLUMNS * wg.x), aRows / (TEX_ROWS * wg.y)],
  });
}

/**
 * llvmpipe's loop limit (lib/gpu/loop_limit.ts): an invocation of the register kernels loops
 * once per 4 of K, the tiled one ~8 times per TILE_K (measured: wrong from K ≈ 65,536), for each
 * summed batch. (The texture kernel's K is at most maxTextureDimension2D: 4,096 steps.) A
 * product past the budget is refused on a software adapter rather than computed wrong.
 */
function checkLoops(ctx: GpuContext, p: Problem, variant: MatmulVariant): void {
  const perBatch = variant === "tiled" ? 8 * Math.ceil(p.K / TILE_K) : Math.ceil(p.K / 4);
  const iterations = p.sumBatches * (perBatch + 1) + 16;
  if (iterations <= loopBudget(ctx)) return;
  const most = Math.floor(((loopBudget(ctx) - 16) / p.sumBatches - 1) / perBatch * p.K);
  throw new LoopLimitError(
    "matmul",
    `K=${p.K} (M=${p.M}, N=${p.N}, ${p.sumBatches} summed batches, the ${variant} kernel)`,
    iterations,
    `use at most K ≈ ${most} per product here`,
  );
}

/** Records one dispatch of the kernel for `p`, writing (or adding to) `out`. */
function record(
  ctx: GpuContext,
  a: Tensor<"f32">,
  b: Tensor<"f32">,
  out: Tensor<"f32">,
  p: Problem,
  accumulate: boolean,
  asked: MatmulVariant,
): void {
  if (p.M === 0 || p.N === 0 || p.batches === 0) return;
  if (p.K === 0 || p.sumBatches === 0) {
    // An empty sum: C = 0 (or unchanged when accumulating).
    if (!accumulate) {
      const zero = ctx.zeros(out.shape, "f32");
      ctx.copy(zero, out);
      zero.release();
    }
    return;
  }
  const variant = chooseVariant(ctx, p, accumulate, asked);
  if (variant === "textures") return recordTextures(ctx, a, b, out, p, accumulate);
  checkLoops(ctx, p, variant);
  const params = new Params()
    .u32(p.M).u32(p.N).u32(p.K)
    .u32(p.aBatchStride).u32(p.bBatchStride).u32(p.cBatchStride)
    .u32(p.sumBatches);
  const flags = {
    TRANSPOSE_A: Number(p.transposeA),
    TRANSPOSE_B: Number(p.transposeB),
    ACCUMULATE: Number(accumulate),
  };
  if (variant === "registers-vec4") {
    ctx.dispatch({
      name: "matmul",
      source,
      entry: "matmul_registers_vec4",
      constants: { ...flags, REG_WG_X, REG_WG_Y },
    }, {
      params,
      tensors: [a, b, out],
      workgroups: [
        Math.ceil(p.N / (REGISTER_BLOCK * REG_WG_X)),
        Math.ceil(p.M / (REGISTER_BLOCK * REG_WG_Y)),
        p.batches,
      ],
    });
  } else if (variant === "registers-large") {
    ctx.dispatch({
      name: "matmul",
      source,
      entry: "matmul_registers_large",
      constants: { ...flags, LARGE_WG_X },
    }, {
      params,
      tensors: [a, b, out],
      workgroups: [
        Math.ceil(p.N / (LARGE_COLUMNS * LARGE_WG_X)),
        Math.ceil(p.M / LARGE_ROWS),
        p.batches,
      ],
    });
  } else {
    ctx.dispatch({
      name: "matmul",
      source,
      entry: "matmul_tiled",
      constants: { ...flags, TILE_WG_X, TILE_WG_Y, TILE_K },
    }, {
      params,
      tensors: [a, b, out],
      workgroups: [Math.ceil(p.N / (8 * TILE_WG_X)), Math.ceil(p.M / (8 * TILE_WG_Y)), p.batches],
    });
  }
}

/** The (rows, cols) of a 2-D or batched 3-D operand, and its batch (1 when 2-D). */
function matrixDims(
  op: string,
  name: string,
  t: Tensor,
): [batch: number, rows: number, cols: number] {
  if (t.shape.length === 2) return [1, t.shape[0], t.shape[1]];
  if (t.shape.length === 3) return [t.shape[0], t.shape[1], t.shape[2]];
  throw new Error(`${op}: ${name} must be 2-D or 3-D (batched), got ${shapeString(t.shape)}`);
}

/** Checks shapes and returns the problem of c = op(a)·op(b), plus c's shape. */
function plan(
  op: string,
  a: Tensor,
  b: Tensor,
  transposeA: boolean,
  transposeB: boolean,
): { problem: Problem; outShape: number[] } {
  const [aBatch, aRows, aCols] = matrixDims(op, "a", a);
  const [bBatch, bRows, bCols] = matrixDims(op, "b", b);
  const [M, K] = transposeA ? [aCols, aRows] : [aRows, aCols];
  const [Kb, N] = transposeB ? [bCols, bRows] : [bRows, bCols];
  const describe = () =>
    `a ${shapeString(a.shape)}${transposeA ? "^T" : ""} · b ${shapeString(b.shape)}` +
    `${transposeB ? "^T" : ""}`;
  if (K !== Kb) throw new Error(`${op}: inner dimensions differ: ${describe()}`);
  const aBatched = a.shape.length === 3;
  const bBatched = b.shape.length === 3;
  if (aBatched && bBatched && aBatch !== bBatch) {
    throw new Error(`${op}: batch sizes differ: ${describe()}`);
  }
  const batches = aBatched ? aBatch : bBatch;
  const problem: Problem = {
    M,
    N,
    K,
    batches,
    sumBatches: 1,
    aBatchStride: aBatched ? M * K : 0,
    bBatchStride: bBatched ? K * N : 0,
    cBatchStride: M * N,
    transposeA,
    transposeB,
  };
  // A batched a (not transposed) times one shared b is a single taller product.
  if (aBatched && !bBatched && !transposeA) {
    problem.M = batches * M;
    problem.batches = 1;
    problem.aBatchStride = 0;
    problem.cBatchStride = 0;
  }
  const outShape = aBatched || bBatched ? [batches, M, N] : [M, N];
  return { problem, outShape };
}

/**
 * out (+)= op(a) · op(b). a: [M, K] (or [K, M] with transposeA), b: [K, N] (or [N, K] with
 * transposeB), either may carry a leading batch dim; out: [M, N] or [batch, M, N].
 * `out` must not share a buffer with a or b.
 */
export function matmulInto(
  ctx: GpuContext,
  a: Tensor<"f32">,
  b: Tensor<"f32">,
  out: Tensor<"f32">,
  opts: MatmulIntoOptions = {},
): void {
  const { transposeA = false, transposeB = false, accumulate = false, variant = "auto" } = opts;
  const { problem, outShape } = plan("matmulInto", a, b, transposeA, transposeB);
  if (
    out.shape.length !== outShape.length || out.shape.some((d, i) => d !== outShape[i])
  ) {
    throw new Error(
      `matmulInto: out is ${shapeString(out.shape)}, expected ${shapeString(outShape)}`,
    );
  }
  if (out.buffer === a.buffer || out.buffer === b.buffer) {
    throw new Error("matmulInto: out must not share a buffer with a or b");
  }
  record(ctx, a, b, out, problem, accumulate, variant);
}

/**
 * Whether `auto` runs the same kernel for out += op(a)·op(b) as for out = op(a)·op(b): then
 * adding into an existing tensor (e.g. a residual) costs the product nothing.
 */
export function accumulateKeepsKernel(
  ctx: GpuContext,
  a: Tensor<"f32">,
  b: Tensor<"f32">,
  opts: MatmulOptions = {},
): boolean {
  const { transposeA = false, transposeB = false } = opts;
  const { problem } = plan("matmul", a, b, transposeA, transposeB);
  return chooseVariant(ctx, problem, true, "auto") === chooseVariant(ctx, problem, false, "auto");
}

/**
 * c = op(a) · op(b). a: [M, K] (or [K, M] with transposeA), b: [K, N] (or [N, K] with
 * transposeB), either may carry a leading batch dim → c: [M, N] or [batch, M, N].
 */
export function matmul(
  ctx: GpuContext,
  a: Tensor<"f32">,
  b: Tensor<"f32">,
  opts: MatmulOptions = {},
): Tensor<"f32"> {
  const { transposeA = false, transposeB = false, variant = "auto" } = opts;
  const { problem, outShape } = plan("matmul", a, b, transposeA, transposeB);
  const out = ctx.empty(outShape, "f32");
  recordOrRelease(ctx, a, b, out, problem, variant);
  return out;
}

/** record() into a new `out`, which is given back if the product is refused. */
function recordOrRelease(
  ctx: GpuContext,
  a: Tensor<"f32">,
  b: Tensor<"f32">,
  out: Tensor<"f32">,
  p: Problem,
  variant: MatmulVariant,
): void {
  try {
    record(ctx, a, b, out, p, false, variant);
  } catch (e) {
    out.release();
    throw e;
  }
}

/**
 * Σ_batch op(x[i]) · op(y[i]): x, y: [batch, ., .] → [rows, cols]. The gradient of an
 * operand shared across a batch (each batch's product adds to it).
 */
function matmulSumBatches(
  ctx: GpuContext,
  x: Tensor<"f32">,
  y: Tensor<"f32">,
  opts: MatmulOptions,
): Tensor<"f32"> {
  const { transposeA = false, transposeB = false, variant = "auto" } = opts;
  const { problem, outShape } = plan("matmulBackward", x, y, transposeA, transposeB);
  const [batches, M, N] = outShape;
  const out = ctx.empty([M, N], "f32");
  const summed = { ...problem, batches: 1, sumBatches: batches, cBatchStride: 0 };
  recordOrRelease(ctx, x, y, out, summed, variant);
  return out;
}

/**
 * Gradients of c = op(a) · op(b) given dC = ∂L/∂c (shaped like c). Returns dA shaped like a
 * and dB shaped like b; an operand shared across the batch gets the sum over the batch.
 *
 *   no transpose:  dA = dC · B^T          dB = A^T · dC
 *   transposeA:    dA = B · dC^T          dB = A · dC
 *   transposeB:    dA = dC · B            dB = dC^T · A
 *   both:          dA = B^T · dC^T        dB = dC^T · A^T
 */
export function matmulBackward(
  ctx: GpuContext,
  a: Tensor<"f32">,
  b: Tensor<"f32">,
  dC: Tensor<"f32">,
  opts: MatmulOptions = {},
): { dA: Tensor<"f32">; dB: Tensor<"f32"> } {
  const { transposeA = false, transposeB = false, variant = "auto" } = opts;
  const { outShape } = plan("matmulBackward", a, b, transposeA, transposeB);
  if (dC.shape.length !== outShape.length || dC.shape.some((d, i) => d !== outShape[i])) {
    throw new Error(
      `matmulBackward: dC is ${shapeString(dC.shape)}, expected ${shapeString(outShape)} ` +
        `for a ${shapeString(a.shape)}, b ${shapeString(b.shape)}`,
    );
  }
  // Each gradient as op(x) · op(y) (see the table above).
  const dAFactors: [Tensor<"f32">, Tensor<"f32">, MatmulOptions] = transposeA
    ? [b, dC, { transposeA: transposeB, transposeB: true, variant }]
    : [dC, b, { transposeA: false, transposeB: !transposeB, variant }];
  const dBFactors: [Tensor<"f32">, Tensor<"f32">, MatmulOptions] = transposeB
    ? [dC, a, { transposeA: true, transposeB: transposeA, variant }]
    : [a, dC, { transposeA: !transposeA, transposeB: false, variant }];
  const gradient = (operand: Tensor, [x, y, o]: typeof dAFactors) =>
    operand.shape.length === 2 && dC.shape.length === 3
      ? matmulSumBatches(ctx, x, y, o) // shared across the batch: sum the batch's gradients
      : matmul(ctx, x, y, o);
  return { dA: gradient(a, dAFactors), dB: gradient(b, dBFactors) };
}
