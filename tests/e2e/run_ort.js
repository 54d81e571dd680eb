// Runs an ONNX model in ONNX Runtime (the npm package onnxruntime-node,
// whose CPU binaries ship inside it) on one float32 input.
// Usage: node run_ort.js MODEL.onnx INPUT.bin N,C,H,W OUTPUT.bin
// INPUT.bin and OUTPUT.bin hold raw little-endian float32 values; the
// output's shape is printed as JSON on stdout.
const fs = require('fs');
const path = require('path');
const dir = process.env.BSP_ORT_DIR || path.join(process.env.HOME, '.cache', 'bsp', 'ort');
const ort = require(path.join(dir, 'node_modules', 'onnxruntime-node'));

(async () => {
  const [model, input, dims, output] = process.argv.slice(2);
  const shape = dims.split(',').map(Number);
  const buf = fs.readFileSync(input);
  const x = new Float32Array(buf.buffer, buf.byteOffset, buf.length / 4);
  const session = await ort.InferenceSession.create(model);
  const feeds = {};
  feeds[session.inputNames[0]] = new ort.Tensor('float32', x, shape);
  const out = (await session.run(feeds))[session.outputNames[0]];
  fs.writeFileSync(output, Buffer.from(out.data.buffer, out.data.byteOffset, out.data.byteLength));
  console.log(JSON.stringify({ shape: out.dims, version: require(path.join(dir, 'node_modules', 'onnxruntime-node', 'package.json')).version }));
})().catch((e) => {
  console.error(String(e));
  process.exit(1);
});
