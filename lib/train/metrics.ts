// metrics.jsonl: one JSON object per logged step, appended and flushed line by line, so a
// run killed at any moment keeps every finished step. On resume the file is cut back to
// the checkpoint's step, so the resumed file equals an uninterrupted run's.

export type MetricsRecord = Record<string, number | string | boolean | null | number[]>;

export class MetricsLog {
  private constructor(private readonly file: Deno.FsFile, readonly path: string) {}

  /** Opens `path` for appending; with `keepUpToStep`, drops lines of later steps first. */
  static async open(path: string, keepUpToStep?: number): Promise<MetricsLog> {
    if (keepUpToStep !== undefined) await truncateAfterStep(path, keepUpToStep);
    const file = await Deno.open(path, { create: true, append: true });
    return new MetricsLog(file, path);
  }

  async append(record: MetricsRecord): Promise<void> {
    await this.file.write(new TextEncoder().encode(JSON.stringify(record) + "\n"));
    await this.file.syncData();
  }

  close(): void {
    this.file.close();
  }
}

/** Keeps the lines whose `step` is ≤ `step` (a torn last line is dropped). */
async function truncateAfterStep(path: string, step: number): Promise<void> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return;
    throw e;
  }
  const kept: string[] = [];
  for (const line of text.split("\n")) {
    if (line.trim() === "") continue;
    try {
      const record = JSON.parse(line);
      if (typeof record.step === "number" && record.step <= step) kept.push(line);
    } catch {
      // a line torn by a kill mid-write: dropped
    }
  }
  const tmp = `${path}.tmp`;
  await Deno.writeTextFile(tmp, kept.map((l) => l + "\n").join(""));
  await Deno.rename(tmp, path);
}

/** Reads a metrics file (for reports and tests). */
export async function readMetrics(path: string): Promise<MetricsRecord[]> {
  const text = await Deno.readTextFile(path);
  return text.split("\n").filter((l) => l.trim() !== "").map((l) => JSON.parse(l));
}
