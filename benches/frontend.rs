//! Front-end speed: what `potc check` spends on a model (parse, build,
//! verify) and what `potc print` adds. Target (issue 2): `potc check
//! examples/fcn.pot` under 10 ms end to end in release; the process-level
//! figure is measured with `scripts/bench-check.sh`.

use criterion::{criterion_group, criterion_main, Criterion};
use potc::ir::print;
use potc::syntax;
use std::hint::black_box;

fn frontend(c: &mut Criterion) {
    for (name, src) in [
        ("fcn", include_str!("../examples/fcn.pot")),
        ("resnet", include_str!("../examples/resnet.pot")),
    ] {
        c.bench_function(&format!("check/{name}"), |b| {
            b.iter(|| syntax::parse(black_box(src)).unwrap())
        });
        let g = syntax::parse(src).unwrap();
        c.bench_function(&format!("print/{name}"), |b| b.iter(|| print(black_box(&g))));
    }
}

criterion_group!(benches, frontend);
criterion_main!(benches);
