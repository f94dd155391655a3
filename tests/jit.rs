//! The Cranelift JIT against the integer reference interpreter, bit for bit:
//! on property-generated networks, on hand-made programs at the edges
//! (extreme integers, saturating clamps and shifts in both directions,
//! widths 2..16), and on the examples with real data through the CLI.

mod common;

use std::process::Output;

use common::{
    int_program, json, lower, ok, potc, quantize, random_inputs, random_program, wide_mac_program,
};
use potc::backend::interp::IntInterpreter;
use potc::backend::jit::{JitOptions, JitProgram};
use potc::program::{CheckedProgram, IntProgram, LoadError, ProgramError};
use potc::quant::QuantConfig;
use proptest::prelude::*;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn w4a8() -> QuantConfig {
    QuantConfig::parse("w4a8").unwrap()
}

/// Both engines on the same input integers.
fn both(p: &CheckedProgram, x: &[i64]) -> (Vec<i64>, Vec<i64>) {
    let interp = IntInterpreter::from_checked(p).unwrap();
    let jit = JitProgram::compile(p, JitOptions::default()).unwrap();
    (interp.run(x), jit.run(x))
}

/// Random networks with weight and activation widths 2..16.
#[test]
fn random_networks_match_the_interpreter() {
    common::run_seeds(file!(), 600, 450, |seed| {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let widths = |rng: &mut ChaCha8Rng| {
            let (w, a) = (rng.random_range(2..=16), rng.random_range(2..=16));
            let mut cfg = QuantConfig::parse(&format!("w{w}a{a}")).unwrap();
            cfg.per_channel = rng.random_bool(0.5);
            common::set_random_format(&mut cfg, rng);
            cfg
        };
        let Some((_, _, p)) = random_program(&mut rng, widths, 32) else { return Ok(false) };
        let x = random_inputs(&p, 3, &mut rng);
        let (want, got) = both(&p, &x);
        prop_assert_eq!(want, got, "{}", potc::ir::print(&p.graph));
        Ok(true)
    });
}

/// One sample at a time on two threads: each layer's range split between
/// them (the batch-1 path) gives the same integers.
#[test]
fn single_samples_split_over_two_threads_match() {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
    common::run_seeds(file!(), 600, 450, |seed| {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let Some((_, _, p)) = random_program(&mut rng, |_| w4a8(), 32) else { return Ok(false) };
        let x = random_inputs(&p, 2, &mut rng);
        let interp = IntInterpreter::new(&p.graph, &p.tensors).unwrap();
        let jit = JitProgram::compile(&p, JitOptions::default()).unwrap();
        for sample in x.chunks(jit.input_len) {
            let got = pool.install(|| jit.run(sample));
            prop_assert_eq!(interp.run(sample), got, "{}", potc::ir::print(&p.graph));
        }
        Ok(true)
    });
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 600, ..ProptestConfig::default() })]

    /// Shifts in both directions up to the loader's limits, clamps to every
    /// width 2..16, signed and unsigned, on i16 inputs at the extremes.
    #[test]
    fn shifts_and_clamps_at_the_edges(
        bits in 2usize..=16,
        signed in any::<bool>(),
        narrow in any::<bool>(),
        up in proptest::collection::vec(0i32..=62, 3),
        k in proptest::collection::vec(prop_oneof![-62i32..=62, Just(-32), Just(32), Just(33), Just(31)], 3),
        back in proptest::collection::vec(0i32..=62, 3),
        seed in any::<u64>(),
    ) {
        let narrow = narrow && signed;
        let elem = if signed { format!("i{bits}") } else { format!("u{bits}") };
        let text = format!(
            "model e(%x: i16[3, 6]) {{
  %s = shl(%x) : i32[3, 6]
  %q = requant(%s) {{bits = {bits}, signed = {signed}, narrow = {narrow}}} : {elem}[3, 6]
  %w = shl(%q) : i32[3, 6]
  %a = add(%w, %s) : i32[3, 6]
  %m = max_pool1d(%a) {{kernel = 2}} : i32[3, 3]
  %r = relu(%m) : i32[3, 3]
  %g = global_sum_pool(%r) : i32[3]
  return %g
}}"
        );
        let p = int_program(&text, &[("s.shift", vec![3], up), ("q.shift", vec![3], k), ("w.shift", vec![3], back)]);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let x = random_inputs(&p, 4, &mut rng);
        let (want, got) = both(&p, &x);
        prop_assert_eq!(want, got);
    }
}

/// 16-bit inputs and weights, every geometry attribute set, accumulators
/// near the i32 limit (`common::wide_mac_program`).
#[test]
fn wide_macs_near_the_accumulator_limit() {
    let p = wide_mac_program();
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let x = random_inputs(&p, 64, &mut rng);
    let (want, got) = both(&p, &x);
    assert_eq!(want, got);
    assert!(want.iter().any(|&v| v.abs() > 1 << 20), "reaches large values");
}

/// A dilation wider than the input: with `padding = same` the outer taps
/// read only padding (an empty range of output steps), so each output is
/// the bias plus the centre tap. The interpreter used to compute the start
/// of that empty range's input slice and panic.
#[test]
fn taps_that_read_only_padding_add_nothing() {
    let text = "model m(%x: i8[1, 150]) {
  %c = int_conv1d(%x) {out_channels = 1, kernel = 3, padding = same, dilation = 200, w_bits = 8} : i32[1, 150]
  return %c
}";
    let p =
        int_program(text, &[("c.w", vec![1, 1, 3], vec![5, 3, -7]), ("c.b", vec![1], vec![11])]);
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let x = random_inputs(&p, 2, &mut rng);
    let (want, got) = both(&p, &x);
    assert_eq!(want, x.iter().map(|v| 11 + 3 * v).collect::<Vec<_>>());
    assert_eq!(want, got);
}
fn sha(out: Output) -> String {
    json(&ok(out))["logits_sha256"].as_str().unwrap().to_string()
}

/// `potc run --engine jit` (the default) and `eval --mode jit` agree with the
/// interpreter and the simulation on every test sample.
#[test]
fn examples_on_gunpoint_agree_with_the_interpreter() {
    let (train, test) = ("examples/data/GunPoint_TRAIN.ts", "examples/data/GunPoint_TEST.ts");
    for m in ["fcn", "resnet"] {
        let dir = tempfile::tempdir().unwrap();
        let ck = dir.path().join("q.safetensors");
        let (ck, out) = (ck.to_str().unwrap(), dir.path().join("int"));
        let out = out.to_str().unwrap();
        let model = format!("examples/{m}.pot");
        let args = ["train", &model, "--train", train, "--test", test, "-o", ck];
        let train_out = potc(&[&args[..], &["--quant", "w4a8", "--epochs", "0"]].concat());
        assert!(train_out.status.success());
        assert!(potc(&["lower", &model, "--weights", ck, "-o", out]).status.success());
        let interp = sha(potc(&["run", out, "--data", test, "--engine", "interp", "--json"]));
        let jit = sha(potc(&["run", out, "--data", test, "--json"]));
        let eval = |mode: &str| {
            sha(potc(&["eval", &model, "--weights", ck, "--data", test, "--mode", mode, "--json"]))
        };
        let (evaljit, fq) = (eval("jit"), eval("fake-quant"));
        assert_eq!(jit, interp, "{m}");
        assert_eq!(evaljit, fq, "{m}");
        assert_eq!(jit, fq, "{m}");
        split_samples_match(out, test);
    }
}

/// The batch-1 path: single samples of real data with every layer split
/// over two threads (many channel blocks here: 128 and 256 channels).
fn split_samples_match(program: &str, data: &str) {
    let p = potc::driver::load_program(program).unwrap();
    let ds = potc::data::load(std::path::Path::new(data)).unwrap();
    let x = p.quantize_input(&ds.x[..8 * ds.channels * ds.length]);
    let interp = IntInterpreter::new(&p.graph, &p.tensors).unwrap();
    let jit = JitProgram::compile(&p, JitOptions::default()).unwrap();
    let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
    let mut outputs = std::collections::BTreeSet::new();
    for sample in x.chunks(jit.input_len) {
        let got = pool.install(|| jit.run(sample));
        assert_eq!(got, interp.run(sample), "{program}");
        outputs.insert(got);
    }
    assert!(outputs.len() > 1, "the samples should not all give one output");
}

/// Without VNNI (as on other hosts) the dot products take the portable
/// instruction sequence; the integers are the same.
#[test]
fn the_portable_dot_product_matches_too() {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let (mut tested, mut tried) = (0, 0);
    while tested < 40 {
        tried += 1;
        assert!(tried <= 400, "only {tested} of {tried} random networks lowered");
        let Some((_, _, p)) = random_program(&mut rng, |_| w4a8(), 32) else { continue };
        let x = random_inputs(&p, 3, &mut rng);
        let interp = IntInterpreter::new(&p.graph, &p.tensors).unwrap().run(&x);
        let opts = JitOptions { no_vnni: true, disasm: true, ..JitOptions::default() };
        let jit = JitProgram::compile(&p, opts).unwrap();
        assert!(!jit.disasm.as_deref().unwrap_or("").contains("vpdpbusd"));
        assert_eq!(jit.run(&x), interp);
        tested += 1;
    }
}

/// On a VNNI host the dot-product tree becomes `vpdpbusd` (the point of its
/// shape); elsewhere this test has nothing to check.
#[test]
fn vnni_hosts_get_vpdpbusd() {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avxvnni") || std::is_x86_feature_detected!("avx512vnni") {
        let (_, g) = potc::driver::load_model("examples/tiny.pot").unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let (q, store) = quantize(&g, &QuantConfig::parse("w8a8").unwrap(), &mut rng);
        let p = lower(&q, &store, 32).unwrap();
        let opts = JitOptions { disasm: true, ..JitOptions::default() };
        let jit = JitProgram::compile(&p, opts).unwrap();
        assert!(jit.disasm.as_deref().unwrap_or("").contains("vpdpbusd"));
    }
}

/// A convolution declared without a bias whose tensors still hold one: the
/// loader refuses the program, naming the file and the tensor, and the
/// engines (given it anyway, in memory) agree on ignoring it. The JIT's
/// vector convolution used to add it.
#[test]
fn a_bias_the_model_does_not_declare_is_refused_and_never_added() {
    let text = "model m(%x: i8[2, 10]) {
  %c = int_conv1d(%x) {out_channels = 4, kernel = 3, padding = same, w_bits = 8} : i32[4, 10]
  return %c
}";
    let tensors = [("c.w", vec![4, 2, 3], (0..24).map(|i| i % 5 - 2).collect::<Vec<i32>>())];
    let p = int_program(&text.replace("w_bits = 8", "w_bits = 8, bias = false"), &tensors);
    let mut extra = p.clone().into_inner();
    extra.tensors.insert("c.b".into(), (vec![4], vec![1000, -1000, 7, 9]));
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let x = random_inputs(&p, 2, &mut rng);
    let (want, _) = both(&p, &x);
    let interp = IntInterpreter::new(&extra.graph, &extra.tensors).unwrap().run(&x);
    assert_eq!(interp, want);
    // The JIT takes only a `CheckedProgram`, and the check refuses the bias.
    let e = extra.clone().checked().unwrap_err();
    assert_eq!(e, ProgramError::UnexpectedTensor("c.b".into()));

    let dir = tempfile::tempdir().unwrap();
    extra.save(dir.path()).unwrap();
    let e = IntProgram::load(dir.path(), extra.graph.clone()).unwrap_err();
    assert!(matches!(&e, LoadError::Check { error: ProgramError::UnexpectedTensor(_), .. }));
    let e = e.to_string();
    assert!(e.contains("weights.safetensors") && e.contains("unexpected tensor `c.b`"), "{e}");
}

/// `w_format = pot` without `w_bits`: the loader computed `1 << 32766` for
/// the range (no check then applied, and a 2^20 weight ran); it now takes
/// the widest power-of-two format and refuses the weight.
#[test]
fn power_of_two_weights_without_a_width_are_range_checked() {
    let text = "model m(%x: i8[1, 4]) {
  %c = int_conv1d(%x) {out_channels = 1, kernel = 1, w_format = pot, bias = false} : i32[1, 4]
  return %c
}";
    let ok = int_program(text, &[("c.w", vec![1, 1, 1], vec![1 << 14])]);
    let mut bad = ok.clone().into_inner();
    bad.tensors.insert("c.w".into(), (vec![1, 1, 1], vec![1 << 20]));
    let e = bad.check().unwrap_err().to_string();
    assert!(e.contains("tensor `c.w`: weight 1048576 is outside the 5-bit range"), "{e}");
}

/// A requant shift of `i32::MIN` (one edited word of a weights file, found
/// by the `program` fuzz target): the check negated it to name the left
/// shift, which overflowed (a panic with overflow checks, a wrong message
/// without); it is refused, naming the shift.
#[test]
fn a_requant_shift_of_i32_min_is_refused() {
    let text = "model m(%x: i8[1, 4]) {
  %q = requant(%x) {bits = 8} : i8[1, 4]
  return %q
}";
    let ok = int_program(text, &[("q.shift", vec![1], vec![0])]);
    let mut bad = ok.clone().into_inner();
    bad.tensors.insert("q.shift".into(), (vec![1], vec![i32::MIN]));
    let e = bad.check().unwrap_err().to_string();
    assert!(e.contains("tensor `q.shift`: left shift 2147483648 exceeds 62"), "{e}");
}

/// A float model whose convolutions cross the microkernels' tile edges:
/// up to 70 output channels (tiles of 12, 32 and 64, blocks of 4 and 16), up
/// to 21 input channels (groups of 4), kernels, strides and dilations up
/// to 5 and 3, lengths from 1 (shorter than a tile of 4 or 8 steps).
fn wide_network(rng: &mut ChaCha8Rng) -> String {
    let (c, o, o2) = (rng.random_range(1..=21), rng.random_range(1..=70), rng.random_range(1..=70));
    let (k, s, d) = (rng.random_range(1..=5), rng.random_range(1..=3), rng.random_range(1..=3));
    let span = d * (k - 1) + 1;
    let l = rng.random_range(1..=24usize);
    let p = if l < span { span.div_ceil(2) } else { rng.random_range(0..=k / 2) };
    let bias = rng.random_bool(0.7);
    format!(
        "model w(%x: [{c}, {l}]) {{
  %c = conv1d(%x) {{out_channels = {o}, kernel = {k}, stride = {s}, padding = [{p}, {p}], dilation = {d}, bias = {bias}}}
  %r = relu(%c)
  %c2 = conv1d(%r) {{out_channels = {o2}, kernel = {k2}, padding = same}}
  %g = global_avg_pool(%c2)
  %y = linear(%g) {{out_features = 3}}
  return %y
}}
",
        k2 = rng.random_range(1..=4)
    )
}

/// Every family of MAC kernels this build has, on the host if it has it,
/// against the interpreter: the random networks above and ones crossing
/// the tile edges. A family the host lacks is named on standard error.
#[test]
fn every_kernel_family_the_host_has_matches_the_interpreter() {
    use potc::backend::jit::micro::Kernels;
    use std::io::Write;
    for (family, available) in Kernels::all() {
        if let Err(why) = available {
            let _ = writeln!(std::io::stderr(), "skipped: {} kernels ({why})", family.name());
            continue;
        }
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let (mut tested, mut tried, mut fused) = (0, 0, 0);
        while tested < 150 {
            tried += 1;
            assert!(tried <= 1000, "{}: only {tested} of {tried} networks lowered", family.name());
            let text = wide_network(&mut rng);
            let g = potc::syntax::parse(&text).unwrap_or_else(|e| panic!("{text}\n{e:?}"));
            let (w, a) = (rng.random_range(2..=8), rng.random_range(2..=8));
            let cfg = QuantConfig::parse(&format!("w{w}a{a}")).unwrap();
            let (q, store) = quantize(&g, &cfg, &mut rng);
            let Ok(p) = lower(&q, &store, 32) else { continue };
            let x = random_inputs(&p, 3, &mut rng);
            let want = IntInterpreter::from_checked(&p).unwrap().run(&x);
            let opts = JitOptions { kernels: family, ..JitOptions::default() };
            let jit = JitProgram::compile(&p, opts).unwrap();
            assert_eq!(jit.kernels, family);
            fused += jit.fused_requants;
            assert_eq!(jit.run(&x), want, "{}: {text}", family.name());
            // One sample split over two threads: each half a range of tiles.
            let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
            let one = &x[..jit.input_len];
            assert_eq!(pool.install(|| jit.run(one)), want[..jit.output_len], "{text}");
            tested += 1;
        }
        // The families with a requantizing epilogue met it often.
        if family == Kernels::Avx512 {
            assert!(fused >= 50, "{fused} requantizations fused in {tested} networks");
        }
        let _ =
            writeln!(std::io::stderr(), "tested: {} kernels ({tested} networks)", family.name());
    }
}

/// `--kernels` on the command line: the family is reported by `bench`
/// with the MAC rate, and the interpreter refuses a choice it has no use for.
#[test]
fn kernels_are_chosen_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let (ck, int) = (dir.path().join("q.st"), dir.path().join("int"));
    let (ck, int) = (ck.to_str().unwrap(), int.to_str().unwrap());
    let (train, test) = ("examples/data/GunPoint_TRAIN.ts", "examples/data/GunPoint_TEST.ts");
    ok(potc(
        &["train", "examples/tiny.pot", "--train", train, "--test", test, "-o", ck]
            .iter()
            .chain(&["--quant", "w4a8", "--epochs", "0"])
            .copied()
            .collect::<Vec<_>>(),
    ));
    ok(potc(&["lower", "examples/tiny.pot", "--weights", ck, "-o", int]));
    // Each family: reported by name where the host has it, refused with
    // the reason where it does not.
    for (family, available) in potc::backend::jit::micro::Kernels::all() {
        let name = family.name();
        let out = potc(&["bench", int, "--kernels", name, "--seconds", "0.05", "--json"]);
        match available {
            Ok(()) => {
                let b = json(&ok(out));
                assert_eq!(b["kernels"], name);
                assert!(b["gmac_per_second"].as_f64().unwrap() > 0.0);
            }
            Err(why) => {
                assert!(!out.status.success(), "{name}");
                assert!(String::from_utf8_lossy(&out.stderr).contains(&why), "{name}");
            }
        }
    }
    let out = potc(&["run", int, "--data", test, "--engine", "interp", "--kernels", "xmm"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("the interpreter has none"));
}
