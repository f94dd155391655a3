//! Each file in tests/cases/errors/ is one mistake (line 1 says which); the
//! snapshot is the diagnostic a user sees: `file:line:col: error: ...`, the
//! source line and a caret.

use potc::syntax;

#[test]
fn error_cases() {
    insta::glob!("cases/errors/*.pot", |path| {
        let src = std::fs::read_to_string(path).unwrap();
        let file = path.file_name().unwrap().to_string_lossy();
        let diag = match syntax::parse(&src) {
            Ok(_) => panic!("{file} should be rejected"),
            Err(d) => d.render(&file, &src),
        };
        assert!(
            diag.starts_with(&format!("{file}:"))
                && diag.split(':').nth(1).is_some_and(|l| l.parse::<u32>().is_ok()),
            "{file}: no file:line:col in\n{diag}"
        );
        insta::assert_snapshot!(diag);
    });
}

#[test]
fn an_empty_file_is_an_error_at_1_1() {
    let d = syntax::parse("").unwrap_err();
    assert!(d.render("e.pot", "").starts_with("e.pot:1:1: error: empty file"));
    let d = syntax::parse("  \n\n").unwrap_err();
    assert!(d.message.starts_with("empty file"));
}

/// Brackets nested 70,000 deep used to overflow the stack (the syntax tree
/// is built, cloned and dropped recursively); past the bound it is an error
/// at the first bracket too many.
#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    let src = format!(
        "model m(%x: [1, 4]) {{\n  %y = relu(%x) {{k = {}1{}}}\n  return %y\n}}\n",
        "[".repeat(70_000),
        "]".repeat(70_000)
    );
    let d = syntax::parse(&src).unwrap_err();
    let text = d.render("deep.pot", &src);
    // Line 2: `{` of the model and `(`/`{` of the op are already open.
    let col = "  %y = relu(%x) {k = ".len() + syntax::lexer::MAX_NESTING - 2 + 1;
    assert!(
        text.starts_with(&format!("deep.pot:2:{col}: error: brackets nested deeper than 64")),
        "{}",
        &text[..200.min(text.len())]
    );
    let ok = "model m(%x: [1, 4]) {\n  %y = relu(%x) {k = [[[1]]]}\n  return %y\n}\n";
    assert!(!syntax::parse(ok).unwrap_err().message.contains("nested"));
}
