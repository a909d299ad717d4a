// Answer normalisation and matching, case by case.

import { answersMatch, normalizeAnswer } from "../../lib/data/answers.ts";
import { assert, assertEquals } from "../model/model_helpers.ts";

Deno.test("answers: normalizeAnswer writes each form canonically", () => {
  const cases: [string, string][] = [
    ["17", "17"],
    ["  17 \n", "17"],
    ["17.", "17"],
    ["\\boxed{17}", "17"],
    ["The answer is \\boxed{\\frac{1}{2}}", "1/2"], // LaTeX fractions become a/b
    ["\\boxed{6/8}.", "3/4"],
    ["1,234", "1234"],
    ["-1,234,567.50", "-1234567.5"],
    ["12,34", "12,34"], // not a thousands separator: left alone
    ["6/8", "3/4"],
    ["6 / 8", "3/4"],
    ["-6/8", "-3/4"],
    ["6/-8", "-3/4"],
    ["-6/-8", "3/4"],
    ["4/2", "2"],
    ["0/5", "0"],
    ["3/0", "3/0"],
    ["-0", "0"],
    ["+5", "5"],
    ["007", "7"],
    ["0.50", "0.5"],
    ["2.0", "2"],
    ["-0.0", "0"],
    [".5", "0.5"],
    ["-.25", "-0.25"],
    ["x = 5", "5"],
    ["y=-3", "-3"],
    ["123456789012345678901234567890", "123456789012345678901234567890"],
    ["no  answer", "no answer"],
    ["", ""],
  ];
  for (const [input, expected] of cases) {
    assertEquals(normalizeAnswer(input), expected, `normalizeAnswer(${JSON.stringify(input)})`);
  }
});

Deno.test("answers: answersMatch compares normalised forms and exact values", () => {
  const same: [string, string][] = [
    ["3/4", "6/8"],
    ["3/4", "0.75"],
    ["0.5", "1/2"],
    ["2", "4/2"],
    ["2", "2.00"],
    ["\\boxed{1,000}", "1000"],
    ["-0", "0"],
    ["x = -3", "-3."],
    ["seven", " seven "],
  ];
  const different: [string, string][] = [
    ["3/4", "4/3"],
    ["1/3", "0.33"],
    ["-2", "2"],
    ["12", "1.2"],
    ["", ""],
    ["5", ""],
    ["3/0", "6/0"],
  ];
  for (const [a, b] of same) {
    assert(answersMatch(a, b), `${JSON.stringify(a)} should match ${JSON.stringify(b)}`);
    assert(answersMatch(b, a), `${JSON.stringify(b)} should match ${JSON.stringify(a)}`);
  }
  for (const [a, b] of different) {
    assert(!answersMatch(a, b), `${JSON.stringify(a)} should not match ${JSON.stringify(b)}`);
  }
});

Deno.test("answers: LaTeX and the wrapping reasoning models add around a number", () => {
  const same: [string, string][] = [
    ["\\frac{3}{4}", "0.75"],
    ["\\dfrac{3}{4}", "3/4"],
    ["\\tfrac{6}{8}", "3/4"],
    ["\\frac34", "3/4"],
    ["\\frac{-1}{2}", "-0.5"],
    ["90^\\circ", "90"],
    ["90^{\\circ}", "90"],
    ["25\\%", "25"],
    ["\\$18", "18"],
    ["$18", "18"],
    ["5\\text{ cm}", "5"],
    ["1,\\!000", "1000"],
    ["**42**", "42"],
    ["** 42", "42"],
    ["\\boxed{\\dfrac{1}{2}}", "0.5"],
  ];
  for (const [a, b] of same) {
    if (!answersMatch(a, b)) {
      throw new Error(`${JSON.stringify(a)} should match ${JSON.stringify(b)}`);
    }
  }
  // Not numbers: only the wrapping goes; different values stay different.
  for (const [a, b] of [["\\frac{3}{4}", "4/3"], ["x^2+1", "x^2"], ["25\\%", "26"]]) {
    if (answersMatch(a, b)) throw new Error(`${a} should not match ${b}`);
  }
});
