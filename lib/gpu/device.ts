// Adapter and device: ask for the adapter's own limits (wgpu's defaults are far smaller:
// 128 MiB bindings, 8 storage buffers per stage, 16 KiB workgroup memory) and for the
// optional features rmt can use.

import { NoAdapterError, UserError } from "./errors.ts";

/** Limits raised to the adapter's maximum. */
const RAISED_LIMITS = [
  "maxBufferSize",
  "maxStorageBufferBindingSize",
  "maxStorageBuffersPerShaderStage",
  "maxComputeWorkgroupStorageSize",
  "maxComputeInvocationsPerWorkgroup",
  "maxComputeWorkgroupSizeX",
  "maxComputeWorkgroupSizeY",
  "maxComputeWorkgroupSizeZ",
  "maxComputeWorkgroupsPerDimension",
  "maxBindingsPerBindGroup",
  "maxUniformBufferBindingSize",
  "maxTextureDimension2D",
] as const;

const OPTIONAL_FEATURES: GPUFeatureName[] = ["shader-f16", "timestamp-query"];

export interface AdapterSummary {
  name: string;
  vendor: string;
  architecture: string;
  /** wgpu's backend: "vulkan", "gl", "metal", "dx12" or "default" (not reported by Deno). */
  backend: string;
  /** A software adapter (Mesa's llvmpipe/lavapipe, SwiftShader, WARP): the CPU runs the kernels. */
  isFallback: boolean;
  /**
   * Which kernels the ops choose: "software" (texture products and SIMD-group reductions, fast on
   * a CPU adapter) or "gpu" (the tiled kernels meant for GPUs). It follows isFallback unless
   * RMT_KERNELS says otherwise: `RMT_KERNELS=gpu` runs a GPU's kernels on a CPU adapter, which
   * is how CI tests that path without a GPU. (llvmpipe's loop limit still applies: isFallback.)
   */
  kernels: KernelProfile;
  features: string[];
  limits: Record<string, number>;
}

export type KernelProfile = "software" | "gpu";
const KERNEL_PROFILES: readonly string[] = ["software", "gpu"];

/** The kernel profile: `asked` (RMT_KERNELS: auto, software or gpu) over what the adapter is. */
export function kernelProfile(isFallback: boolean, asked: string | undefined): KernelProfile {
  if (asked === undefined || asked === "" || asked === "auto") {
    return isFallback ? "software" : "gpu";
  }
  if (!KERNEL_PROFILES.includes(asked)) {
    throw new UserError(`RMT_KERNELS=${asked}: expected auto, software or gpu`);
  }
  return asked as KernelProfile;
}

export interface OpenedDevice {
  adapter: GPUAdapter;
  device: GPUDevice;
  summary: AdapterSummary;
}

function limitsRecord(limits: GPUSupportedLimits): Record<string, number> {
  const out: Record<string, number> = {};
  // GPUSupportedLimits exposes its values as getters on the prototype.
  for (const key in limits) {
    const v = (limits as unknown as Record<string, unknown>)[key];
    if (typeof v === "number") out[key] = v;
  }
  return out;
}

/** Software rasterisers report themselves by name; Deno's isFallbackAdapter is not always set. */
function looksLikeSoftware(name: string): boolean {
  return /llvmpipe|lavapipe|swiftshader|softpipe|warp/i.test(name);
}

export async function openDevice(): Promise<OpenedDevice> {
  const backend = Deno.env.get("DENO_WEBGPU_BACKEND");
  const adapter = await navigator.gpu?.requestAdapter({ powerPreference: "high-performance" });
  if (!adapter) throw new NoAdapterError(backend);

  const requiredLimits: Record<string, number> = {};
  const adapterLimits = limitsRecord(adapter.limits);
  for (const name of RAISED_LIMITS) {
    if (adapterLimits[name] !== undefined) requiredLimits[name] = adapterLimits[name];
  }
  const requiredFeatures = OPTIONAL_FEATURES.filter((f) => adapter.features.has(f));
  const device = await adapter.requestDevice({ requiredLimits, requiredFeatures });

  const info = adapter.info;
  const name = info.description || info.device || "unknown adapter";
  const isFallback = Boolean(info.isFallbackAdapter) || looksLikeSoftware(name);
  return {
    adapter,
    device,
    summary: {
      name,
      vendor: info.vendor,
      architecture: info.architecture,
      backend: backend ?? "default",
      isFallback,
      kernels: kernelProfile(isFallback, Deno.env.get("RMT_KERNELS")),
      features: [...device.features].sort(),
      limits: limitsRecord(device.limits),
    },
  };
}
