// The run folder's record of where each part of a run ran: a resume on another adapter or
// kernel profile is recorded and reported (its sums run in another order).

import type { AdapterSummary } from "../../lib/gpu/device.ts";
import { configToYaml, defaultConfig } from "../../lib/train/config.ts";
import { openRunDir } from "../../lib/train/run_dir.ts";
import { assert, assertEquals, withTempDir } from "../helpers.ts";

const adapter = (name: string, kernels: "software" | "gpu"): AdapterSummary => ({
  name,
  vendor: "test",
  architecture: "",
  backend: "vulkan",
  isFallback: kernels === "software",
  kernels,
  features: [],
  limits: {},
});

Deno.test("run dir: resuming records the adapter and kernels, and says when they changed", () =>
  withTempDir(async (dir) => {
    const config = defaultConfig();
    const open = (a: AdapterSummary, resume: boolean) =>
      openRunDir(`${dir}/run`, {
        config,
        yamlText: configToYaml(config),
        adapter: a,
        resume,
        force: false,
      });
    const cpu = adapter("llvmpipe", "software");
    const first = await open(cpu, false);
    assertEquals(first.info.adapter.kernels, "software", "run.json: the first part's kernels");
    assertEquals((await open(cpu, true)).adapterChange, null, "same adapter and kernels");
    const gpuKernels = await open(adapter("llvmpipe", "gpu"), true);
    assertEquals(gpuKernels.adapterChange, "kernels software → gpu", "another kernel profile");
    const last = gpuKernels.info.resumes.at(-1)!;
    assert(last.adapter === "llvmpipe" && last.kernels === "gpu", JSON.stringify(last));
    // Compared with the last part, not the first.
    assertEquals((await open(adapter("llvmpipe", "gpu"), true)).adapterChange, null, "again");
    assertEquals(
      (await open(adapter("H100", "gpu"), true)).adapterChange,
      "adapter llvmpipe → H100",
      "another adapter",
    );
  }));
