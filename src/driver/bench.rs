//! `potc bench`: inference speed of a lowered program on random inputs of
//! its shape, for comparison with other runtimes (`scripts/bench-infer.sh`).

use std::time::{Duration, Instant};

use super::lower::load_program;
use super::model_data::pool;
use super::Failure;
use crate::backend::jit::micro::KernelChoice;
use crate::backend::{engine, EngineKind, EngineOptions};

/// Flags of `potc bench` (see `potc bench --help`).
#[derive(clap::Args, Debug, Clone)]
pub struct BenchOptions {
    /// A program directory written by `potc lower`.
    pub program: String,
    /// The engine to measure.
    #[arg(long, value_enum, default_value_t = EngineKind::Jit)]
    pub engine: EngineKind,
    /// Samples per batch (1: latency of one sample).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub batch: u32,
    /// The JIT's MAC kernels; a family the CPU lacks is an error.
    #[arg(long, value_enum, default_value_t = KernelChoice::Auto)]
    pub kernels: KernelChoice,
    /// Worker threads a batch is spread over (0: one per core).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Seconds of measurement (after a warm-up of a tenth of it).
    #[arg(long, default_value_t = 2.0)]
    pub seconds: f64,
    /// Print one JSON object on standard output.
    #[arg(long)]
    pub json: bool,
    /// Write the JIT's machine code (as text) to this file.
    #[arg(long, value_name = "FILE")]
    pub disasm: Option<String>,
}

pub fn bench(o: &BenchOptions) -> Result<String, Failure> {
    if !(o.seconds > 0.0 && o.seconds <= 600.0) {
        return Err(Failure("error: --seconds must lie in (0, 600]\n".into()));
    }
    let program = load_program(&o.program)?;
    let batch = o.batch as usize;
    let x = program.random_input(batch, 0);
    let threads = pool(o.threads)?;
    let opts = EngineOptions { disasm: o.disasm.is_some(), kernels: o.kernels };
    let macs = crate::report::report(&program, crate::report::Target::Cpu)
        .map(|r| r.totals.macs)
        .unwrap_or(0);
    let engine = engine(o.engine, &program, opts).map_err(|e| Failure(format!("error: {e}\n")))?;
    if let (Some(path), Some(text)) = (&o.disasm, engine.disasm()) {
        std::fs::write(path, text)
            .map_err(|e| Failure(format!("{path}: error: cannot write: {e}\n")))?;
    }
    let compile_ms = engine.compile_time().map(|t| t.as_secs_f64() * 1e3);
    let run = || {
        std::hint::black_box(engine.run(&x));
    };
    let times = threads.install(|| measure(&run, Duration::from_secs_f64(o.seconds)));
    let median = times[times.len() / 2];
    let latency_us = median.as_secs_f64() * 1e6;
    let sps = batch as f64 / median.as_secs_f64();
    let n = threads.current_num_threads();
    let mut out = serde_json::json!({
        "engine": engine.name(),
        "batch": batch,
        "threads": n,
        "latency_us_median": latency_us,
        "samples_per_second": sps,
        "runs": times.len(),
        "macs_per_sample": macs,
        "gmac_per_second": macs as f64 * sps / 1e9,
    });
    if let Some(k) = engine.kernels() {
        out["kernels"] = k.into();
    }
    if let Some(ms) = compile_ms {
        out["compile_ms"] = ms.into();
    }
    Ok(if o.json {
        out.to_string() + "\n"
    } else {
        let kernels = engine.kernels().map(|k| format!(" ({k} kernels)")).unwrap_or_default();
        format!(
            "{}{kernels}: batch {batch}, {n} threads: median {latency_us:.1} us per batch, {sps:.0} samples/s, {:.1} GMAC/s ({} runs)\n",
            engine.name(),
            macs as f64 * sps / 1e9,
            times.len()
        )
    })
}

/// Sorted run times of `f` over about `budget`, after a warm-up: at least
/// one run, and up to `MIN_RUNS` for a steadier median while that stays
/// within twice the budget. A first run longer than the budget is the
/// measurement (warming up matters little then): a huge batch runs once,
/// not `MIN_RUNS + 1` times.
fn measure(f: &(dyn Fn() + Sync), budget: Duration) -> Vec<Duration> {
    const MIN_RUNS: usize = 5;
    let warm = Instant::now();
    f();
    let first = warm.elapsed();
    if first >= budget {
        return vec![first];
    }
    while warm.elapsed() < budget / 10 {
        f();
    }
    let start = Instant::now();
    let mut times = vec![];
    loop {
        let t = Instant::now();
        f();
        times.push(t.elapsed());
        let spent = start.elapsed();
        if spent >= budget * 2 || (spent >= budget && times.len() >= MIN_RUNS) {
            break;
        }
    }
    times.sort();
    times
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A run slower than the budget is timed once; `--seconds 0.1` on a
    /// huge batch used to run it six times.
    #[test]
    fn a_slow_batch_runs_once() {
        let calls = AtomicUsize::new(0);
        let slow = || {
            calls.fetch_add(1, Ordering::Relaxed);
            std::thread::sleep(Duration::from_millis(30));
        };
        let times = measure(&slow, Duration::from_millis(10));
        assert_eq!((times.len(), calls.load(Ordering::Relaxed)), (1, 1));
    }
}
