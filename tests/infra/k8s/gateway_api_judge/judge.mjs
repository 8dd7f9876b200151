// Test-only judge of the plan's Gateway API and cert-manager objects.
//
// Input: a JSON file holding a list of manifests ({apiVersion, kind, metadata, spec}).
// 1. Each manifest is validated by its model from @kubernetes-models (JSON
//    schemas generated from the upstream Go types: required fields, types,
//    enums, patterns, lengths, list bounds).
// 2. TypeScript type-checks every manifest as an object literal of the model's
//    interface: a field the API does not define is an error (the API server
//    would drop it silently), as kubectl's strict field validation would say.
// Output (stdout): {"validated": [...], "errors": [...]}; exit 1 on any error.
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from "node:fs";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { execFileSync } from "node:child_process";

const here = dirname(fileURLToPath(import.meta.url));
const MODELS = {
  "gateway.networking.k8s.io/v1": "@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1",
  "cert-manager.io/v1": "@kubernetes-models/cert-manager/cert-manager.io/v1",
};

const manifests = JSON.parse(readFileSync(process.argv[2], "utf8"));
const errors = [];
const validated = [];
const typed = [];
for (const [index, manifest] of manifests.entries()) {
  const base = MODELS[manifest.apiVersion];
  const label = `${manifest.kind}/${manifest.metadata?.name ?? index}`;
  if (!base) {
    errors.push(`${label}: no model for apiVersion ${manifest.apiVersion}`);
    continue;
  }
  const module = await import(`${base}/${manifest.kind}`);
  try {
    new module[manifest.kind](manifest).validate();
    validated.push(label);
  } catch (error) {
    errors.push(`${label}: ${error.message}`);
  }
  typed.push(
    `import type { I${manifest.kind} as T${index} } from "${base}/${manifest.kind}";\n` +
      `export const m${index}: T${index} = ${JSON.stringify(manifest)};\n`,
  );
}

const work = mkdtempSync(join(here, ".check-"));
writeFileSync(join(work, "manifests.ts"), typed.join("\n"));
writeFileSync(
  join(work, "tsconfig.json"),
  JSON.stringify({
    compilerOptions: {
      strict: true,
      noEmit: true,
      module: "nodenext",
      moduleResolution: "nodenext",
      target: "es2022",
      skipLibCheck: true,
      typeRoots: [],
    },
    files: ["manifests.ts"],
  }),
);
try {
  execFileSync(process.execPath, [join(here, "node_modules/typescript/bin/tsc"), "-p", work], {
    encoding: "utf8",
    stdio: "pipe",
  });
} catch (error) {
  for (const line of String(error.stdout).split("\n").filter((l) => l.includes("error TS"))) {
    const match = /manifests\.ts\((\d+),/.exec(line);
    errors.push(`typescript: ${line.replace(/^.*?error /, "")}${match ? ` (line ${match[1]})` : ""}`);
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}
console.log(JSON.stringify({ validated, errors }));
process.exit(errors.length ? 1 : 0);
