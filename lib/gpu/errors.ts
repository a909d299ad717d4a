// Errors that reach the user as one clear line (the CLI prints `message`, exits with `exitCode`).

/** An error whose message is meant for the user as it is: no stack trace is shown. */
export class UserError extends Error {
  constructor(message: string, readonly exitCode = 2) {
    super(message);
    this.name = "UserError";
  }
}

/** No WebGPU adapter: tells the user what to install. */
export class NoAdapterError extends UserError {
  constructor(backend: string | undefined) {
    super(
      `no WebGPU adapter found${backend ? ` (DENO_WEBGPU_BACKEND=${backend})` : ""}: ` +
        "install a GPU driver with Vulkan support, or Mesa's software rasteriser " +
        "(Debian/Ubuntu: apt-get install mesa-vulkan-drivers libegl-mesa0)",
    );
  }
}

/** The GPU ran out of memory or the device was lost. */
export class GpuError extends UserError {}
