//! `parse(print(g)) == g` and `print` is a fixed point, for every example and
//! every case file that parses, before and after canonicalization.

use potc::ir::{print, verify};
use potc::pass::PassManager;
use potc::passes::registry;
use potc::syntax;
use std::path::PathBuf;

fn model_files() -> Vec<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![];
    for dir in ["examples", "tests/cases/canonicalize"] {
        for entry in std::fs::read_dir(root.join(dir)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "pot") {
                files.push(path);
            }
        }
    }
    files.sort();
    assert!(files.len() >= 8, "examples and cases are missing");
    files
}

fn assert_round_trip(g: &potc::ir::Graph, what: &str) {
    let text = print(g);
    let back =
        syntax::parse(&text).unwrap_or_else(|d| panic!("{what}:\n{}", d.render(what, &text)));
    assert_eq!(&back, g, "{what}: parse(print(g)) != g");
    assert_eq!(print(&back), text, "{what}: print is not a fixed point");
}

#[test]
fn every_model_round_trips() {
    let registry = registry();
    let pipeline = registry.pipeline("canonicalize").unwrap();
    for path in model_files() {
        let what = path.display().to_string();
        let src = std::fs::read_to_string(&path).unwrap();
        let mut g = syntax::parse(&src).unwrap_or_else(|d| panic!("{}", d.render(&what, &src)));
        verify(&g).unwrap();
        assert_round_trip(&g, &what);
        PassManager { allow_meaning_changes: false }
            .run(&pipeline, &mut g, &mut Default::default(), |_| {})
            .unwrap();
        assert_round_trip(&g, &format!("{what} after canonicalize"));
    }
}

#[test]
fn the_fcn_has_the_published_shape() {
    let src =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/fcn.pot")).unwrap();
    let g = syntax::parse(&src).unwrap();
    let params = g.params();
    let shape_of =
        |n: &str| params.iter().find(|(p, _)| p == n).map(|(_, s)| s.shape.clone()).unwrap();
    assert_eq!(shape_of("c1.w"), vec![128, 1, 8]);
    assert_eq!(shape_of("c2.w"), vec![256, 128, 5]);
    assert_eq!(shape_of("c3.w"), vec![128, 256, 3]);
    assert_eq!(shape_of("b2.var"), vec![256]);
    assert_eq!(shape_of("logits.w"), vec![2, 128]);
    let trainable: usize = params
        .iter()
        .filter(|(_, p)| p.trainable)
        .map(|(_, p)| p.shape.iter().product::<usize>())
        .sum();
    assert_eq!(trainable, 264_962, "as PyTorch counts the FCN's parameters");
    let out = g.node(g.output().unwrap());
    assert_eq!(out.ty.to_string(), "f32[2]");
}
