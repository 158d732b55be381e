// Khronos' glTF-Validator on one file: `node validate.mjs face.glb` prints its report as JSON (issues, counts, info).
// Used by tests/test_gltf_browser.py; external resources (a .gltf's .bin) are read from beside the file.
import { readFile } from "node:fs/promises";
import path from "node:path";
import validator from "gltf-validator";

const file = process.argv[2];
const report = await validator.validateBytes(new Uint8Array(await readFile(file)), {
  uri: path.basename(file),
  maxIssues: 100,
  externalResourceFunction: async (uri) => new Uint8Array(await readFile(path.resolve(path.dirname(file), decodeURIComponent(uri)))),
});
console.log(JSON.stringify(report));
