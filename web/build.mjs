// `npm run build`: bundles src/ into dist/ (index.html, app.js, app.css).
// The output must be byte-identical for the same sources and lockfile (CI
// rebuilds it and diffs it against the committed copy), so: fixed names, no
// hashes, no sourcemaps, no timestamps, and esbuild's deterministic output.

import { copyFile, mkdir, rm } from "node:fs/promises";
import { build } from "esbuild";

const dist = new URL("./dist/", import.meta.url);
await rm(dist, { recursive: true, force: true });
await mkdir(dist, { recursive: true });

const common = {
  bundle: true,
  minify: true,
  legalComments: "none",
  charset: "utf8",
  logLevel: "warning",
  absWorkingDir: new URL(".", import.meta.url).pathname,
};

await build({
  ...common,
  entryPoints: ["src/main.ts"],
  outfile: "dist/app.js",
  format: "iife",
  // BigInt literals (record ids are uint64) need ES2020.
  target: ["es2020", "chrome100", "firefox100", "safari15"],
});

await build({
  ...common,
  entryPoints: ["src/app.css"],
  outfile: "dist/app.css",
  target: ["chrome100", "firefox100", "safari15"],
});

await copyFile(new URL("./src/index.html", import.meta.url), new URL("index.html", dist));
