// An independent checker for the generated math documents, written separately from the
// generator: exact rational arithmetic (BigInt), a small expression parser, and a scan that
// verifies every "a op b = c" and "a = b" the worked steps claim.

export class Q {
  readonly num: bigint;
  readonly den: bigint;

  constructor(num: bigint, den = 1n) {
    if (den === 0n) throw new Error("division by zero");
    if (den < 0n) [num, den] = [-num, -den];
    let a = num < 0n ? -num : num;
    let b = den;
    while (b !== 0n) [a, b] = [b, a % b];
    const g = a === 0n ? den : a;
    this.num = num / g;
    this.den = den / g;
  }

  /** "12", "-3", "7.25", "3/4". */
  static parse(text: string): Q {
    const m = /^(-?)(\d+)(?:\.(\d+))?(?:\/(\d+))?$/.exec(text);
    if (!m) throw new Error(`not a number: ${text}`);
    const [, sign, whole, decimals = "", den = "1"] = m;
    const scale = 10n ** BigInt(decimals.length);
    const value = BigInt(whole + decimals) * (sign === "-" ? -1n : 1n);
    return new Q(value, scale * BigInt(den));
  }

  add(o: Q): Q {
    return new Q(this.num * o.den + o.num * this.den, this.den * o.den);
  }
  sub(o: Q): Q {
    return new Q(this.num * o.den - o.num * this.den, this.den * o.den);
  }
  mul(o: Q): Q {
    return new Q(this.num * o.num, this.den * o.den);
  }
  div(o: Q): Q {
    return new Q(this.num * o.den, this.den * o.num);
  }
  equals(o: Q): boolean {
    return this.num === o.num && this.den === o.den;
  }
  toString(): string {
    return this.den === 1n ? `${this.num}` : `${this.num}/${this.den}`;
  }
}

export function applyOp(a: Q, op: string, b: Q): Q {
  if (op === "+") return a.add(b);
  if (op === "-") return a.sub(b);
  if (op === "*") return a.mul(b);
  if (op === "/") return a.div(b);
  throw new Error(`unknown operator ${op}`);
}

/**
 * Evaluates an expression with + - * /, parentheses, unary minus, one variable and implicit
 * multiplication ("3x", "4(x + 2)"). Numbers are integers (fractions are "a / b").
 */
export function evaluate(expression: string, variables: Record<string, Q> = {}): Q {
  const tokens = expression.match(/\d+|[a-z]|[-+*/()]/g) ?? [];
  let at = 0;
  const peek = () => tokens[at];
  const next = () => tokens[at++];
  const primary = (): Q => {
    const t = next();
    if (t === undefined) throw new Error(`unexpected end of ${expression}`);
    if (t === "-") return new Q(0n).sub(primary());
    if (t === "(") {
      const value = sum();
      if (next() !== ")") throw new Error(`missing ) in ${expression}`);
      return value;
    }
    if (/^\d+$/.test(t)) return new Q(BigInt(t));
    if (/^[a-z]$/.test(t) && t in variables) return variables[t];
    throw new Error(`unexpected ${t} in ${expression}`);
  };
  const product = (): Q => {
    let value = primary();
    for (;;) {
      const t = peek();
      if (t === "*" || t === "/") {
        next();
        value = applyOp(value, t, primary());
      } else if (t === "(" || (t !== undefined && /^[a-z]$/.test(t))) {
        value = value.mul(primary()); // implicit multiplication
      } else {
        return value;
      }
    }
  };
  const sum = (): Q => {
    let value = product();
    while (peek() === "+" || peek() === "-") {
      const op = next();
      value = applyOp(value, op, product());
    }
    return value;
  };
  const value = sum();
  if (at !== tokens.length) throw new Error(`trailing input in ${expression}`);
  return value;
}

const NUMBER = /^-?\d+(?:\.\d+)?(?:\/\d+)?$/;
const OPERATORS = new Set(["+", "-", "*", "/"]);

/** Whether a token may stand right before or after a claim (not part of a longer formula). */
function isBoundary(token: string | undefined): boolean {
  if (token === undefined) return true;
  if (NUMBER.test(token) || OPERATORS.has(token) || token === "(" || token === ")") return false;
  return !/^[a-zA-Z]$/.test(token); // a single letter is a variable ("2t", "x")
}

/**
 * Every claim "a op b = c" or "a = b" in `text` (numbers only, not part of a longer formula),
 * with whether it is true.
 */
export function arithmeticClaims(text: string): { claim: string; holds: boolean }[] {
  const claims: { claim: string; holds: boolean }[] = [];
  for (const line of text.split("\n")) {
    const tokens = (line.match(/-?\d+(?:\.\d+)?(?:\/\d+)?|[A-Za-z']+|\S/g) ?? [])
      .filter((t) => t !== "$");
    for (let i = 0; i < tokens.length; i++) {
      if (!NUMBER.test(tokens[i])) continue;
      const prevOk = i === 0 || tokens[i - 1] === "=" || isBoundary(tokens[i - 1]);
      if (!prevOk) continue;
      const [, op, b, eq, c] = tokens.slice(i, i + 5);
      if (
        OPERATORS.has(op) && NUMBER.test(b ?? "") && eq === "=" && NUMBER.test(c ?? "") &&
        isBoundary(tokens[i + 5])
      ) {
        const result = applyOp(Q.parse(tokens[i]), op, Q.parse(b));
        claims.push({ claim: `${tokens[i]} ${op} ${b} = ${c}`, holds: result.equals(Q.parse(c)) });
      } else if (op === "=" && NUMBER.test(b ?? "") && isBoundary(tokens[i + 3])) {
        claims.push({
          claim: `${tokens[i]} = ${b}`,
          holds: Q.parse(tokens[i]).equals(Q.parse(b)),
        });
      }
    }
  }
  return claims;
}

/**
 * The answer recomputed from the question alone, for the kinds whose questions state the
 * computation; null when this checker does not read that question form.
 */
export function recomputeAnswer(kind: string, question: string, answer: string): boolean | null {
  const value = Q.parse(answer);
  if (kind === "arithmetic") {
    const m = /^(?:Compute|Evaluate|What is|Calculate the value of|Find the value of) (.+)[.?]$/
      .exec(question);
    if (!m) throw new Error(`unrecognised arithmetic question: ${question}`);
    return evaluate(m[1]).equals(value);
  }
  if (kind === "fractions") {
    const q = question.replace(/ (Give the answer in lowest terms|Simplify the result)\.$/, "");
    const f = String.raw`(\d+/\d+)`;
    const forms: [RegExp, string, boolean][] = [
      [new RegExp(`^Add ${f} and ${f}\\.$`), "+", false],
      [new RegExp(`^Subtract ${f} from ${f}\\.$`), "-", true],
      [new RegExp(`^Multiply ${f} by ${f}\\.$`), "*", false],
    ];
    for (const [re, op, swap] of forms) {
      const m = re.exec(q);
      if (m) {
        const [x, y] = swap ? [m[2], m[1]] : [m[1], m[2]];
        return applyOp(Q.parse(x), op, Q.parse(y)).equals(value);
      }
    }
    const m = new RegExp(`^(?:What is|Compute) ${f} ([-+*]) ${f}[.?]$`).exec(q);
    if (!m) throw new Error(`unrecognised fractions question: ${question}`);
    return applyOp(Q.parse(m[1]), m[2], Q.parse(m[3])).equals(value);
  }
  if (kind === "equation") {
    const m = /(?:: |if |makes |equation )([^.?]*?)(?: true)?[.?]$/.exec(question);
    if (!m) throw new Error(`unrecognised equation question: ${question}`);
    const variable = /^Solve for ([a-z]):|^Find ([a-z]) |of ([a-z]) makes/.exec(question);
    const [left, right] = m[1].split(" = ");
    const name = variable?.slice(1).find((v) => v) ?? left.match(/[a-z]/)![0];
    const vars = { [name]: value };
    return evaluate(left, vars).equals(evaluate(right, vars));
  }
  if (kind === "percent") {
    let m = /^(?:What is|Find|Compute) (\d+)(?:%| percent) of (\d+)[.?]$/.exec(question);
    if (m) return Q.parse(m[1]).mul(Q.parse(m[2])).div(new Q(100n)).equals(value);
    m = /^(?:What percent of (\d+) is (\d+)\?|(\d+) is what percent of (\d+)\?)$/.exec(question);
    const n = m?.[1] ?? m?.[4];
    const part = m?.[2] ?? m?.[3];
    if (n && part) return Q.parse(part).mul(new Q(100n)).div(Q.parse(n)).equals(value);
    return null;
  }
  if (kind === "speed") {
    let m = /travels at (\d+) \w+ per hour for (\d+) hours\. How far/.exec(question);
    if (m) return Q.parse(m[1]).mul(Q.parse(m[2])).equals(value);
    m = /cover in (\d+) hours at (\d+) \w+ per hour\?$/.exec(question);
    if (m) return Q.parse(m[1]).mul(Q.parse(m[2])).equals(value);
    m = /(?:covers|goes) (\d+) \w+ in (\d+) hours\./.exec(question);
    if (m) return Q.parse(m[1]).div(Q.parse(m[2])).equals(value);
    return null;
  }
  if (kind === "sharing") {
    const m = /share (\d+) \w+ in the ratio (\d+):(\d+)\./.exec(question);
    if (m) {
      const [total, p, q] = [m[1], m[2], m[3]].map((s) => Q.parse(s));
      return total.mul(q).div(p.add(q)).equals(value);
    }
    return null;
  }
  return null;
}
