// Progress of long work: on a terminal, one line rewritten in place (step / total, the
// given values, tokens/s, ETA); otherwise plain lines, at most one every few seconds, that
// a log file keeps readable.

export interface ProgressValues {
  step: number;
  total: number;
  /** Named values shown in order, e.g. { loss: 2.31, reward: 0.42 }. */
  values: Record<string, number>;
  tokensPerSecond?: number;
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return "?";
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const r = s % 60;
  return h > 0
    ? `${h}h${String(m).padStart(2, "0")}m`
    : m > 0
    ? `${m}m${String(r).padStart(2, "0")}s`
    : `${r}s`;
}

function formatValue(v: number): string {
  if (v === 0 || !Number.isFinite(v)) return String(v);
  const abs = Math.abs(v);
  return abs >= 1000 || abs < 0.001 ? v.toExponential(2) : v.toPrecision(4);
}

export function progressLine(p: ProgressValues, elapsedSeconds: number, label = "step"): string {
  const done = p.step;
  const eta = done > 0 ? (elapsedSeconds / done) * (p.total - done) : NaN;
  const parts = [`${label} ${done}/${p.total}`];
  for (const [name, value] of Object.entries(p.values)) parts.push(`${name} ${formatValue(value)}`);
  if (p.tokensPerSecond !== undefined) parts.push(`${Math.round(p.tokensPerSecond)} tok/s`);
  parts.push(`elapsed ${formatDuration(elapsedSeconds)}`, `ETA ${formatDuration(eta)}`);
  return parts.join("  ");
}

export class Progress {
  readonly #started = performance.now();
  readonly #tty: boolean;
  #lastPlain = -Infinity;

  constructor(
    private readonly label = "step",
    private readonly out: { isTerminal(): boolean; writeSync(b: Uint8Array): number } = Deno.stderr,
    private readonly plainIntervalSeconds = 5,
  ) {
    this.#tty = out.isTerminal();
  }

  get elapsedSeconds(): number {
    return (performance.now() - this.#started) / 1000;
  }

  update(p: ProgressValues): void {
    const elapsed = this.elapsedSeconds;
    const line = progressLine(p, elapsed, this.label);
    if (this.#tty) {
      this.#write(`\r\x1b[2K${line}`);
    } else if (elapsed - this.#lastPlain >= this.plainIntervalSeconds || p.step === p.total) {
      this.#lastPlain = elapsed;
      this.#write(line + "\n");
    }
  }

  /** Ends the in-place line on a terminal. */
  done(): void {
    if (this.#tty) this.#write("\n");
  }

  #write(text: string): void {
    this.out.writeSync(new TextEncoder().encode(text));
  }
}
