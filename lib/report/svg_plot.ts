// A line plot as an SVG string (pure: same input, same bytes): axes with nice ticks and
// labels, one <path class="series"> per series (a null value lifts the pen, so a gap in the
// data is a gap in the line), and a legend on the right. Meant to be inlined in HTML, so the
// <svg> carries no xmlns (it would be the only URL in the page).

export interface PlotSeries {
  name: string;
  /** A CSS colour, e.g. "#1f77b4". */
  color: string;
  /** "" for a solid line, else an SVG stroke-dasharray (runs beyond the palette). */
  dash: string;
  /** [x, y] in x order; y null = no value at that x (breaks the line). */
  points: readonly (readonly [number, number | null])[];
}

export interface LinePlot {
  title: string;
  xLabel: string;
  yLabel: string;
  /** Extend the y axis to 0 (rates, lengths: the distance from zero means something). */
  yFromZero: boolean;
  series: readonly PlotSeries[];
}

/** Layout in CSS pixels. */
const WIDTH = 720;
const MARGIN = { left: 64, right: 176, top: 30, bottom: 46 };
const PLOT_HEIGHT = 220;
const LEGEND_ROW = 18;
const LEGEND_NAME_CHARS = 22;

/** Tableau 10: distinct colours for the first ten series; later ones repeat them dashed. */
export const SERIES_COLORS = [
  "#1f77b4",
  "#ff7f0e",
  "#2ca02c",
  "#d62728",
  "#9467bd",
  "#8c564b",
  "#e377c2",
  "#7f7f7f",
  "#bcbd22",
  "#17becf",
];
const DASHES = ["", "6 3", "2 3", "8 3 2 3"];

/** The colour and dash pattern of the series at `index` (stable across plots). */
export function seriesStyle(index: number): { color: string; dash: string } {
  const n = SERIES_COLORS.length;
  return { color: SERIES_COLORS[index % n], dash: DASHES[Math.floor(index / n) % DASHES.length] };
}

export function escapeXml(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;").replace(/'/g, "&#39;");
}

/** A pixel coordinate, rounded to 0.1 px so the text is short and deterministic. */
function px(v: number): string {
  return String(Math.round(v * 10) / 10);
}

export interface Ticks {
  /** The axis domain: the first and last tick, which enclose the data. */
  min: number;
  max: number;
  values: number[];
  /** Digits after the point that tell the ticks apart. */
  decimals: number;
}

/** About `count` round tick values (steps of 1, 2 or 5 × 10^k) covering [lo, hi]. */
export function niceTicks(lo: number, hi: number, count = 5): Ticks {
  if (hi < lo) [lo, hi] = [hi, lo];
  if (hi === lo) {
    // A constant: a band around it that does not cross zero (a rate stuck at 0 shows 0..1).
    const pad = lo === 0 ? 1 : Math.abs(lo) * 0.1;
    lo = lo >= 0 ? Math.max(0, lo - pad) : lo - pad;
    hi += pad;
  }
  const rough = (hi - lo) / count;
  const magnitude = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 5, 10].map((m) => m * magnitude).find((s) => s >= rough) ?? 10 * magnitude;
  const first = Math.floor(lo / step + 1e-9);
  const last = Math.ceil(hi / step - 1e-9);
  const values: number[] = [];
  for (let k = first; k <= last; k++) values.push(k * step);
  const decimals = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
  return { min: first * step, max: last * step, values, decimals };
}

function tickLabel(value: number, decimals: number): string {
  const text = value.toFixed(decimals);
  return /^-0(\.0*)?$/.test(text) ? text.slice(1) : text;
}

/**
 * The runs of consecutive non-null points of a series. A run longer than 2 points per pixel
 * column keeps each column's first, lowest, highest and last point, so a 100k-step run stays a
 * small path with the same envelope.
 */
function segments(
  points: PlotSeries["points"],
  column: (x: number) => number,
  columns: number,
): [number, number][][] {
  const out: [number, number][][] = [];
  let current: [number, number][] = [];
  for (const [x, y] of points) {
    if (!isValue(y) || !isValue(x)) {
      if (current.length > 0) out.push(current);
      current = [];
    } else current.push([x, y]);
  }
  if (current.length > 0) out.push(current);
  return out.map((s) => (s.length > 2 * columns ? thinByColumn(s, column) : s));
}

function thinByColumn(segment: [number, number][], column: (x: number) => number) {
  const kept: [number, number][] = [];
  let i = 0;
  while (i < segment.length) {
    const c = Math.floor(column(segment[i][0]));
    let j = i;
    let low = i;
    let high = i;
    while (j < segment.length && Math.floor(column(segment[j][0])) === c) {
      if (segment[j][1] < segment[low][1]) low = j;
      if (segment[j][1] > segment[high][1]) high = j;
      j++;
    }
    for (const k of [...new Set([i, low, high, j - 1])].sort((a, b) => a - b)) {
      kept.push(segment[k]);
    }
    i = j;
  }
  return kept;
}

function shortName(name: string): string {
  return name.length <= LEGEND_NAME_CHARS ? name : name.slice(0, LEGEND_NAME_CHARS - 1) + "…";
}

function isValue(v: number | null): v is number {
  return v !== null && Number.isFinite(v);
}

/** [min, max] of the finite values (a loop: a spread of 100k+ arguments overflows the stack). */
function extent(values: (number | null)[], empty: [number, number]): [number, number] {
  let low = Infinity;
  let high = -Infinity;
  for (const v of values) {
    if (!isValue(v)) continue;
    if (v < low) low = v;
    if (v > high) high = v;
  }
  return low <= high ? [low, high] : empty;
}

/** Where the data area lies in the SVG, and how data values map to pixels. */
interface Frame {
  left: number;
  right: number;
  top: number;
  bottom: number;
  xPx: (x: number) => number;
  yPx: (y: number) => number;
}

function text(attributes: string, content: string): string {
  return `<text ${attributes}>${escapeXml(content)}</text>`;
}

function dashAttribute(dash: string): string {
  return dash === "" ? "" : ` stroke-dasharray="${dash}"`;
}

/** Grid lines at the ticks, the two axes with tick marks and labels, the axis titles. */
function axes(frame: Frame, xTicks: Ticks, yTicks: Ticks, plot: LinePlot, height: number) {
  const { left, right, top, bottom } = frame;
  const out = [`<g class="grid">`];
  for (const v of yTicks.values) {
    const y = px(frame.yPx(v));
    out.push(`<line x1="${left}" x2="${right}" y1="${y}" y2="${y}"/>`);
  }
  for (const v of xTicks.values) {
    const x = px(frame.xPx(v));
    out.push(`<line x1="${x}" x2="${x}" y1="${top}" y2="${bottom}"/>`);
  }
  out.push(`</g>`, `<g class="axis">`);
  out.push(`<line x1="${left}" x2="${right}" y1="${bottom}" y2="${bottom}"/>`);
  out.push(`<line x1="${left}" x2="${left}" y1="${top}" y2="${bottom}"/>`);
  for (const v of xTicks.values) {
    const x = px(frame.xPx(v));
    const label = tickLabel(v, xTicks.decimals);
    out.push(`<line x1="${x}" x2="${x}" y1="${bottom}" y2="${bottom + 5}"/>`);
    out.push(text(`class="tick" x="${x}" y="${bottom + 18}" text-anchor="middle"`, label));
  }
  for (const v of yTicks.values) {
    const y = px(frame.yPx(v));
    const label = tickLabel(v, yTicks.decimals);
    out.push(`<line x1="${left - 5}" x2="${left}" y1="${y}" y2="${y}"/>`);
    out.push(text(`class="tick" x="${left - 8}" y="${y}" dy="0.32em" text-anchor="end"`, label));
  }
  const middleX = px((left + right) / 2);
  const middleY = px((top + bottom) / 2);
  out.push(
    text(`class="label" x="${middleX}" y="${height - 8}" text-anchor="middle"`, plot.xLabel),
  );
  out.push(
    text(
      `class="label" transform="translate(14 ${middleY}) rotate(-90)" text-anchor="middle"`,
      plot.yLabel,
    ),
  );
  out.push(`</g>`);
  return out;
}

/** One <path> for the series: a subpath per run of non-null values. */
function seriesPath(s: PlotSeries, frame: Frame): string {
  const column = (x: number) => frame.xPx(x) - frame.left;
  const d = segments(s.points, column, frame.right - frame.left).map((segment) => {
    const [first, ...rest] = segment.map(([x, y]) => `${px(frame.xPx(x))} ${px(frame.yPx(y))}`);
    // A lone point (values on both sides missing): a small ring, which the stroke fills.
    return rest.length === 0
      ? `M${first}m-1.5 0a1.5 1.5 0 1 0 3 0a1.5 1.5 0 1 0 -3 0`
      : `M${first}L${rest.join("L")}`;
  }).join("");
  return `<path class="series" data-series="${escapeXml(s.name)}" d="${d}" ` +
    `stroke="${s.color}"${dashAttribute(s.dash)}/>`;
}

/** A line sample and the name of each series, in a column right of the data area. */
function legend(series: readonly PlotSeries[], frame: Frame): string[] {
  const x = frame.right + 16;
  const entries = series.map((s, i) => {
    const y = frame.top + 8 + i * LEGEND_ROW;
    return `<g class="legend-entry"><title>${escapeXml(s.name)}</title>` +
      `<line x1="${x}" x2="${x + 22}" y1="${y}" y2="${y}" stroke="${s.color}"` +
      `${dashAttribute(s.dash)}/>` + text(`x="${x + 28}" y="${y}" dy="0.32em"`, shortName(s.name)) +
      `</g>`;
  });
  return [`<g class="legend">`, ...entries, `</g>`];
}

/** The plot as one <svg> element. Series with no value at all are left out (and off the legend). */
export function linePlotSvg(plot: LinePlot): string {
  const series = plot.series.filter((s) => s.points.some(([, y]) => isValue(y)));
  const [xLow, xHigh] = extent(series.flatMap((s) => s.points.map(([x]) => x)), [0, 1]);
  const [yLow, yHigh] = extent(series.flatMap((s) => s.points.map(([, y]) => y)), [0, 1]);
  const xTicks = niceTicks(xLow, xHigh, 6);
  const yTicks = plot.yFromZero
    ? niceTicks(Math.min(0, yLow), Math.max(0, yHigh), 5)
    : niceTicks(yLow, yHigh, 5);

  // The data area grows with the legend, one row per series.
  const plotWidth = WIDTH - MARGIN.left - MARGIN.right;
  const plotHeight = Math.max(PLOT_HEIGHT, series.length * LEGEND_ROW);
  const height = MARGIN.top + plotHeight + MARGIN.bottom;
  const top = MARGIN.top;
  const left = MARGIN.left;
  const bottom = top + plotHeight;
  const frame: Frame = {
    left,
    right: left + plotWidth,
    top,
    bottom,
    xPx: (x) => left + (x - xTicks.min) / (xTicks.max - xTicks.min) * plotWidth,
    yPx: (y) => bottom - (y - yTicks.min) / (yTicks.max - yTicks.min) * plotHeight,
  };
  return [
    `<svg class="plot" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" ` +
    `role="img" aria-label="${escapeXml(plot.title)}">`,
    text(`class="title" x="${left}" y="${top - 12}"`, plot.title),
    ...axes(frame, xTicks, yTicks, plot, height),
    ...series.map((s) => seriesPath(s, frame)),
    ...legend(series, frame),
    `</svg>`,
  ].join("\n");
}
