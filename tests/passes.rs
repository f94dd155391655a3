//! Pass cases: tests/cases/<pass>/*.pot, one case per file. Line 1 names the
//! pipeline (`// RUN: a,b`, optionally `--quant w4a8` with `--input-bits N`
//! and `--pot-weights`), line 2 the intent. The snapshot shows the IR
//! after parsing and after each pass, exactly as `potc print --print-after-all`
//! shows it; the verifier runs after every pass, and the result must print and parse back to itself.

use potc::driver;
use potc::ir::print;
use potc::passes::registry;
use potc::quant::QuantConfig;
use potc::syntax;
use std::path::Path;

fn run_case(path: &Path) -> String {
    let src = std::fs::read_to_string(path).unwrap();
    let pipeline = src
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("// RUN:"))
        .unwrap_or_else(|| panic!("{}: line 1 must be `// RUN: <passes>`", path.display()));
    let (pipeline, target) = match pipeline.split_once(" --target asic") {
        Some((p, _)) => (p, potc::eqsat::Target::Asic),
        None => (pipeline, potc::eqsat::Target::Cpu),
    };
    let (pipeline, random) = match pipeline.split_once(" --weights random") {
        Some((p, _)) => (p, true),
        None => (pipeline, false),
    };
    let (pipeline, quant) = match pipeline.split_once(" --quant ") {
        Some((p, q)) => (p, Some(quant_flags(q))),
        None => (pipeline, None),
    };
    let file = path.to_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let weights = random.then(|| random_weights(&src, &dir.path().join("w.safetensors")));
    let weights = weights.as_deref();
    let shown = driver::print_model(file, pipeline, true, quant.clone(), weights, target)
        .unwrap_or_else(|e| panic!("{e}"));
    let full = driver::print_model(file, pipeline, false, quant, weights, target).unwrap();
    assert!(shown.ends_with(&full), "--print-after-all ends with the final IR");
    // With weights, a summary of the parameters follows the IR.
    let text = full.split("// parameters:\n").next().unwrap();
    let text = text.split("// integer tensors:\n").next().unwrap().to_string();
    let g = syntax::parse(&text).unwrap();
    assert_eq!(print(&g), text, "round trip after the pipeline");
    shown
}

/// `SPEC [--input-bits N] [--pot-weights]`, as `potc train` reads them.
fn quant_flags(text: &str) -> QuantConfig {
    let mut words = text.split_whitespace();
    let mut q = QuantConfig::parse(words.next().unwrap()).unwrap();
    while let Some(flag) = words.next() {
        match flag {
            "--input-bits" => q.set_input_bits(words.next().unwrap().parse().unwrap()).unwrap(),
            "--pot-weights" => q.pot_weights = true,
            "--apot-weights" => q.apot_weights = true,
            _ => panic!("unknown flag {flag} on a RUN line"),
        }
    }
    q
}

/// `--weights random`: every parameter of the case's model drawn from a
/// fixed seed (thresholds `log2 t` in [-1, 3], variances positive), saved
/// as a checkpoint; its path.
fn random_weights(src: &str, path: &Path) -> String {
    use rand::{RngExt, SeedableRng};
    let g = syntax::parse(src).unwrap();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let mut ck = potc::ckpt::Checkpoint::default();
    for (name, p) in g.params() {
        let n: usize = p.shape.iter().product();
        let (lo, hi) = match p.slot {
            "log2t" | "w_log2t" => (-1.0, 3.0),
            "var" => (0.5, 2.0),
            _ => (-1.0, 1.0),
        };
        ck.insert_f32(name, p.shape, (0..n).map(|_| rng.random_range(lo..hi)).collect());
    }
    ck.set_model(&g);
    ck.save(path).unwrap();
    path.to_str().unwrap().to_string()
}

macro_rules! pass_cases {
    ($($test:ident: $dir:literal),*) => {$(
        #[test]
        fn $test() {
            insta::glob!(concat!("cases/", $dir, "/*.pot"), |path: &Path| {
                insta::assert_snapshot!(run_case(path));
            });
        }
    )*};
}

pass_cases!(
    canonicalize: "canonicalize",
    fold_bn: "fold-bn",
    fold_lone_bn: "fold-lone-bn",
    insert_fake_quant: "insert-fake-quant",
    lower_int: "lower-int",
    fuse_requant: "fuse-requant",
    select_datapath: "select-datapath"
);

#[test]
fn unknown_pass_names_the_valid_ones() {
    let e = registry().pipeline("canonicalise").err().unwrap().to_string();
    assert!(e.contains("unknown pass `canonicalise`"), "{e}");
    assert!(e.contains("did you mean `canonicalize`"), "{e}");
    assert!(e.contains("known passes: canonicalize"), "{e}");
    assert!(registry().pipeline("canonicalize,,canonicalize").is_err());
    assert_eq!(registry().pipeline(" canonicalize , canonicalize ").unwrap().passes.len(), 2);
}

#[test]
fn every_pass_documents_itself() {
    for p in registry().iter() {
        assert!(!p.summary().is_empty() && !p.summary().contains('\n'), "{}", p.name());
        assert!(
            p.description().contains("Before") && p.description().contains("After"),
            "{}",
            p.name()
        );
    }
}

/// The quantized network of every example, as QAT trains and lowering will
/// see it (`canonicalize,fold-bn,insert-fake-quant --quant w4a8`).
#[test]
fn quantized_examples() {
    insta::glob!("..", "examples/*.pot", |path: &Path| {
        let file = path.to_str().unwrap();
        let text = driver::print_model(
            file,
            "canonicalize,fold-bn,insert-fake-quant",
            false,
            Some(QuantConfig::parse("w4a8").unwrap()),
            None,
            potc::eqsat::Target::Cpu,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let g = syntax::parse(&text).unwrap();
        assert_eq!(print(&g), text);
        insta::assert_snapshot!(text);
    });
}
