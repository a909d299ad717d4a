// Final answers, normalised for comparison: evaluation asks whether a model's answer equals
// the reference one, and "3/4", " \boxed{6/8}. " and "0.75" should all count as the same.
//
// normalizeAnswer gives a canonical string: numbers become integers ("007" → "7", "-0" → "0"),
// decimals without trailing zeros ("0.50" → "0.5"), or fractions in lowest terms with the sign
// on the numerator ("6/-8" → "-3/4", "4/2" → "2"), also when written in LaTeX (\frac{3}{4},
// \dfrac34) or wrapped in units and signs that reasoning models add (90^\circ, 25\%, \$18,
// 5\text{ cm}, **42**). Anything that is not a number only has its wrapping removed (\boxed{},
// a trailing period, "x = ") and its whitespace collapsed.
// answersMatch also treats equal exact values as a match across forms ("0.75" = "3/4").
// All arithmetic is exact (BigInt), so long numbers never round.

/** An exact rational number: num / den, den > 0, in lowest terms. */
interface Rational {
  num: bigint;
  den: bigint;
}

function gcd(a: bigint, b: bigint): bigint {
  a = a < 0n ? -a : a;
  b = b < 0n ? -b : b;
  while (b !== 0n) [a, b] = [b, a % b];
  return a;
}

/** The content of the last `\boxed{...}` (braces matched), or the text itself when none. */
function unbox(text: string): string {
  const start = text.lastIndexOf("\\boxed{");
  if (start < 0) return text;
  let depth = 0;
  for (let i = start + "\\boxed".length; i < text.length; i++) {
    if (text[i] === "{") depth++;
    if (text[i] === "}" && --depth === 0) return text.slice(start + "\\boxed{".length, i);
  }
  return text; // unbalanced: leave it as it is
}

const INTEGER = /^[+-]?\d+$/;
const DECIMAL = /^([+-]?)(\d*)\.(\d+)$/;
const FRACTION = /^([+-]?\d+)\/([+-]?\d+)$/;
const THOUSANDS = /^[+-]?\d{1,3}(,\d{3})+(\.\d+)?$/;

/** A decimal string written canonically: no leading/trailing zeros, no "-0", no "+". */
function canonicalDecimal(sign: string, whole: string, fraction: string): string {
  const frac = fraction.replace(/0+$/, "");
  const int = whole.replace(/^0+(?=\d)/, "") || "0";
  const zero = /^0*$/.test(int) && frac === "";
  const body = frac === "" ? int : `${int}.${frac}`;
  return sign === "-" && !zero ? `-${body}` : body;
}

/** A rational written canonically: "n" when whole, else "n/d" in lowest terms. */
function formatRational({ num, den }: Rational): string {
  return den === 1n ? `${num}` : `${num}/${den}`;
}

function reduce(num: bigint, den: bigint): Rational {
  if (den < 0n) [num, den] = [-num, -den];
  const g = gcd(num, den);
  return g > 1n ? { num: num / g, den: den / g } : { num, den };
}

/** The exact value of a canonical numeric answer (integer, decimal or fraction), else null. */
function exactValue(answer: string): Rational | null {
  if (INTEGER.test(answer)) return { num: BigInt(answer), den: 1n };
  const decimal = DECIMAL.exec(answer);
  if (decimal) {
    const [, sign, whole, fraction] = decimal;
    const num = BigInt(`${sign}${whole || "0"}${fraction}`);
    return reduce(num, 10n ** BigInt(fraction.length));
  }
  const fraction = FRACTION.exec(answer);
  if (fraction && BigInt(fraction[2]) !== 0n) {
    return reduce(BigInt(fraction[1]), BigInt(fraction[2]));
  }
  return null;
}

/** Canonical form of a number written without spaces, or null when it is not one. */
function canonicalNumber(text: string): string | null {
  if (THOUSANDS.test(text)) text = text.replaceAll(",", "");
  if (INTEGER.test(text)) return `${BigInt(text)}`;
  const decimal = DECIMAL.exec(text);
  if (decimal) return canonicalDecimal(decimal[1], decimal[2], decimal[3]);
  const fraction = FRACTION.exec(text);
  if (fraction) {
    if (BigInt(fraction[2]) === 0n) return text; // n/0 is no number: leave it as written
    return formatRational(reduce(BigInt(fraction[1]), BigInt(fraction[2])));
  }
  return null;
}

/**
 * The canonical form of an answer: trimmed, `\boxed{}` and a trailing period removed, a
 * leading "x =" removed, thousands separators removed, and numbers written canonically
 * ("0.50" → "0.5", "6/8" → "3/4", "4/2" → "2", "-0" → "0", "1,234" → "1234").
 */
export function normalizeAnswer(answer: string): string {
  let text = unbox(answer.trim()).trim();
  text = text.replace(/^[*_\s]+|[*_\s]+$/g, ""); // markdown emphasis: **42**
  text = text.replace(/\.+$/, "").trim();
  text = text.replace(/^[a-zA-Z]\s*=\s*/, "");
  text = text.replace(/\s+/g, " ");
  const number = canonicalNumber(text.replaceAll(" ", ""));
  if (number !== null) return number;
  // LaTeX around a number: \frac{3}{4}, \dfrac34, 90^\circ, 25\%, \$18, 5\text{ cm}.
  const bare = stripLatex(text);
  return canonicalNumber(bare.replaceAll(" ", "")) ?? text;
}

/** A LaTeX answer with fractions written a/b and the wrapping of a number removed. */
function stripLatex(text: string): string {
  return text
    .replace(/\\[dt]frac/g, "\\frac")
    .replace(/\\frac\s*\{([^{}]*)\}\s*\{([^{}]*)\}/g, "$1/$2")
    .replace(/\\frac\s*(\d)\s*(\d)/g, "$1/$2")
    .replace(/\\(?:text|mbox|mathrm)\s*\{[^{}]*\}/g, "") // units
    .replace(/\^\s*\{?\s*\\circ\s*\}?|°/g, "")
    .replace(/\\left|\\right|\\[!,;:]|~/g, "")
    .replace(/\\?[%$]/g, "")
    .replace(/^\{(.*)\}$/, "$1")
    .trim();
}

/**
 * Whether two answers are the same: equal after normalizeAnswer, or both exact numbers of
 * equal value ("0.75" and "3/4"). An empty answer never matches anything.
 */
export function answersMatch(a: string, b: string): boolean {
  const left = normalizeAnswer(a);
  const right = normalizeAnswer(b);
  if (left === "" || right === "") return false;
  if (left === right) return true;
  const x = exactValue(left);
  const y = exactValue(right);
  return x !== null && y !== null && x.num === y.num && x.den === y.den;
}
