// Adapter and device: ask for the adapter's own limits (wgpu's defaults are far smaller:
// 128 MiB bindings, 8 storage buffers per stage, 16 KiB workgroup memory) and for the
// optional features rmt can use.

import { NoAdapterError } from "./errors.ts";

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
  isFallback: boolean;
  features: string[];
  limits: Record<string, number>;
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
  return {
    adapter,
    device,
    summary: {
      name,
      vendor: info.vendor,
      architecture: info.architecture,
      backend: backend ?? "default",
      isFallback: Boolean(info.isFallbackAdapter) || looksLikeSoftware(name),
      features: [...device.features].sort(),
      limits: limitsRecord(device.limits),
    },
  };
}
