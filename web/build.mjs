// Build the three pages into dist/: one bundle per page (esbuild), their HTML and style
// sheets, and Leaflet's style sheet and images, so the gateway serves everything itself and
// the pages load nothing from another host (no CDN at run time).
import { build } from "esbuild";
import { cpSync, mkdirSync, readdirSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, "dist");
const assets = join(out, "assets");

rmSync(out, { recursive: true, force: true });
mkdirSync(assets, { recursive: true });

await build({
  entryPoints: {
    board: join(here, "src/board/main.ts"),
    unit: join(here, "src/unit/main.ts"),
    desk: join(here, "src/desk/main.ts"),
  },
  bundle: true,
  format: "esm",
  target: ["es2022"],
  outdir: assets,
  minify: true,
  sourcemap: false,
  legalComments: "linked",
  logLevel: "warning",
});

for (const name of readdirSync(join(here, "src/pages"))) {
  const target = name.endsWith(".html") ? out : assets;
  cpSync(join(here, "src/pages", name), join(target, name));
}
cpSync(join(here, "node_modules/leaflet/dist/leaflet.css"), join(assets, "leaflet.css"));
cpSync(join(here, "node_modules/leaflet/dist/images"), join(assets, "images"), { recursive: true });
console.log(`pages built in ${out}`);
