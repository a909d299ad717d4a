// The kernel profile: the adapter decides unless RMT_KERNELS says otherwise.

import { kernelProfile } from "../../lib/gpu/device.ts";
import { UserError } from "../../lib/gpu/errors.ts";
import { assert, assertEquals } from "../helpers.ts";

Deno.test("kernelProfile: software on a CPU adapter, gpu otherwise, RMT_KERNELS over both", () => {
  for (const asked of [undefined, "", "auto"]) {
    assertEquals(kernelProfile(true, asked), "software", `software adapter, RMT_KERNELS=${asked}`);
    assertEquals(kernelProfile(false, asked), "gpu", `GPU, RMT_KERNELS=${asked}`);
  }
  for (const isFallback of [true, false]) {
    assertEquals(kernelProfile(isFallback, "gpu"), "gpu", `isFallback ${isFallback}, gpu`);
    assertEquals(kernelProfile(isFallback, "software"), "software", `isFallback ${isFallback}`);
  }
  for (const bad of ["GPU", "cpu", "fast"]) {
    let error: unknown = null;
    try {
      kernelProfile(true, bad);
    } catch (e) {
      error = e;
    }
    assert(error instanceof UserError, `RMT_KERNELS=${bad} must be refused`);
    assert(error.message.includes(`RMT_KERNELS=${bad}`), error.message);
  }
});
