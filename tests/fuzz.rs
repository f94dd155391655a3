//! No input makes potc panic: random bytes, random token soup and randomly
//! mutated examples go through the parser, the verifier and canonicalize.
//! Every rejection must carry a source location; every acceptance must
//! round-trip through the printer.

use potc::ir::{print, verify};
use potc::pass::PassManager;
use potc::passes::registry;
use potc::syntax;
use proptest::prelude::*;

const EXAMPLES: [&str; 4] = [
    include_str!("../examples/fcn.pot"),
    include_str!("../examples/resnet.pot"),
    include_str!("../examples/basicmotions.pot"),
    include_str!("../examples/tiny.pot"),
];

/// Fragments that reach deep parser and checker states when spliced in.
const FRAGMENTS: [&str; 32] = [
    "model",
    "return",
    "%x",
    "%y",
    "%c1",
    "(",
    ")",
    "{",
    "}",
    "[",
    "]",
    ",",
    "=",
    ":",
    "/*",
    "*/",
    "//",
    "conv1d",
    "add",
    "linear",
    "same",
    "true",
    "-1",
    "0",
    "1",
    "4294967296",
    "99999999999999999999",
    "1e309",
    "0.5",
    "f32",
    "i8",
    "\u{fffd}",
];

fn exercise(src: &str) {
    match syntax::parse(src) {
        Ok(mut g) => {
            verify(&g).expect("a parsed graph verifies");
            let text = print(&g);
            let back = syntax::parse(&text).expect("printed IR parses back");
            assert_eq!(back, g);
            let registry = registry();
            let pipeline = registry.pipeline("canonicalize").unwrap();
            PassManager { allow_meaning_changes: false }
                .run(&pipeline, &mut g, &mut Default::default(), |_| {})
                .unwrap();
        }
        Err(d) => {
            assert!(d.span.is_some(), "every text error has a place: {d:?}");
            let shown = d.render("f.pot", src);
            assert!(shown.starts_with("f.pot:"), "{shown}");
        }
    }
}

#[derive(Debug, Clone)]
enum Edit {
    Delete { at: usize, len: usize },
    Insert { at: usize, text: String },
    Number { at: usize, value: i64 },
}

fn edit() -> impl Strategy<Value = Edit> {
    let text = prop_oneof![
        prop::sample::select(&FRAGMENTS[..]).prop_map(str::to_string),
        any::<char>().prop_map(String::from),
    ];
    prop_oneof![
        (any::<usize>(), 1usize..12).prop_map(|(at, len)| Edit::Delete { at, len }),
        (any::<usize>(), text).prop_map(|(at, text)| Edit::Insert { at, text }),
        (
            any::<usize>(),
            prop_oneof![Just(0i64), Just(-1), Just(i64::MAX), Just(1 << 31), -3i64..300]
        )
            .prop_map(|(at, value)| Edit::Number { at, value }),
    ]
}

fn boundary(s: &str, at: usize) -> usize {
    let mut i = at % (s.len() + 1);
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn apply(src: &mut String, e: &Edit) {
    match e {
        Edit::Delete { at, len } => {
            let a = boundary(src, *at);
            let b = boundary(src, a + len).max(a);
            src.replace_range(a..b, "");
        }
        Edit::Insert { at, text } => {
            let a = boundary(src, *at);
            src.insert_str(a, text);
        }
        Edit::Number { at, value } => {
            // Replace the integer literal nearest after `at`, if any.
            let a = boundary(src, *at);
            if let Some(start) = src[a..].find(|c: char| c.is_ascii_digit()).map(|i| a + i) {
                let end = src[start..]
                    .find(|c: char| !c.is_ascii_digit())
                    .map_or(src.len(), |i| start + i);
                src.replace_range(start..end, &value.to_string());
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        exercise(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn token_soup_never_panics(parts in prop::collection::vec(prop::sample::select(&FRAGMENTS[..]), 0..64)) {
        exercise(&parts.join(" "));
    }

    #[test]
    fn mutated_examples_never_panic(which in 0..EXAMPLES.len(), edits in prop::collection::vec(edit(), 1..5)) {
        let mut src = EXAMPLES[which].to_string();
        for e in &edits {
            apply(&mut src, e);
        }
        exercise(&src);
    }
}
