// What a clock read and a Buffer view cost on this machine, ns each (tight loops; the VM's clock source decides the first two). Diagnostics for bench/results/per-call-cost.md.
// node bench/clock-cost.mjs
const N = 3e6;
const buf = Buffer.allocUnsafe(65536);
let sink = 0;
const time = (fn) => {
  const t = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t) / N;
};
for (let round = 1; round <= 3; round++) {
  const date = time(() => {
    for (let i = 0; i < N; i++) sink += Date.now() & 1;
  });
  const perf = time(() => {
    for (let i = 0; i < N; i++) sink += performance.now() > 0 ? 1 : 0;
  });
  const view = time(() => {
    for (let i = 0; i < N; i++) sink += buf.subarray(i & 1023, (i & 1023) + 100).length;
  });
  const loop = time(() => {
    for (let i = 0; i < N; i++) sink += i & 1;
  });
  console.log(`round ${round}: Date.now ${date.toFixed(1)} ns, performance.now ${perf.toFixed(1)} ns, Buffer#subarray ${view.toFixed(1)} ns, empty loop ${loop.toFixed(1)} ns`);
}
if (sink === -1) console.log(sink);
