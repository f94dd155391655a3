//! Pass cases: tests/cases/<pass>/*.pot, one case per file. Line 1 names the
//! pipeline (`// RUN: a,b`, optionally `--quant w4a8`), line 2 the intent. The snapshot shows the IR
//! after parsing and after each pass, exactly as `potc print --print-after-all`
//! shows it; the verifier runs after every pass, and the result must print and parse back to itself.

use potc::driver;
use potc::ir::print;
use potc::passes::registry;
use potc::syntax;
use std::path::Path;

fn run_case(path: &Path) -> String {
    let src = std::fs::read_to_string(path).unwrap();
    let pipeline = src
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("// RUN:"))
        .unwrap_or_else(|| panic!("{}: line 1 must be `// RUN: <passes>`", path.display()));
    let (pipeline, quant) = match pipeline.split_once(" --quant ") {
        Some((p, q)) => (p, Some(q.trim())),
        None => (pipeline, None),
    };
    let file = path.to_str().unwrap();
    let shown =
        driver::print_model(file, pipeline, true, quant, None).unwrap_or_else(|e| panic!("{e}"));
    let text = driver::print_model(file, pipeline, false, quant, None).unwrap();
    let g = syntax::parse(&text).unwrap();
    assert_eq!(print(&g), text, "round trip after the pipeline");
    assert!(shown.ends_with(&text), "--print-after-all ends with the final IR");
    shown
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
    insert_fake_quant: "insert-fake-quant"
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
            Some("w4a8"),
            None,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let g = syntax::parse(&text).unwrap();
        assert_eq!(print(&g), text);
        insta::assert_snapshot!(text);
    });
}
