// The math problem generators behind the shipped corpus: each draws one problem of its kind
// from a seeded RNG and returns the question, the worked steps (one sentence per line) and the
// final answer. math_corpus.ts assembles them into documents.
//
// Conventions every generator keeps, so the text is regular enough for a ~10M-parameter model
// to learn and tests can check every step mechanically:
//   - every computation is written as one operation, "a op b = c", with exact results;
//   - " / " with spaces is division, "a/b" without spaces is a fraction;
//   - negative numbers carry their sign attached ("-3"), subtraction has spaces ("5 - 3");
//   - answers are plain numbers: integers, decimals without trailing zeros ("7.5"), or
//     fractions in lowest terms ("3/4"); units appear only in the steps.

import type { Rng } from "../ref/random.ts";

export const PROBLEM_KINDS = [
  "arithmetic",
  "fractions",
  "percent",
  "equation",
  "shopping",
  "speed",
  "ages",
  "sharing",
] as const;

export type ProblemKind = typeof PROBLEM_KINDS[number];

export interface Problem {
  question: string;
  /** The worked solution, one sentence per entry (no final answer line). */
  steps: string[];
  /** The final answer, a plain number. */
  answer: string;
}

// ---------------------------------------------------------------------------------------------
// Small helpers

/** An integer in [lo, hi]. */
function between(rng: Rng, lo: number, hi: number): number {
  return lo + rng.int(hi - lo + 1);
}

function pick<T>(rng: Rng, options: readonly T[]): T {
  return options[rng.int(options.length)];
}

/** A number as the text shows it: float noise removed ("0.30000000000000004" → "0.3"). */
function num(x: number): string {
  return String(Math.round(x * 1e6) / 1e6);
}

function gcd(a: number, b: number): number {
  a = Math.abs(a);
  b = Math.abs(b);
  while (b !== 0) [a, b] = [b, a % b];
  return a;
}

const lcm = (a: number, b: number) => (a / gcd(a, b)) * b;

/** Runs `attempt` until it returns a problem (generators reject draws that come out ugly). */
function retry(rng: Rng, attempt: (rng: Rng) => Problem | null): Problem {
  for (let i = 0; i < 10_000; i++) {
    const problem = attempt(rng);
    if (problem !== null) return problem;
  }
  throw new Error("math corpus: a problem generator kept rejecting its draws");
}

interface Person {
  name: string;
  /** Subject pronoun. */
  they: string;
  /** Possessive. */
  their: string;
}

const PEOPLE: readonly Person[] = [
  ...[
    "Maria",
    "Anna",
    "Sara",
    "Lucy",
    "Emma",
    "Nora",
    "Mia",
    "Julia",
    "Priya",
    "Amina",
    "Chloe",
    "Hannah",
    "Grace",
    "Rosa",
    "Yuki",
    "Lena",
  ].map((name) => ({ name, they: "she", their: "her" })),
  ...[
    "Tom",
    "Ben",
    "Leo",
    "Sam",
    "Omar",
    "David",
    "Lucas",
    "Ravi",
    "Jack",
    "Noah",
    "Hugo",
    "Ken",
    "Carlos",
    "Ivan",
    "Peter",
    "Max",
  ].map((name) => ({ name, they: "he", their: "his" })),
];

/** Two different people. */
function twoPeople(rng: Rng): [Person, Person] {
  const first = pick(rng, PEOPLE);
  let second = pick(rng, PEOPLE);
  while (second.name === first.name) second = pick(rng, PEOPLE);
  return [first, second];
}

const capitalize = (s: string) => s[0].toUpperCase() + s.slice(1);

// ---------------------------------------------------------------------------------------------
// Arithmetic: a multi-step expression, reduced one operation at a time in the order of
// operations (innermost parentheses, then * and / left to right, then + and - left to right).

type Operator = "+" | "-" | "*" | "/";
type ExprToken = number | Operator | "(" | ")";

const VERB: Record<Operator, string> = {
  "+": "add",
  "-": "subtract",
  "*": "multiply",
  "/": "divide",
};

/** "(3 + 4) * 2": spaces between tokens, none inside the parentheses' edges. */
function formatExpression(tokens: readonly ExprToken[]): string {
  let out = "";
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i];
    const tight = i === 0 || t === ")" || tokens[i - 1] === "(";
    out += (tight ? "" : " ") + String(t);
  }
  return out;
}

interface ReductionStep {
  a: number;
  op: Operator;
  b: number;
  result: number;
  inParentheses: boolean;
  /** The expression after this step. */
  after: ExprToken[];
}

/** Evaluates one operation at a time; null if a step divides inexactly or goes negative. */
function reduceExpression(start: readonly ExprToken[]): ReductionStep[] | null {
  const tokens = [...start];
  const steps: ReductionStep[] = [];
  while (tokens.length > 1) {
    // The innermost group: the "(" closest before the first ")" (or the whole expression).
    const close = tokens.indexOf(")");
    const open = close < 0 ? -1 : tokens.lastIndexOf("(", close);
    const end = close < 0 ? tokens.length : close;
    let at = -1;
    for (const ops of [["*", "/"], ["+", "-"]]) {
      for (let i = open + 1; i < end && at < 0; i++) {
        if (ops.includes(tokens[i] as string)) at = i;
      }
      if (at >= 0) break;
    }
    const a = tokens[at - 1] as number;
    const op = tokens[at] as Operator;
    const b = tokens[at + 1] as number;
    const result = op === "+" ? a + b : op === "-" ? a - b : op === "*" ? a * b : a / b;
    if (!Number.isInteger(result) || result < 0 || result > 999) return null;
    tokens.splice(at - 1, 3, result);
    // "(7)" → "7"
    if (open >= 0 && tokens[open + 2] === ")") tokens.splice(open, 3, result);
    steps.push({ a, op, b, result, inParentheses: open >= 0, after: [...tokens] });
  }
  return steps;
}

function arithmetic(rng: Rng): Problem {
  return retry(rng, (rng) => {
    const opCount = pick(rng, [2, 2, 3, 3, 3, 4]);
    const ops: Operator[] = [];
    for (let i = 0; i < opCount; i++) ops.push(pick(rng, ["+", "-", "*", "/", "+", "-", "*"]));
    const values: number[] = [];
    for (let i = 0; i <= opCount; i++) {
      const nextToProduct = ops[i - 1] === "*" || ops[i] === "*";
      values.push(nextToProduct ? between(rng, 2, 12) : between(rng, 1, 40));
    }
    // Make each division likely to be exact: the dividend a multiple of the divisor.
    ops.forEach((op, i) => {
      if (op !== "/") return;
      values[i + 1] = between(rng, 2, 9);
      values[i] = values[i + 1] * between(rng, 1, 9);
    });
    // Sometimes one group of two or three operands in parentheses (never the whole).
    let group: [number, number] | null = null;
    if (rng.next() < 0.4) {
      const first = rng.int(opCount);
      const last = Math.min(opCount, first + between(rng, 1, 2));
      if (!(first === 0 && last === opCount)) group = [first, last];
    }
    const tokens: ExprToken[] = [];
    values.forEach((value, i) => {
      if (group && i === group[0]) tokens.push("(");
      tokens.push(value);
      if (group && i === group[1]) tokens.push(")");
      if (i < opCount) tokens.push(ops[i]);
    });
    const reduction = reduceExpression(tokens);
    if (reduction === null) return null;

    const expression = formatExpression(tokens);
    const result = reduction[reduction.length - 1].result;
    const question = pick(rng, [
      `Compute ${expression}.`,
      `Evaluate ${expression}.`,
      `What is ${expression}?`,
      `Calculate the value of ${expression}.`,
      `Find the value of ${expression}.`,
    ]);
    const steps: string[] = [];
    const intro = pick(rng, [
      null,
      "Follow the order of operations.",
      "Parentheses first, then multiplication and division, then addition and subtraction.",
    ]);
    if (intro) steps.push(intro);
    const now = pick(rng, ["Now we have", "The expression becomes", "This leaves"]);
    for (const step of reduction) {
      const verb = VERB[step.op];
      const label = step.inParentheses ? `Inside the parentheses, ${verb}` : capitalize(verb);
      steps.push(`${label}: ${step.a} ${step.op} ${step.b} = ${step.result}.`);
      if (step.after.length > 1) steps.push(`${now} ${formatExpression(step.after)}.`);
    }
    steps.push(pick(rng, [
      `So the value is ${result}.`,
      `The result is ${result}.`,
      `So the answer is ${result}.`,
    ]));
    return { question, steps, answer: String(result) };
  });
}

// ---------------------------------------------------------------------------------------------
// Fractions: add, subtract or multiply two fractions, then simplify.

/** "n/d", or "n" when d is 1. */
const frac = (n: number, d: number) => (d === 1 ? `${n}` : `${n}/${d}`);

/** The simplification sentence for n/d, and the simplified value as text. */
function simplify(rng: Rng, n: number, d: number): { step: string; answer: string } {
  const g = gcd(n, d);
  if (g === 1) {
    return {
      step: pick(rng, [
        `${n}/${d} is already in lowest terms.`,
        `${n}/${d} cannot be simplified.`,
      ]),
      answer: `${n}/${d}`,
    };
  }
  const simplified = frac(n / g, d / g);
  return {
    step: pick(rng, [
      `Simplify by dividing the top and bottom by ${g}: ${n}/${d} = ${simplified}.`,
      `Divide the numerator and denominator by ${g}: ${n}/${d} = ${simplified}.`,
    ]),
    answer: simplified,
  };
}

function drawFraction(rng: Rng): [number, number] {
  const d = between(rng, 2, 12);
  const n = rng.next() < 0.8 ? between(rng, 1, d - 1) : between(rng, d + 1, 2 * d);
  return [n, d];
}

function fractions(rng: Rng): Problem {
  return retry(rng, (rng) => {
    let [a, b] = drawFraction(rng);
    let [c, d] = drawFraction(rng);
    const op = pick(rng, ["+", "-", "*"] as const);
    if (op === "-" && a * d === c * b) return null; // x - x: nothing to learn
    if (op === "-" && a * d < c * b) [a, b, c, d] = [c, d, a, b]; // keep the result positive
    const x = `${a}/${b}`;
    const y = `${c}/${d}`;
    const expression = `${x} ${op} ${y}`;
    const question = pick(
      rng,
      {
        "+": [`Add ${x} and ${y}.`, `What is ${expression}?`, `Compute ${expression}.`],
        "-": [`Subtract ${y} from ${x}.`, `What is ${expression}?`, `Compute ${expression}.`],
        "*": [`Multiply ${x} by ${y}.`, `What is ${expression}?`, `Compute ${expression}.`],
      }[op],
    ) + pick(rng, ["", " Give the answer in lowest terms.", " Simplify the result."]);

    const steps: string[] = [];
    let n: number;
    let den: number;
    if (op === "*") {
      n = a * c;
      den = b * d;
      steps.push(`Multiply the numerators: ${a} * ${c} = ${n}.`);
      steps.push(`Multiply the denominators: ${b} * ${d} = ${den}.`);
    } else {
      const verb = op === "+" ? "Add" : "Subtract";
      den = lcm(b, d);
      let top1 = a;
      let top2 = c;
      if (b === d) {
        steps.push(`The denominators are both ${b}.`);
      } else {
        steps.push(`The least common denominator of ${b} and ${d} is ${den}.`);
        top1 = a * (den / b);
        top2 = c * (den / d);
        const rewrites = [[a, b, top1], [c, d, top2]].filter(([, bottom]) => bottom !== den)
          .map(([top, bottom, scaled]) => `${top}/${bottom} = ${scaled}/${den}`);
        steps.push(`Rewrite with denominator ${den}: ${rewrites.join(" and ")}.`);
      }
      n = op === "+" ? top1 + top2 : top1 - top2;
      steps.push(`${verb} the numerators: ${top1} ${op} ${top2} = ${n}.`);
    }
    steps.push(`So ${expression} = ${n}/${den}.`);
    const simplified = simplify(rng, n, den);
    steps.push(simplified.step);
    return { question, steps, answer: simplified.answer };
  });
}

// ---------------------------------------------------------------------------------------------
// Percentages

function percent(rng: Rng): Problem {
  return retry(rng, (rng) => {
    const form = rng.int(4);
    if (form === 0) {
      // p% of n
      const p = pick(rng, [5, 10, 12, 15, 20, 25, 30, 35, 40, 45, 50, 60, 75, 80, 90, 120, 150]);
      const n = pick(rng, [4, 5, 8, 10]) * between(rng, 2, 60);
      const result = num((p * n) / 100);
      const question = pick(rng, [
        `What is ${p}% of ${n}?`,
        `Find ${p}% of ${n}.`,
        `Compute ${p} percent of ${n}.`,
      ]);
      const steps = rng.next() < 0.5
        ? [`Write ${p}% as the fraction ${p}/100.`, `Then ${p}/100 * ${n} = ${result}.`]
        : [`${p}% is ${num(p / 100)} as a decimal.`, `Then ${num(p / 100)} * ${n} = ${result}.`];
      steps.push(`So ${p}% of ${n} is ${result}.`);
      return { question, steps, answer: result };
    }
    if (form === 1) {
      // m is what percent of n
      const n = pick(rng, [4, 5, 8, 10, 20, 25, 40, 50, 80, 200, 250, 400, 500]);
      const p = 5 * between(rng, 1, 19);
      if ((p * n) % 100 !== 0) return null;
      const m = (p * n) / 100;
      const question = pick(rng, [
        `What percent of ${n} is ${m}?`,
        `${m} is what percent of ${n}?`,
        `Express ${m} out of ${n} as a percentage.`,
      ]);
      const ratio = num(m / n);
      return {
        question,
        steps: [
          `Divide: ${m} / ${n} = ${ratio}.`,
          `Multiply by 100: ${ratio} * 100 = ${p}.`,
          `So ${m} is ${p}% of ${n}.`,
        ],
        answer: String(p),
      };
    }
    if (form === 2) {
      // a price increased or decreased by p%
      const p = pick(rng, [5, 10, 15, 20, 25, 30, 40, 50]);
      const price = between(rng, 4, 80) * 5;
      const up = rng.next() < 0.5;
      const change = num((p * price) / 100);
      const result = num(up ? price + (p * price) / 100 : price - (p * price) / 100);
      const thing = pick(rng, ["A jacket", "A bicycle", "A lamp", "A game", "A ticket", "A chair"]);
      const question = up
        ? `${thing} costs $${price}. Its price goes up by ${p}%. What is the new price?`
        : `${thing} costs $${price}. It is sold at ${p}% off. What is the sale price?`;
      return {
        question,
        steps: [
          `The change is ${p}/100 * ${price} = ${change} dollars.`,
          `The new price is ${price} ${up ? "+" : "-"} ${change} = ${result} dollars.`,
        ],
        answer: result,
      };
    }
    // a share of a group
    const total = pick(rng, [20, 25, 30, 40, 50, 60, 80, 100, 120, 200]);
    const p = 5 * between(rng, 2, 18);
    if ((p * total) % 100 !== 0) return null;
    const part = (p * total) / 100;
    const [group, these, those] = pick(rng, [
      ["students in a class", "girls", "boys"],
      ["trees in a park", "oaks", "other trees"],
      ["books on a shelf", "novels", "other books"],
      ["cars in a car park", "red", "not red"],
    ]);
    return {
      question: `There are ${total} ${group}, and ${p}% of them are ${these}. ` +
        `How many are ${those}?`,
      steps: [
        `${capitalize(these)}: ${p}/100 * ${total} = ${part}.`,
        `The rest: ${total} - ${part} = ${total - part}.`,
      ],
      answer: String(total - part),
    };
  });
}

// ---------------------------------------------------------------------------------------------
// Linear equations in one variable, integer solution.

/** "3x + 5", "x - 2", "-x", "4x". */
function linear(a: number, b: number, v: string): string {
  const term = a === 1 ? v : a === -1 ? `-${v}` : `${a}${v}`;
  if (b === 0) return term;
  return `${term} ${b > 0 ? "+" : "-"} ${Math.abs(b)}`;
}

/** The step that moves a constant b off the left side: "3x = 20 - 5 = 15". */
function moveConstant(left: string, right: number, b: number): string {
  const result = right - b;
  return b > 0
    ? `Subtract ${b} from both sides: ${left} = ${right} - ${b} = ${result}.`
    : `Add ${-b} to both sides: ${left} = ${right} + ${-b} = ${result}.`;
}

function equation(rng: Rng): Problem {
  return retry(rng, (rng) => {
    const v = pick(rng, ["x", "x", "x", "y", "n"]);
    const x = between(rng, -9, 15);
    const form = rng.int(4);
    const nonZero = (lo: number, hi: number) => {
      const b = between(rng, lo, hi);
      return b === 0 ? hi : b;
    };
    let equationText: string;
    const steps: string[] = [];
    if (form === 0) {
      // ax + b = c
      const a = between(rng, 2, 9);
      const b = nonZero(-20, 30);
      const c = a * x + b;
      equationText = `${linear(a, b, v)} = ${c}`;
      steps.push(moveConstant(`${a}${v}`, c, b));
      steps.push(`Divide both sides by ${a}: ${v} = ${c - b} / ${a} = ${x}.`);
      if (rng.next() < 0.5) {
        const sign = b > 0 ? "+" : "-";
        steps.push(`Check: ${a} * ${x} = ${a * x} and ${a * x} ${sign} ${Math.abs(b)} = ${c}.`);
      }
    } else if (form === 1) {
      // a(x + b) = c
      const a = between(rng, 2, 6);
      const b = nonZero(-8, 9);
      const c = a * (x + b);
      equationText = `${a}(${linear(1, b, v)}) = ${c}`;
      steps.push(`Divide both sides by ${a}: ${linear(1, b, v)} = ${c} / ${a} = ${x + b}.`);
      steps.push(moveConstant(v, x + b, b));
    } else if (form === 2) {
      // ax + b = cx + d, a > c > 0
      const c = between(rng, 1, 6);
      const a = c + between(rng, 1, 5);
      const b = nonZero(-15, 15);
      const d = (a - c) * x + b;
      equationText = `${linear(a, b, v)} = ${linear(c, d, v)}`;
      const k = a - c;
      steps.push(
        `Subtract ${c === 1 ? v : `${c}${v}`} from both sides: ${linear(k, b, v)} = ${d}.`,
      );
      const left = k === 1 ? v : `${k}${v}`;
      steps.push(moveConstant(left, d, b));
      if (k !== 1) steps.push(`Divide both sides by ${k}: ${v} = ${d - b} / ${k} = ${x}.`);
    } else {
      // x/a + b = c, x a multiple of a
      const a = between(rng, 2, 6);
      const xx = a * between(rng, -3, 6);
      const b = nonZero(-10, 12);
      const c = xx / a + b;
      equationText = `${v}/${a} ${b > 0 ? "+" : "-"} ${Math.abs(b)} = ${c}`;
      steps.push(moveConstant(`${v}/${a}`, c, b));
      steps.push(`Multiply both sides by ${a}: ${v} = ${c - b} * ${a} = ${xx}.`);
      return {
        question: equationQuestion(rng, v, equationText),
        steps: [...steps, `So ${v} = ${xx}.`],
        answer: String(xx),
      };
    }
    return {
      question: equationQuestion(rng, v, equationText),
      steps: [...steps, `So ${v} = ${x}.`],
      answer: String(x),
    };
  });
}

function equationQuestion(rng: Rng, v: string, equationText: string): string {
  return pick(rng, [
    `Solve for ${v}: ${equationText}.`,
    `Find ${v} if ${equationText}.`,
    `What value of ${v} makes ${equationText} true?`,
    `Solve the equation ${equationText}.`,
  ]);
}

// ---------------------------------------------------------------------------------------------
// Word problems: shopping

interface Item {
  one: string;
  many: string;
  price: [number, number];
}

const ITEMS: readonly Item[] = [
  { one: "notebook", many: "notebooks", price: [2, 6] },
  { one: "pen", many: "pens", price: [1, 3] },
  { one: "apple", many: "apples", price: [1, 2] },
  { one: "sandwich", many: "sandwiches", price: [3, 8] },
  { one: "book", many: "books", price: [6, 15] },
  { one: "ticket", many: "tickets", price: [5, 12] },
  { one: "cup of coffee", many: "cups of coffee", price: [2, 5] },
  { one: "T-shirt", many: "T-shirts", price: [8, 15] },
  { one: "ball", many: "balls", price: [3, 9] },
  { one: "box of pencils", many: "boxes of pencils", price: [2, 7] },
  { one: "bag of rice", many: "bags of rice", price: [3, 9] },
  { one: "plant", many: "plants", price: [4, 12] },
];

function twoItems(rng: Rng): [Item, Item] {
  const first = pick(rng, ITEMS);
  let second = pick(rng, ITEMS);
  while (second === first) second = pick(rng, ITEMS);
  return [first, second];
}

function shopping(rng: Rng): Problem {
  return retry(rng, (rng) => {
    const person = pick(rng, PEOPLE);
    const form = rng.int(4);
    if (form <= 1) {
      // two items: the total, or the change from a bill
      const [i1, i2] = twoItems(rng);
      const q1 = between(rng, 2, 9);
      const q2 = between(rng, 2, 6);
      const p1 = between(rng, ...i1.price);
      const p2 = between(rng, ...i2.price);
      const c1 = q1 * p1;
      const c2 = q2 * p2;
      const total = c1 + c2;
      const buys = `${person.name} buys ${q1} ${i1.many} at $${p1} each and ${q2} ${i2.many} ` +
        `at $${p2} each.`;
      const steps = [
        `The ${i1.many} cost ${q1} * ${p1} = ${c1} dollars.`,
        `The ${i2.many} cost ${q2} * ${p2} = ${c2} dollars.`,
        `Together: ${c1} + ${c2} = ${total} dollars.`,
      ];
      if (form === 0) {
        return {
          question: `${buys} ${
            pick(rng, [
              `How much does ${person.they} spend in total?`,
              `How much does ${person.they} pay altogether?`,
              `What is the total cost in dollars?`,
            ])
          }`,
          steps,
          answer: String(total),
        };
      }
      const bill = [10, 20, 50, 100].find((b) => b > total);
      if (bill === undefined) return null;
      return {
        question: `${buys} ${capitalize(person.they)} pays with a $${bill} bill. ` +
          `How much change does ${person.they} get?`,
        steps: [...steps, `The change is ${bill} - ${total} = ${bill - total} dollars.`],
        answer: String(bill - total),
      };
    }
    const item = pick(rng, ITEMS);
    const count = between(rng, 2, 12);
    const price = between(rng, ...item.price);
    if (form === 2) {
      // the price of one
      const total = count * price;
      return {
        question: pick(rng, [
          `${person.name} pays $${total} for ${count} ${item.many}. How much does one cost?`,
          `${count} ${item.many} cost $${total}. What is the price of one ${item.one}?`,
        ]),
        steps: [
          `Divide the total by the number of ${item.many}: ${total} / ${count} = ${price}.`,
          `One ${item.one} costs ${price} dollars.`,
        ],
        answer: String(price),
      };
    }
    // money left
    const spent = count * price;
    const money = spent + between(rng, 0, 30);
    return {
      question: `${person.name} has $${money} and buys ${count} ${item.many} for $${price} ` +
        `each. How much money does ${person.they} have left?`,
      steps: [
        `The ${item.many} cost ${count} * ${price} = ${spent} dollars.`,
        `Money left: ${money} - ${spent} = ${money - spent} dollars.`,
      ],
      answer: String(money - spent),
    };
  });
}

// ---------------------------------------------------------------------------------------------
// Word problems: speed, time and distance

const MOVERS: readonly { who: string; speed: [number, number] }[] = [
  { who: "a train", speed: [60, 150] },
  { who: "a car", speed: [40, 110] },
  { who: "a bus", speed: [30, 80] },
  { who: "a cyclist", speed: [10, 25] },
  { who: "a runner", speed: [8, 15] },
  { who: "a boat", speed: [10, 40] },
  { who: "a walker", speed: [3, 6] },
];

function speed(rng: Rng): Problem {
  const mover = pick(rng, MOVERS);
  const unit = pick(rng, ["km", "km", "miles"]);
  const perHour = `${unit} per hour`;
  const s = between(rng, ...mover.speed);
  const t = between(rng, 2, 8);
  const d = s * t;
  const Who = capitalize(mover.who);
  const the = mover.who.replace(/^a /, "the ");
  const form = rng.int(5);
  if (form === 0) {
    return {
      question: pick(rng, [
        `${Who} travels at ${s} ${perHour} for ${t} hours. How far does ${the} go?`,
        `How many ${unit} does ${mover.who} cover in ${t} hours at ${s} ${perHour}?`,
      ]),
      steps: [
        "Distance is speed times time.",
        `${s} * ${t} = ${d} ${unit}.`,
      ],
      answer: String(d),
    };
  }
  if (form === 1) {
    return {
      question: pick(rng, [
        `${Who} covers ${d} ${unit} in ${t} hours. What is ${the}'s average speed in ${perHour}?`,
        `${Who} goes ${d} ${unit} in ${t} hours. How fast does ${the} go, in ${perHour}?`,
      ]),
      steps: [
        "Speed is distance divided by time.",
        `${d} / ${t} = ${s} ${perHour}.`,
      ],
      answer: String(s),
    };
  }
  if (form === 2) {
    return {
      question: pick(rng, [
        `How many hours does it take ${mover.who} to travel ${d} ${unit} at ${s} ${perHour}?`,
        `${Who} moves at ${s} ${perHour}. How long, in hours, does a trip of ${d} ${unit} take?`,
      ]),
      steps: [
        "Time is distance divided by speed.",
        `${d} / ${s} = ${t} hours.`,
      ],
      answer: String(t),
    };
  }
  if (form === 3) {
    // two legs
    const s2 = between(rng, ...mover.speed);
    const t2 = between(rng, 1, 5);
    const d2 = s2 * t2;
    return {
      question: `${Who} travels ${t} hours at ${s} ${perHour}, then ${t2} hours at ${s2} ` +
        `${perHour}. How far does ${the} travel in total?`,
      steps: [
        `First part: ${s} * ${t} = ${d} ${unit}.`,
        `Second part: ${s2} * ${t2} = ${d2} ${unit}.`,
        `Total: ${d} + ${d2} = ${d + d2} ${unit}.`,
      ],
      answer: String(d + d2),
    };
  }
  // minutes
  const minutes = pick(rng, [15, 30, 45, 90]);
  const hours = minutes / 60;
  // A multiple of 4 in the mover's range, so that the distance has at most two decimals.
  const speedInt = 4 *
    Math.max(1, between(rng, Math.ceil(mover.speed[0] / 4), mover.speed[1] >> 2));
  const distance = num(speedInt * hours);
  return {
    question: `${Who} moves at ${speedInt} ${perHour} for ${minutes} minutes. ` +
      `How many ${unit} does ${the} cover?`,
    steps: [
      `${minutes} minutes is ${minutes} / 60 = ${num(hours)} hours.`,
      `Distance: ${speedInt} * ${num(hours)} = ${distance} ${unit}.`,
    ],
    answer: distance,
  };
}

// ---------------------------------------------------------------------------------------------
// Word problems: ages

function ages(rng: Rng): Problem {
  const [a, b] = twoPeople(rng);
  const form = rng.int(4);
  if (form === 0) {
    // difference and sum
    const young = between(rng, 3, 40);
    const gap = between(rng, 1, 30);
    const sum = 2 * young + gap;
    return {
      question: `${a.name} is ${gap} years older than ${b.name}. The sum of their ages is ` +
        `${sum}. How old is ${b.name}?`,
      steps: [
        `Take away the difference: ${sum} - ${gap} = ${2 * young}.`,
        `That is twice ${b.name}'s age: ${2 * young} / 2 = ${young}.`,
        `So ${b.name} is ${young} and ${a.name} is ${young} + ${gap} = ${young + gap}.`,
      ],
      answer: String(young),
    };
  }
  if (form === 1) {
    // k times as old, in n years
    const young = between(rng, 2, 15);
    const k = between(rng, 2, 5);
    const later = between(rng, 2, 20);
    const old = k * young;
    return {
      question: `${a.name} is ${k} times as old as ${b.name}. ${b.name} is ${young}. ` +
        `How old will ${a.name} be in ${later} years?`,
      steps: [
        `${a.name} is ${k} * ${young} = ${old} now.`,
        `In ${later} years: ${old} + ${later} = ${old + later}.`,
      ],
      answer: String(old + later),
    };
  }
  if (form === 2) {
    // future age → past age
    const now = between(rng, 12, 60);
    const ahead = between(rng, 2, 15);
    const back = between(rng, 2, Math.min(11, now - 1));
    return {
      question: pick(rng, [
        `In ${ahead} years, ${a.name} will be ${now + ahead}. How old was ${a.they} ${back} ` +
        `years ago?`,
        `${a.name} will turn ${now + ahead} in ${ahead} years. What was ${a.their} age ${back} ` +
        `years ago?`,
      ]),
      steps: [
        `${a.name} is ${now + ahead} - ${ahead} = ${now} now.`,
        `${back} years ago: ${now} - ${back} = ${now - back}.`,
      ],
      answer: String(now - back),
    };
  }
  // when twice as old: a + t = 2(b + t) → t = a - 2b
  const young = between(rng, 2, 15);
  const t = between(rng, 1, 20);
  const old = 2 * young + t;
  return {
    question: `${a.name} is ${old} and ${b.name} is ${young}. In how many years will ` +
      `${a.name} be twice as old as ${b.name}?`,
    steps: [
      `Let t be the number of years. Then ${old} + t = 2 * (${young} + t) = ${2 * young} + 2t.`,
      `Subtract t and ${2 * young} from both sides: t = ${old} - ${2 * young} = ${t}.`,
      `Check: ${old} + ${t} = ${old + t} and ${young} + ${t} = ${young + t}, ` +
      `and ${young + t} * 2 = ${old + t}.`,
    ],
    answer: String(t),
  };
}

// ---------------------------------------------------------------------------------------------
// Word problems: sharing

const THINGS = [
  "candies",
  "marbles",
  "stickers",
  "cookies",
  "cards",
  "pencils",
  "coins",
  "shells",
] as const;

function sharing(rng: Rng): Problem {
  const [a, b] = twoPeople(rng);
  const things = pick(rng, THINGS);
  const form = rng.int(4);
  if (form === 0) {
    const k = between(rng, 2, 9);
    const each = between(rng, 2, 25);
    const total = k * each;
    return {
      question: pick(rng, [
        `${a.name} shares ${total} ${things} equally among ${k} friends. How many does each ` +
        `friend get?`,
        `${total} ${things} are split equally between ${k} children. How many ${things} does ` +
        `each child get?`,
      ]),
      steps: [`Divide: ${total} / ${k} = ${each}.`, `Each gets ${each} ${things}.`],
      answer: String(each),
    };
  }
  if (form === 1) {
    // ratio p:q
    const p = between(rng, 1, 5);
    let q = between(rng, 1, 6);
    if (q === p) q++;
    const unit = between(rng, 2, 15);
    const parts = p + q;
    const total = parts * unit;
    return {
      question: `${a.name} and ${b.name} share ${total} ${things} in the ratio ${p}:${q}. ` +
        `How many ${things} does ${b.name} get?`,
      steps: [
        `There are ${p} + ${q} = ${parts} parts.`,
        `One part is ${total} / ${parts} = ${unit} ${things}.`,
        `${b.name} gets ${q} parts: ${q} * ${unit} = ${q * unit}.`,
      ],
      answer: String(q * unit),
    };
  }
  if (form === 2) {
    // a pizza: 1/m and 1/k of it eaten
    const [m, k] = pick(rng, [[2, 3], [2, 4], [3, 4], [3, 6], [4, 6], [2, 6], [4, 8], [3, 5]]);
    const slices = lcm(m, k) * between(rng, 1, 3);
    const first = slices / m;
    const second = slices / k;
    const food = pick(rng, ["pizza", "cake", "pie"]);
    return {
      question: `A ${food} is cut into ${slices} equal slices. ${a.name} eats 1/${m} of it and ` +
        `${b.name} eats 1/${k} of it. How many slices are left?`,
      steps: [
        `${a.name} eats ${slices} / ${m} = ${first} slices.`,
        `${b.name} eats ${slices} / ${k} = ${second} slices.`,
        `Eaten: ${first} + ${second} = ${first + second}.`,
        `Left: ${slices} - ${first + second} = ${slices - first - second}.`,
      ],
      answer: String(slices - first - second),
    };
  }
  // boxes needed, rounding up
  const size = between(rng, 3, 12);
  const full = between(rng, 2, 15);
  const rest = between(rng, 1, size - 1);
  const total = size * full + rest;
  return {
    question: `${a.name} packs ${total} ${things} into boxes that hold ${size} each. How many ` +
      `boxes does ${a.they} need?`,
    steps: [
      `${full} full boxes hold ${size} * ${full} = ${size * full} ${things}.`,
      `That leaves ${total} - ${size * full} = ${rest}, so one more box is needed.`,
      `Boxes: ${full} + 1 = ${full + 1}.`,
    ],
    answer: String(full + 1),
  };
}

/** One generator per kind. */
export const PROBLEM_GENERATORS: Record<ProblemKind, (rng: Rng) => Problem> = {
  arithmetic,
  fractions,
  percent,
  equation,
  shopping,
  speed,
  ages,
  sharing,
};
