import { learningRate } from "../../lib/train/schedule.ts";
import { MetricsLog, readMetrics } from "../../lib/train/metrics.ts";
import { formatDuration, Progress, progressLine } from "../../lib/train/progress.ts";
import { assert, assertClose, assertEquals, withTempDir } from "../helpers.ts";

Deno.test("schedule: warm-up is linear, cosine ends at min_lr_ratio, constant stays", () => {
  const base = { lr: 1e-3, warmupSteps: 4, minLrRatio: 0.1, totalSteps: 14 };
  const cosine = Array.from(
    { length: 14 },
    (_, t) => learningRate(t, { ...base, schedule: "cosine" }),
  );
  assertClose(cosine.slice(0, 4), [2.5e-4, 5e-4, 7.5e-4, 1e-3], { rtol: 1e-12 }, "warm-up");
  assertClose([cosine[4], cosine[13]], [1e-3, 1e-4], { rtol: 1e-12 }, "cosine ends");
  // halfway through the decay (step 4 + 4.5): lr · (0.1 + 0.9 · 0.5)
  const mid = learningRate(8.5, { ...base, schedule: "cosine" });
  assertClose([mid], [1e-3 * 0.55], { rtol: 1e-12 }, "cosine midpoint");
  for (let t = 1; t < 14; t++) assert(cosine[t] <= cosine[t - 1] || t <= 4, `monotone at ${t}`);
  assertEquals(learningRate(13, { ...base, schedule: "constant" }), 1e-3, "constant");
});

Deno.test("metrics: appended lines survive; resume truncates later steps and torn lines", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/metrics.jsonl`;
    const log = await MetricsLog.open(path);
    for (let step = 1; step <= 5; step++) await log.append({ step, loss: 1 / step });
    log.close();
    await Deno.writeTextFile(path, '{"step": 6, "lo', { append: true }); // killed mid-write
    const resumed = await MetricsLog.open(path, 3);
    await resumed.append({ step: 4, loss: 0.25 });
    resumed.close();
    const records = await readMetrics(path);
    assertEquals(records.map((r) => r.step), [1, 2, 3, 4], "steps after resume");
  });
});

Deno.test("progress: a terminal gets one rewritten line, a pipe gets plain lines", () => {
  const line = progressLine({
    step: 5,
    total: 10,
    values: { loss: 2.3456 },
    tokensPerSecond: 1234.4,
  }, 50);
  assertEquals(line, "step 5/10  loss 2.346  1234 tok/s  elapsed 50s  ETA 50s", "line");
  assertEquals(formatDuration(3725), "1h02m", "hours");
  for (const tty of [true, false]) {
    let written = "";
    const out = {
      isTerminal: () => tty,
      writeSync: (b: Uint8Array) => (written += new TextDecoder().decode(b), b.length),
    };
    const progress = new Progress("step", out, 0);
    progress.update({ step: 1, total: 2, values: {} });
    progress.update({ step: 2, total: 2, values: {} });
    progress.done();
    if (tty) {
      assert(written.startsWith("\r\x1b[2K") && written.endsWith("\n"), JSON.stringify(written));
    } else assertEquals(written.split("\n").filter(Boolean).length, 2, "plain lines");
    assert(!tty || !written.slice(0, -1).includes("\n"), "terminal output stays on one line");
  }
});
