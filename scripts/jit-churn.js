// A JIT under load: compiles new functions all the time. Used by
// `fdir bench --only triggers` (src/cli/bench_triggers.rs) and
// tests/it/triggers.rs.
function churn(seed) {
  let acc = 0;
  for (let i = 0; i < 300; i++) {
    const f = new Function('x', 'y', `return (x * ${seed + i} + y) % 1000003 + ${i};`);
    for (let j = 0; j < 2000; j++) acc = f(acc, j);
  }
  return acc;
}
let n = 0;
churn(0);
console.log('ready');
setInterval(() => { churn(++n); }, 50);
